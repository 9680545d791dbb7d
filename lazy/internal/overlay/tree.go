package overlay

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/nanofs/nanofs/tfs/fspath"
)

// Inode is one file of the merged tree. Hard links are several directory
// entries pointing at the same Inode.
type Inode struct {
	Mode     fs.FileMode
	UID, GID uint32
	MTime    time.Time
	Size     int64  // regular files
	Target   string // symlinks
	Devmajor uint32
	Devminor uint32
	Layer    int // index of the layer it comes from; -1 for directories implied by deeper entries
	Data     any // where a regular file's content is (set by Apply's dataOf); nil when empty

	Children map[string]*Inode // directories
	Names    []string          // the children's names, sorted (set by Finish)

	Ino   uint64 // set by Finish
	Nlink uint32 // set by Finish
}

// IsDir reports whether the inode is a directory.
func (n *Inode) IsDir() bool { return n.Mode.IsDir() }

func newDir(mode fs.FileMode, layer int) *Inode {
	return &Inode{Mode: fs.ModeDir | mode, Layer: layer, Children: map[string]*Inode{}}
}

// Tree is the merged view of an image's layers.
type Tree struct {
	Root *Inode
}

// New returns an empty tree: a root directory.
func New() *Tree { return &Tree{Root: newDir(0o755, -1)} }

// walkDir returns the directory at p ("" is the root) without following
// symlinks, or nil if there is none.
func (t *Tree) walkDir(p string) *Inode {
	n := t.Root
	if p == "" {
		return n
	}
	for _, el := range strings.Split(p, "/") {
		n = n.Children[el]
		if n == nil || !n.IsDir() {
			return nil
		}
	}
	return n
}

// mkdirAll returns the directory at p, making the missing ones (and
// replacing non-directories on the way, which a directory in a later layer
// hides, as overlayfs does).
func (t *Tree) mkdirAll(p string) *Inode {
	n := t.Root
	if p == "" {
		return n
	}
	for _, el := range strings.Split(p, "/") {
		c := n.Children[el]
		if c == nil || !c.IsDir() {
			c = newDir(0o755, -1)
			n.Children[el] = c
		}
		n = c
	}
	return n
}

// LookupNoFollow returns the inode at p (a cleaned path, "" for the root)
// without following any symlink, or nil.
func (t *Tree) LookupNoFollow(p string) *Inode {
	if p == "" {
		return t.Root
	}
	dir, base := path.Split(p)
	d := t.walkDir(strings.TrimSuffix(dir, "/"))
	if d == nil {
		return nil
	}
	return d.Children[base]
}

// Apply lays one layer's entries over the tree with the overlay rules of
// the OCI image spec: whiteouts and opaque markers first remove what the
// layers below have, then the layer's own entries are added in order (the
// last of two entries with one name wins, and a directory over a
// directory only updates the metadata). idx is the layer's index and
// layer its name for errors; dataOf tells where a regular file's content
// is.
func (t *Tree) Apply(idx int, layer string, entries []Entry, dataOf func(*Entry) any) error {
	// Markers hide only the layers below this one, whatever their position
	// in the layer: apply them before anything of the layer is added.
	for i := range entries {
		e := &entries[i]
		dir, base := path.Split(e.Path)
		if !strings.HasPrefix(base, whiteoutPrefix) {
			continue
		}
		d := t.walkDir(strings.TrimSuffix(dir, "/"))
		switch {
		case base == opaqueMarker:
			if d != nil {
				clear(d.Children)
			}
		case strings.HasPrefix(base, whiteoutMeta):
			// Other overlay bookkeeping (AUFS hard link dirs): nothing to show.
		default:
			victim := strings.TrimPrefix(base, whiteoutPrefix)
			if victim == "" || victim == "." || victim == ".." {
				return &EntryError{Layer: layer, Entry: e.Name, Err: fmt.Errorf("%w: whiteout of %q", ErrBadPath, victim)}
			}
			if d != nil {
				delete(d.Children, victim)
			}
		}
	}
	// The directory the last entry went into. An entry changes only its
	// own name in its parent, never the parent or the directories above
	// it, so the next entry in the same directory finds it there still.
	var parent *Inode
	var parentPath string
	for i := range entries {
		e := &entries[i]
		dir, base := path.Split(e.Path)
		if strings.HasPrefix(base, whiteoutPrefix) {
			continue
		}
		if e.Path == "" {
			// The root itself ("./"): only its metadata can change.
			if e.Type == tar.TypeDir {
				setMeta(t.Root, e)
			}
			continue
		}
		dir = strings.TrimSuffix(dir, "/")
		if parent == nil || dir != parentPath {
			// A layer lists a directory's entries together: they share
			// one walk.
			parent, parentPath = t.mkdirAll(dir), dir
		}
		old := parent.Children[base]
		switch e.Type {
		case tar.TypeDir:
			if old != nil && old.IsDir() {
				setMeta(old, e)
				old.Layer = idx
				continue
			}
			n := newDir(0, idx)
			setMeta(n, e)
			parent.Children[base] = n
		case tar.TypeLink:
			target := t.LookupNoFollow(e.Linkname)
			switch {
			case target == nil:
				return &EntryError{Layer: layer, Entry: e.Name, Err: fmt.Errorf("hard link to %q, which does not exist", e.Linkname)}
			case target.IsDir():
				return &EntryError{Layer: layer, Entry: e.Name, Err: fmt.Errorf("hard link to the directory %q", e.Linkname)}
			}
			if target != old {
				parent.Children[base] = target
			}
		default:
			n := &Inode{Layer: idx}
			setMeta(n, e)
			switch e.Type {
			case tar.TypeReg:
				n.Size = e.Size
				if e.Size > 0 {
					n.Data = dataOf(e)
				}
			case tar.TypeSymlink:
				n.Target = e.Linkname
			case tar.TypeChar, tar.TypeBlock:
				n.Devmajor, n.Devminor = uint32(e.Devmajor), uint32(e.Devminor)
			}
			parent.Children[base] = n
		}
	}
	return nil
}

func setMeta(n *Inode, e *Entry) {
	n.Mode = e.FileMode()
	n.UID, n.GID = uint32(e.UID), uint32(e.GID)
	n.MTime = e.ModTime
}

// Finish numbers the inodes (in sorted path order, so that the numbers
// are the same every time an image is opened), counts links and sorts
// directory listings. Hard links share their inode and its number. It is
// called once, on a tree whose inodes have no numbers or counts yet.
func (t *Tree) Finish() {
	next := uint64(2) // 0 and 1 mean "unknown" and "root" to FUSE
	// walk returns the newest modification time at or below n.
	var walk func(n *Inode) time.Time
	walk = func(n *Inode) time.Time {
		if n.Ino == 0 {
			n.Ino = next
			next++
		}
		if !n.IsDir() {
			return n.MTime
		}
		n.Names = make([]string, 0, len(n.Children))
		for name := range n.Children {
			n.Names = append(n.Names, name)
		}
		slices.Sort(n.Names)
		subdirs := uint32(0)
		newest := n.MTime
		for _, name := range n.Names {
			c := n.Children[name]
			if c.IsDir() {
				subdirs++
			} else {
				// Counted on the inode itself rather than in a map of
				// every inode: a hard link is met once per name.
				c.Nlink++
			}
			if m := walk(c); m.After(newest) {
				newest = m
			}
		}
		n.Nlink = 2 + subdirs
		if n.MTime.IsZero() {
			// A directory no layer has an entry for (the root, usually):
			// as new as what it holds, rather than year 1.
			n.MTime = newest
			if newest.IsZero() {
				n.MTime = time.Unix(0, 0).UTC()
			}
		}
		return newest
	}
	walk(t.Root)
}

// MaxSymlinks bounds symlink resolution (fspath.MaxSymlinks).
const MaxSymlinks = fspath.MaxSymlinks

// Resolve finds the inode at name (an fs.ValidPath), following symlinks in
// every element but the last, and in the last too if follow is set.
// Symlinks resolve inside the image: absolute targets start at the image
// root and ".." stops at it, so nothing outside the image is ever named.
// Errors are fs.ErrNotExist, syscall.ENOTDIR and syscall.ELOOP.
func (t *Tree) Resolve(name string, follow bool) (*Inode, error) {
	w := fspath.Walker[*Inode]{
		Root:  t.Root,
		IsDir: (*Inode).IsDir,
		Child: func(dir *Inode, name string) (*Inode, error) {
			if c := dir.Children[name]; c != nil {
				return c, nil
			}
			return nil, fs.ErrNotExist
		},
		Link: func(n *Inode) (string, bool, error) {
			return n.Target, n.Mode&fs.ModeSymlink != 0, nil
		},
		Strict: true,
	}
	return w.Resolve(name, follow)
}
