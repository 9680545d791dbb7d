package hostfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nanofs/nanofs/tfs/fspath"
)

var (
	_ fs.StatFS      = (*FS)(nil)
	_ fs.ReadDirFS   = (*FS)(nil)
	_ fs.ReadLinkFS  = (*FS)(nil)
	_ io.ReaderAt    = (*file)(nil)
	_ fs.ReadDirFile = (*dir)(nil)
)

// maxSymlinks bounds the symbolic links followed in one lookup, as the
// kernel's MAXSYMLINKS does.
const maxSymlinks = fspath.MaxSymlinks

// Add is one host file, directory or symbolic link to place in the image.
type Add struct {
	Src string // host path (relative paths are taken from the process's working directory)
	Dst string // absolute path in the image
	// Shallow adds the entry alone: a symbolic link stays a link (Src is
	// not followed) and a directory comes without its contents. Otherwise
	// Src is followed if it is a link (the user named what it points to)
	// and a directory comes whole, the links inside it kept as links.
	Shallow bool
}

// Option changes how New lays the added files over the base.
type Option func(*config)

type config struct{ overwrite bool }

// WithOverwrite lets an added entry replace what the base has at its path
// (a file, a link, or a directory with everything under it) instead of
// failing with a *CollisionError. A directory added where the base has a
// directory is merged into it either way.
func WithOverwrite() Option { return func(c *config) { c.overwrite = true } }

// CollisionError is an added entry at a path the base already holds, where
// the two cannot merge (only two directories can).
type CollisionError struct {
	Path  string      // absolute path in the image
	Src   string      // host path of the added entry
	Added fs.FileMode // type of the added entry
	Base  fs.FileMode // type of the base's entry
}

func (e *CollisionError) Error() string {
	return fmt.Sprintf("%s: the image has a %s there, which the %s added from %s would replace",
		e.Path, kindName(e.Base), kindName(e.Added), e.Src)
}

// ConflictError is two added entries at one path that cannot merge.
type ConflictError struct {
	Path        string
	First, Then string // host paths
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: added twice, from %s and from %s", e.Path, e.First, e.Then)
}

func kindName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsRegular():
		return "file"
	}
	return "special file"
}

// Placed says where one Add landed and what it brought.
type Placed struct {
	Add
	// Path is where Dst landed, absolute: its parent directories are
	// followed through the image's symbolic links, as a copy into the
	// image would be.
	Path     string
	Files    int      // regular files and symbolic links
	Bytes    int64    // of the regular files
	Replaced []string // base paths it replaced (WithOverwrite)
}

// Entry is one path of the added layer.
type Entry struct {
	Path   string      // absolute, canonical in the combined view
	Src    string      // host path; "" for an implicit directory
	Mode   fs.FileMode // type and permission bits
	Size   int64       // regular files
	Target string      // symbolic links
	// Implicit marks a directory made to hold added entries (a missing
	// parent, or one of the base's directories they pass through).
	Implicit bool
	// Merged marks a directory whose base directory stays visible under
	// it: the base's entries there are not part of the added layer.
	Merged bool
}

// FS is a base filesystem with host files laid over it.
type FS struct {
	base      fs.FS
	overwrite bool
	nodes     map[string]*node // fs.FS name -> added entry; "." is the root
	placed    []Placed
	skipped   []string
}

type node struct {
	mode     fs.FileMode
	size     int64
	mtime    time.Time
	target   string // symbolic links
	src      source // regular files
	host     string // host path, for reports
	implicit bool   // made for entries beneath it
	merged   bool   // a directory over a base directory that stays visible
	opaque   bool   // hides whatever the base has at and below this path
	children map[string]struct{}
}

func (n *node) isDir() bool { return n.mode.IsDir() }

// source is where a regular file's bytes are: rel inside the directory
// root (opened through os.Root: no link can lead out of it), or the host
// path rel itself when root is "" (a file named on purpose).
type source struct{ root, rel string }

// New lays adds over base, in order. Each Dst's parent directories are
// followed through symbolic links (the base's and the added ones) and made
// where missing; a later Add may merge directories with an earlier one but
// not replace its files (*ConflictError), unless both name the same host
// entry. Host entries TFS cannot hold (devices, FIFOs, sockets) inside
// added directories are left out and listed by Skipped.
func New(base fs.FS, adds []Add, opts ...Option) (*FS, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	f := &FS{base: base, overwrite: c.overwrite, nodes: map[string]*node{}}
	root, err := fs.Stat(base, ".")
	if err != nil {
		return nil, fmt.Errorf("hostfs: the base's root: %w", err)
	}
	f.nodes["."] = &node{mode: root.Mode(), mtime: root.ModTime(), implicit: true, merged: true, children: map[string]struct{}{}}
	for _, a := range adds {
		if err := f.Add(a); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Add lays one more entry over the filesystem, as New does; a later Add
// sees the earlier ones. On error the filesystem may hold part of a; it is
// meant to be dropped then.
func (f *FS) Add(a Add) error {
	p, err := f.add(a)
	if err != nil {
		return err
	}
	f.placed = append(f.placed, p)
	return nil
}

// Placed lists the adds as New and Add placed them, in order.
func (f *FS) Placed() []Placed { return slices.Clone(f.placed) }

// Skipped lists the host paths left out because TFS cannot hold them.
func (f *FS) Skipped() []string { return slices.Clone(f.skipped) }

// Entries lists every path of the added layer, parents first (sorted by
// path), the root excluded.
func (f *FS) Entries() []Entry {
	names := make([]string, 0, len(f.nodes))
	for name := range f.nodes {
		if name != "." {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, comparePaths)
	out := make([]Entry, 0, len(names))
	for _, name := range names {
		n := f.nodes[name]
		out = append(out, Entry{Path: "/" + name, Src: n.host, Mode: n.mode, Size: n.size, Target: n.target,
			Implicit: n.implicit, Merged: n.merged})
	}
	return out
}

// comparePaths orders paths element by element, so that a directory's
// whole subtree comes right after it ("a/b" before "a-b").
func comparePaths(a, b string) int {
	return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
}

func (f *FS) add(a Add) (Placed, error) {
	pl := Placed{Add: a}
	if !path.IsAbs(a.Dst) {
		return pl, fmt.Errorf("hostfs: %s: the destination must be an absolute path in the image", a.Dst)
	}
	for _, el := range strings.Split(a.Dst, "/") {
		if el == ".." {
			return pl, fmt.Errorf("hostfs: %s: the destination may not hold \"..\"", a.Dst)
		}
	}
	src, err := filepath.Abs(a.Src)
	if err != nil {
		return pl, fmt.Errorf("hostfs: %w", err)
	}
	info, err := os.Lstat(src)
	if err == nil && info.Mode()&fs.ModeSymlink != 0 && !a.Shallow {
		info, err = os.Stat(src)
	}
	if err != nil {
		return pl, fmt.Errorf("hostfs: %w", err)
	}
	dst := path.Clean(a.Dst)
	var p string
	if dst == "/" {
		if !info.IsDir() {
			return pl, fmt.Errorf("hostfs: %s: only a directory can be added as the image root", src)
		}
		p = "."
	} else {
		parent, err := f.mkdirAll(path.Dir(dst), src, &pl)
		if err != nil {
			return pl, err
		}
		p = join(parent, path.Base(dst))
		if info.IsDir() && !a.Shallow {
			// A directory copied onto a link to a directory goes into the
			// directory, as cp -r would.
			if st, err := f.lstat(p); err == nil && st.Mode()&fs.ModeSymlink != 0 {
				if q, err := f.walk(p, true); err == nil {
					if st, err := f.lstat(q); err == nil && st.IsDir() {
						p = q
					}
				}
			}
		}
	}
	pl.Path = abs(p)
	n, err := f.hostNode(src, info, a.Shallow, source{rel: src})
	if err != nil {
		return pl, err
	}
	if err := f.place(p, n, &pl); err != nil {
		return pl, err
	}
	if !info.IsDir() || a.Shallow {
		return pl, nil
	}
	return pl, f.addTree(src, p, &pl)
}

// addTree places the contents of the host directory src under p.
func (f *FS) addTree(src, p string, pl *Placed) error {
	root, err := os.OpenRoot(src)
	if err != nil {
		return fmt.Errorf("hostfs: %w", err)
	}
	defer root.Close()
	rfs := root.FS()
	return fs.WalkDir(rfs, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("hostfs: %s: %w", filepath.Join(src, name), err)
		}
		if name == "." {
			return nil
		}
		host := filepath.Join(src, filepath.FromSlash(name))
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("hostfs: %w", err)
		}
		n, err := f.hostNode(host, info, true, source{root: src, rel: name})
		if err != nil {
			return err
		}
		if n == nil {
			f.skipped = append(f.skipped, host)
			return nil
		}
		if n.mode&fs.ModeSymlink != 0 {
			if n.target, err = fs.ReadLink(rfs, name); err != nil {
				return fmt.Errorf("hostfs: %w", err)
			}
			n.size = int64(len(n.target))
		}
		return f.place(join(p, name), n, pl)
	})
}

// hostNode describes a host entry; nil for one TFS cannot hold (only
// inside directories: a named one is an error).
func (f *FS) hostNode(host string, info fs.FileInfo, shallow bool, src source) (*node, error) {
	n := &node{mode: info.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
		mtime: info.ModTime(), host: host}
	switch {
	case info.IsDir():
		n.children = map[string]struct{}{}
	case info.Mode().IsRegular():
		n.size = info.Size()
		n.src = src
		if src.root == "" && shallow {
			// Read through its directory, so that a link put in its
			// place later is not followed out of it.
			n.src = source{root: filepath.Dir(host), rel: filepath.Base(host)}
		}
	case info.Mode()&fs.ModeSymlink != 0:
		if src.root == "" {
			target, err := os.Readlink(host)
			if err != nil {
				return nil, fmt.Errorf("hostfs: %w", err)
			}
			n.target, n.size = target, int64(len(target))
		}
	default:
		if src.root == "" {
			return nil, fmt.Errorf("hostfs: %s is a %v, which a Nanos filesystem cannot hold", host, info.Mode().Type())
		}
		return nil, nil
	}
	return n, nil
}

// place puts n at the canonical path p, whose parent is an added
// directory.
func (f *FS) place(p string, n *node, pl *Placed) error {
	if n.mode.IsRegular() {
		pl.Files++
		pl.Bytes += n.size
	} else if n.mode&fs.ModeSymlink != 0 {
		pl.Files++
	}
	if old := f.nodes[p]; old != nil {
		switch {
		case old.isDir() && n.isDir():
			if old.implicit && !n.implicit {
				old.implicit, old.host = false, n.host
			}
			return nil
		case old.host == n.host && old.mode.Type() == n.mode.Type():
			return nil // the same host entry, named twice
		case old.implicit:
			return &ConflictError{Path: abs(p), First: "the directory made for other added files", Then: n.host}
		}
		return &ConflictError{Path: abs(p), First: old.host, Then: n.host}
	}
	if !f.hidden(p) {
		st, err := fs.Lstat(f.base, p)
		switch {
		case err == nil && st.IsDir() && n.isDir():
			// Merged: the directory keeps the image's mode.
			n.merged, n.mode, n.mtime = true, st.Mode(), st.ModTime()
		case err == nil:
			if !f.overwrite {
				return &CollisionError{Path: abs(p), Src: n.host, Added: n.mode.Type(), Base: st.Mode().Type()}
			}
			n.opaque = true
			pl.Replaced = append(pl.Replaced, abs(p))
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("hostfs: %s: %w", abs(p), err)
		}
	}
	f.link(p, n)
	return nil
}

// link records n at p in its parent directory, which must be added.
func (f *FS) link(p string, n *node) {
	f.nodes[p] = n
	if p != "." {
		f.adopt(parentOf(p))
		f.nodes[parentOf(p)].children[path.Base(p)] = struct{}{}
	}
}

// mkdirAll returns the canonical path (fs.FS form) of the directory dst,
// following symbolic links in the combined view and adding the
// directories that are missing, and adopts every directory on the way as
// an implicit added directory (a directory holding added entries must be
// one itself, so that listing it merges them in).
func (f *FS) mkdirAll(dst, src string, pl *Placed) (string, error) {
	pending := strings.Split(strings.TrimPrefix(dst, "/"), "/")
	cur := "."
	links := 0
	for len(pending) > 0 {
		el := pending[0]
		pending = pending[1:]
		switch el {
		case "", ".":
			continue
		case "..":
			cur = parentOf(cur)
			continue
		}
		next := join(cur, el)
		st, err := f.lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			f.adopt(cur)
			f.link(next, &node{mode: fs.ModeDir | 0o755, implicit: true, children: map[string]struct{}{}})
		case err != nil:
			return "", fmt.Errorf("hostfs: %s: %w", abs(next), err)
		case st.Mode()&fs.ModeSymlink != 0:
			links++
			if links > maxSymlinks {
				return "", fmt.Errorf("hostfs: %s: %w", dst, syscall.ELOOP)
			}
			target, err := f.readlink(next)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(target, "/") {
				cur = "."
			}
			pending = append(strings.Split(target, "/"), pending...)
			continue
		case st.IsDir():
		default:
			if old := f.nodes[next]; old != nil {
				return "", &ConflictError{Path: abs(next), First: old.host, Then: src + " (which needs a directory there)"}
			}
			if !f.overwrite {
				return "", &CollisionError{Path: abs(next), Src: src, Added: fs.ModeDir, Base: st.Mode().Type()}
			}
			f.adopt(cur)
			f.link(next, &node{mode: fs.ModeDir | 0o755, implicit: true, opaque: true, children: map[string]struct{}{}})
			pl.Replaced = append(pl.Replaced, abs(next))
		}
		cur = next
	}
	f.adopt(cur)
	return cur, nil
}

// adopt makes the directory p and its parents added directories, keeping
// the base's modes for those the base has.
func (f *FS) adopt(p string) {
	if f.nodes[p] != nil {
		return
	}
	f.adopt(parentOf(p))
	n := &node{mode: fs.ModeDir | 0o755, implicit: true, children: map[string]struct{}{}}
	if st, err := fs.Lstat(f.base, p); err == nil && st.IsDir() && !f.hidden(p) {
		n.mode, n.mtime, n.merged = st.Mode(), st.ModTime(), true
	}
	f.link(p, n)
}

// hidden reports whether the base is out of sight at p: an added entry
// above it replaced a base entry, or is not a directory.
func (f *FS) hidden(p string) bool {
	for q := p; ; {
		if n := f.nodes[q]; n != nil && (n.opaque || (q != p && !n.isDir())) {
			return true
		}
		if q == "." {
			return false
		}
		q = parentOf(q)
	}
}

// lstat describes the canonical path p in the combined view.
func (f *FS) lstat(p string) (fs.FileInfo, error) {
	if n := f.nodes[p]; n != nil {
		return &fileInfo{name: path.Base(p), n: n}, nil
	}
	if f.hidden(p) {
		return nil, fs.ErrNotExist
	}
	st, err := fs.Lstat(f.base, p)
	return st, bare(err)
}

// bare drops the *fs.PathError around a base's error, so that it is
// wrapped once, with the name the caller asked for.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readlink reads the link at the canonical path p in the combined view.
func (f *FS) readlink(p string) (string, error) {
	if n := f.nodes[p]; n != nil {
		if n.mode&fs.ModeSymlink == 0 {
			return "", syscall.EINVAL
		}
		return n.target, nil
	}
	if f.hidden(p) {
		return "", fs.ErrNotExist
	}
	target, err := fs.ReadLink(f.base, p)
	return target, bare(err)
}

// walk resolves name in the combined view the way the kernel resolves a
// path in a chroot of it: links in the middle are followed (absolute ones
// from the root), the last one only if follow. It returns the canonical
// path.
func (f *FS) walk(name string, follow bool) (string, error) {
	w := fspath.PathWalker(".", join, f.lstat, f.readlink)
	w.EmptyLink = fs.ErrNotExist
	e, err := w.Resolve(name, follow)
	return e.Path, err
}

func (f *FS) resolve(op, name string, follow bool) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	p, err := f.walk(name, follow)
	if err != nil {
		return "", &fs.PathError{Op: op, Path: name, Err: err}
	}
	return p, nil
}

// Open opens the named file, following symbolic links. Added regular
// files are io.ReaderAt; directories are fs.ReadDirFile.
func (f *FS) Open(name string) (fs.File, error) {
	p, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	n := f.nodes[p]
	if n == nil {
		return f.base.Open(p)
	}
	info := &fileInfo{name: path.Base(p), n: n}
	if n.isDir() {
		entries, err := f.readDir(p)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dir{info: info, entries: entries}, nil
	}
	fl, err := n.src.open(n.size)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{f: fl, r: io.NewSectionReader(fl, 0, n.size), info: info}, nil
}

// open opens the host file, which must still be the regular file of the
// size New saw.
func (s source) open(size int64) (*os.File, error) {
	var fl *os.File
	var err error
	if s.root == "" {
		fl, err = os.Open(s.rel)
	} else {
		var root *os.Root
		if root, err = os.OpenRoot(s.root); err != nil {
			return nil, err
		}
		fl, err = root.Open(s.rel)
		root.Close()
	}
	if err != nil {
		return nil, err
	}
	st, err := fl.Stat()
	if err == nil && (!st.Mode().IsRegular() || st.Size() != size) {
		err = fmt.Errorf("%s changed since it was added (now %s of %d bytes, was a file of %d)", fl.Name(), kindName(st.Mode()), st.Size(), size)
	}
	if err != nil {
		fl.Close()
		return nil, err
	}
	return fl, nil
}

// Stat describes the named file, following symbolic links.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	return f.info("stat", name, true)
}

// Lstat describes the named file; a symbolic link is described itself.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	return f.info("lstat", name, false)
}

func (f *FS) info(op, name string, follow bool) (fs.FileInfo, error) {
	p, err := f.resolve(op, name, follow)
	if err != nil {
		return nil, err
	}
	// Named as Open names what it opens: after the links followed.
	if n := f.nodes[p]; n != nil {
		return &fileInfo{name: path.Base(p), n: n}, nil
	}
	st, err := fs.Lstat(f.base, p)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: bare(err)}
	}
	return st, nil
}

// ReadLink returns the target of the named symbolic link, verbatim.
func (f *FS) ReadLink(name string) (string, error) {
	p, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	target, err := f.readlink(p)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return target, nil
}

// ReadDir lists the named directory (symbolic links followed), sorted by
// name: the added entries, and the base's where they stay visible.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	entries, err := f.readDir(p)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return entries, nil
}

func (f *FS) readDir(p string) ([]fs.DirEntry, error) {
	n := f.nodes[p]
	if n == nil {
		entries, err := fs.ReadDir(f.base, p)
		return entries, bare(err)
	}
	if !n.isDir() {
		return nil, syscall.ENOTDIR
	}
	var out []fs.DirEntry
	if n.merged && !f.hidden(p) {
		base, err := fs.ReadDir(f.base, p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range base {
			if _, ours := n.children[e.Name()]; !ours {
				out = append(out, e)
			}
		}
	}
	for name := range n.children {
		out = append(out, fs.FileInfoToDirEntry(&fileInfo{name: name, n: f.nodes[join(p, name)]}))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// ReadFile reads the whole named file.
func (f *FS) ReadFile(name string) ([]byte, error) {
	fl, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer fl.Close()
	return io.ReadAll(fl)
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

func abs(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + p
}

// fileInfo describes an added entry.
type fileInfo struct {
	name string
	n    *node
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.n.size }
func (i *fileInfo) Mode() fs.FileMode  { return i.n.mode }
func (i *fileInfo) ModTime() time.Time { return i.n.mtime }
func (i *fileInfo) IsDir() bool        { return i.n.isDir() }
func (i *fileInfo) Sys() any           { return nil }
func (i *fileInfo) String() string     { return fs.FormatFileInfo(i) }

// file is an open added regular file, read as the size New saw.
type file struct {
	f    *os.File
	r    *io.SectionReader
	info *fileInfo
}

func (fl *file) Stat() (fs.FileInfo, error)                { return fl.info, nil }
func (fl *file) Read(p []byte) (int, error)                { return fl.r.Read(p) }
func (fl *file) ReadAt(p []byte, off int64) (int, error)   { return fl.r.ReadAt(p, off) }
func (fl *file) Seek(off int64, whence int) (int64, error) { return fl.r.Seek(off, whence) }
func (fl *file) Close() error                              { return fl.f.Close() }

// dir is an open added directory.
type dir struct {
	info    *fileInfo
	entries []fs.DirEntry
	off     int
}

func (d *dir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: syscall.EISDIR}
}
func (d *dir) Close() error { return nil }

func (d *dir) ReadDir(count int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if count <= 0 {
		d.off = len(d.entries)
		return slices.Clone(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n := min(count, len(rest))
	d.off += n
	return slices.Clone(rest[:n]), nil
}

// PrefetchLater passes on to the base the names (canonical fs.FS names) it
// shows, if the base fetches its files from far away and can fetch them
// ahead (a lazily read image: see resolve.Prefetcher); the added files are
// on the host already.
func (f *FS) PrefetchLater(names ...string) {
	pf, ok := f.base.(interface{ PrefetchLater(...string) })
	if !ok {
		return
	}
	var base []string
	for _, p := range names {
		if f.nodes[p] == nil && !f.hidden(p) {
			base = append(base, p)
		}
	}
	if len(base) > 0 {
		pf.PrefetchLater(base...)
	}
}
