package testimage

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"
)

// Node is what a flattened image shows at one path: enough to tell two
// trees apart, nothing that legitimately differs between tools (times).
type Node struct {
	Mode      fs.FileMode // type, permission, setuid/setgid/sticky bits
	UID, GID  int
	Size      int64  // regular files only
	SHA256    string // hex digest of a regular file's content
	Target    string // symlink target, verbatim
	Dev       string // "major:minor" of a device node
	LinkGroup string // smallest path of the node's hard-link group; "" for a single name
}

func (n Node) String() string {
	s := fmt.Sprintf("%v %d:%d", n.Mode, n.UID, n.GID)
	switch {
	case n.Mode.IsRegular():
		s += fmt.Sprintf(" size=%d sha256=%.12s", n.Size, n.SHA256)
	case n.Mode&fs.ModeSymlink != 0:
		s += " -> " + n.Target
	case n.Mode&fs.ModeDevice != 0:
		s += " dev=" + n.Dev
	}
	if n.LinkGroup != "" {
		s += " linkgroup=" + n.LinkGroup
	}
	return s
}

// Tree maps clean slash paths without a leading slash ("usr/bin/node") to
// nodes. The root directory itself is not part of a tree.
type Tree map[string]Node

// Paths returns the tree's paths in sorted order.
func (t Tree) Paths() []string { return slices.Sorted(maps.Keys(t)) }

// WithoutOwners returns a copy with every UID and GID zeroed, for comparing
// against sources that do not report ownership.
func (t Tree) WithoutOwners() Tree {
	out := make(Tree, len(t))
	for p, n := range t {
		n.UID, n.GID = 0, 0
		out[p] = n
	}
	return out
}

// WithoutLinkGroups returns a copy with hard-link groups forgotten, for
// comparing against sources that cannot tell hard links from copies.
func (t Tree) WithoutLinkGroups() Tree {
	out := make(Tree, len(t))
	for p, n := range t {
		n.LinkGroup = ""
		out[p] = n
	}
	return out
}

// EStargzMetaFiles are the entries estargz.Build adds at the root of every
// eStargz layer: the TOC itself and a prefetch landmark. mutate.Extract shows
// them as ordinary files; stargz-snapshotter hides them.
var EStargzMetaFiles = []string{"stargz.index.json", ".prefetch.landmark", ".no.prefetch.landmark"}

// WithoutEStargzMeta returns a copy without EStargzMetaFiles.
func (t Tree) WithoutEStargzMeta() Tree {
	out := maps.Clone(t)
	for _, p := range EStargzMetaFiles {
		delete(out, p)
	}
	return out
}

// DiffTrees lists every difference between want and got, one line each, sorted
// by path; it is empty when the trees are equal.
func DiffTrees(want, got Tree) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[p]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("missing %s (want %v)", p, want[p]))
		case g != want[p]:
			out = append(out, fmt.Sprintf("differs %s: want %v, got %v", p, want[p], g))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[p]; !ok {
			out = append(out, fmt.Sprintf("extra %s (got %v)", p, got[p]))
		}
	}
	return out
}

// treePath turns a tar or fs name into a tree path: no "./", no leading or
// trailing slash. It reports false for names that climb out of the root.
func treePath(name string) (string, bool) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	switch {
	case p == "..", strings.HasPrefix(p, "../"):
		return "", false
	case p == ".":
		return "", true
	}
	return p, true
}

func sha256Hex(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// TreeFromTar reads a flattened filesystem tar (the output of mutate.Extract
// or crane export) to its end, so that an error the producer reports late
// is not missed: hard links become copies of their target's node and are
// grouped. Whiteout names are not interpreted.
func TreeFromTar(r io.Reader) (Tree, error) {
	tr := tar.NewReader(r)
	t := Tree{}
	links := map[string]string{} // hard link name -> target name
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// Read on past the end-of-archive blocks: a producer such as
			// mutate.Extract reports a failure (a layer digest mismatch) only
			// when closing its pipe, after it has already ended the tar.
			if _, err := io.Copy(io.Discard, r); err != nil {
				return nil, fmt.Errorf("reading tar: %w", err)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		p, ok := treePath(h.Name)
		if !ok {
			return nil, fmt.Errorf("tar entry %q escapes the root", h.Name)
		}
		if p == "" {
			continue
		}
		if isSparse(h) {
			// A sparse map can declare terabytes of holes in a few bytes;
			// no image tool writes them, so refuse instead of hashing zeros.
			return nil, fmt.Errorf("tar entry %q: sparse files are not supported", h.Name)
		}
		n := Node{Mode: h.FileInfo().Mode(), UID: h.Uid, GID: h.Gid}
		switch h.Typeflag {
		case tar.TypeReg:
			if n.SHA256, n.Size, err = sha256Hex(tr); err != nil {
				return nil, fmt.Errorf("reading %q: %w", h.Name, err)
			}
		case tar.TypeLink:
			target, ok := treePath(h.Linkname)
			if !ok {
				return nil, fmt.Errorf("hard link %q -> %q escapes the root", h.Name, h.Linkname)
			}
			links[p] = target
			delete(t, p)
			continue
		case tar.TypeSymlink:
			n.Target = h.Linkname
		case tar.TypeChar, tar.TypeBlock:
			n.Dev = fmt.Sprintf("%d:%d", h.Devmajor, h.Devminor)
		}
		delete(links, p)
		t[p] = n
	}
	if err := resolveTarLinks(t, links); err != nil {
		return nil, err
	}
	return t, nil
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// resolveTarLinks gives every link name its final target's node and marks
// the groups.
func resolveTarLinks(t Tree, links map[string]string) error {
	root := func(p string) (string, error) {
		for range len(links) + 1 {
			next, ok := links[p]
			if !ok {
				return p, nil
			}
			p = next
		}
		return "", fmt.Errorf("hard link loop at %q", p)
	}
	groups := map[string][]string{}
	for name := range links {
		target, err := root(name)
		if err != nil {
			return err
		}
		n, ok := t[target]
		if !ok {
			return fmt.Errorf("hard link %q points at %q, which is not in the tree", name, target)
		}
		if !n.Mode.IsRegular() {
			return fmt.Errorf("hard link %q points at %q, which is not a regular file", name, target)
		}
		groups[target] = append(groups[target], name)
	}
	for target, names := range groups {
		names = append(names, target)
		first := slices.Min(names)
		for _, name := range names {
			n := t[target]
			n.LinkGroup = first
			t[name] = n
		}
	}
	return nil
}

// ExtractTree flattens img with go-containerregistry's mutate.Extract, the
// reference every image reader in this project is checked against.
func ExtractTree(t testing.TB, img v1.Image) Tree {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tree, err := TreeFromTar(rc)
	if err != nil {
		t.Fatalf("testimage: flattening image: %v", err)
	}
	return tree
}

// TreeFromFS walks any fs.FS (os.DirFS, a lazy image, a TFS reader). When
// the FileInfo's Sys is a *syscall.Stat_t, ownership, device numbers and
// hard links are taken from it; otherwise they stay zero.
func TreeFromFS(fsys fs.FS) (Tree, error) {
	t := Tree{}
	inodes := map[uint64][]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n := Node{Mode: info.Mode()}
		st, _ := info.Sys().(*syscall.Stat_t)
		if st != nil {
			n.UID, n.GID = int(st.Uid), int(st.Gid)
		}
		switch {
		case n.Mode.IsRegular():
			f, err := fsys.Open(p)
			if err != nil {
				return err
			}
			n.SHA256, n.Size, err = sha256Hex(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
			if st != nil && st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], p)
			}
		case n.Mode&fs.ModeSymlink != 0:
			if n.Target, err = fs.ReadLink(fsys, p); err != nil {
				return err
			}
		case n.Mode&fs.ModeDevice != 0 && st != nil:
			n.Dev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		t[p] = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	markLinkGroups(t, inodes)
	return t, nil
}

// markLinkGroups sets LinkGroup for every group of two or more names.
func markLinkGroups[K comparable](t Tree, groups map[K][]string) {
	for _, names := range groups {
		if len(names) < 2 {
			continue
		}
		first := slices.Min(names)
		for _, p := range names {
			n := t[p]
			n.LinkGroup = first
			t[p] = n
		}
	}
}
