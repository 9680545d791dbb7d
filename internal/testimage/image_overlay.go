package testimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file computes the tree an image should show, straight from its
// inputs (host trees and entry lists) with overlayfs semantics applied bottom
// up. It shares nothing with the tar writers or with go-containerregistry,
// so that it can serve as the expectation they are checked against.

type itemKind int

const (
	itemNode     itemKind = iota // a file, directory, link or device
	itemWhiteout                 // the path and everything below it are deleted
	itemOpaque                   // the lower layers' content of the directory is hidden
)

// layerItem is one path of one layer as the overlay sees it.
type layerItem struct {
	kind   itemKind
	path   string
	node   Node // for itemNode; LinkGroup unset
	linkID string
	// For host trees, what the tar writer needs beyond the node.
	abs    string
	mtime  time.Time
	xattrs map[string]string
}

// overlayXattrPrefixes are overlayfs's own bookkeeping: translated into
// whiteout names (opaque) or meaningless outside the mount (the rest).
var overlayXattrPrefixes = []string{"trusted.overlay.", "user.overlay."}

// hostXattrs returns the extended attributes of a path (not following
// symlinks), overlayfs's own and SELinux labels left out.
func hostXattrs(p string) (attrs map[string]string, opaque bool, err error) {
	size, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || size == 0 {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("listing xattrs of %s: %w", p, err)
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(p, buf); err != nil {
		return nil, false, fmt.Errorf("listing xattrs of %s: %w", p, err)
	}
	for _, name := range strings.Split(string(buf[:size]), "\x00") {
		if name == "" {
			continue
		}
		val, err := hostXattr(p, name)
		if err != nil {
			return nil, false, err
		}
		switch strings.TrimPrefix(strings.TrimPrefix(name, "trusted."), "user.") {
		case "overlay.opaque":
			opaque = opaque || val == "y"
			continue
		case "overlay.metacopy", "overlay.redirect":
			// The upper file or directory is not self-contained: its data
			// or its content lives in a lower layer under another name.
			return nil, false, fmt.Errorf("%s has %s: mount the overlay with metacopy=off,redirect_dir=off to get a self-contained upper dir", p, name)
		}
		if name == "security.selinux" || hasPrefixIn(name, overlayXattrPrefixes) {
			continue
		}
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs[name] = val
	}
	return attrs, opaque, nil
}

func hostXattr(p, name string) (string, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<20 {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("reading xattr %s of %s: %w", name, p, err)
		}
		return string(buf[:n]), nil
	}
}

func hasPrefixIn(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// scanHostTree lists a host tree laid out as an image root or an overlayfs upper
// directory, in lexical walk order (parents before children). A character
// device 0:0 is a whiteout, a directory with overlay.opaque=y is opaque.
// Sockets cannot be put in a tar and are left out.
func scanHostTree(root string) ([]layerItem, error) {
	var items []layerItem
	err := filepath.WalkDir(root, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		info, err := os.Lstat(abs)
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat_t", abs)
		}
		mode := info.Mode()
		if mode&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			items = append(items, layerItem{kind: itemWhiteout, path: rel, abs: abs})
			return nil
		}
		if mode&fs.ModeSocket != 0 {
			return nil
		}
		attrs, opaque, err := hostXattrs(abs)
		if err != nil {
			return err
		}
		it := layerItem{
			kind:   itemNode,
			path:   rel,
			abs:    abs,
			mtime:  info.ModTime(),
			xattrs: attrs,
			node:   Node{Mode: mode, UID: int(st.Uid), GID: int(st.Gid)},
		}
		switch {
		case mode.IsRegular():
			f, err := os.Open(abs)
			if err != nil {
				return err
			}
			it.node.SHA256, it.node.Size, err = sha256Hex(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("reading %s: %w", abs, err)
			}
			if st.Nlink > 1 {
				it.linkID = fmt.Sprintf("%d:%d", st.Dev, st.Ino)
			}
		case mode&fs.ModeSymlink != 0:
			if it.node.Target, err = os.Readlink(abs); err != nil {
				return err
			}
		case mode&fs.ModeDevice != 0:
			it.node.Dev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		items = append(items, it)
		if opaque && mode.IsDir() {
			items = append(items, layerItem{kind: itemOpaque, path: rel, abs: abs})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", root, err)
	}
	return items, nil
}

// entryItems interprets an entry list the way the OCI layer spec defines
// it. Entries that no well-formed layer has (paths outside the root, links
// to nothing) are an error: such layers have no expected tree.
func entryItems(entries []Entry) ([]layerItem, error) {
	var items []layerItem
	index := map[string]int{} // path -> position in items, for hard links
	for _, e := range entries {
		h := e.header()
		p, ok := treePath(h.Name)
		if !ok || p == "" {
			return nil, fmt.Errorf("entry %q: not a path inside the root", h.Name)
		}
		dir, base := path.Dir(p), path.Base(p)
		if dir == "." {
			dir = ""
		}
		switch {
		case base == OpaqueMarker:
			items = append(items, layerItem{kind: itemOpaque, path: dir})
			continue
		case strings.HasPrefix(base, WhiteoutPrefix):
			items = append(items, layerItem{kind: itemWhiteout, path: path.Join(dir, strings.TrimPrefix(base, WhiteoutPrefix))})
			continue
		}
		it := layerItem{kind: itemNode, path: p, node: Node{Mode: h.FileInfo().Mode(), UID: h.Uid, GID: h.Gid}}
		switch h.Typeflag {
		case tar.TypeReg:
			it.node.Size = int64(len(e.Body))
			it.node.SHA256, _, _ = sha256Hex(strings.NewReader(string(e.Body)))
		case tar.TypeSymlink:
			it.node.Target = h.Linkname
		case tar.TypeChar, tar.TypeBlock:
			it.node.Dev = fmt.Sprintf("%d:%d", h.Devmajor, h.Devminor)
		case tar.TypeLink:
			target, ok := treePath(h.Linkname)
			i, found := index[target]
			if !ok || !found || items[i].kind != itemNode || !items[i].node.Mode.IsRegular() {
				return nil, fmt.Errorf("hard link %q -> %q: no earlier regular file of that name", h.Name, h.Linkname)
			}
			if items[i].linkID == "" {
				items[i].linkID = "entry:" + target
			}
			it.node, it.linkID = items[i].node, items[i].linkID
		case tar.TypeDir, tar.TypeFifo:
		default:
			return nil, fmt.Errorf("entry %q: unsupported type %q", h.Name, h.Typeflag)
		}
		index[p] = len(items)
		items = append(items, it)
	}
	return items, nil
}

// stackNode is a node of the tree being assembled, with the identity of the
// file it came from so that hard links can be grouped at the end.
type stackNode struct {
	Node
	linkID string
}

// overlay assembles the tree layers show when stacked, bottom layer first.
// Within a layer, deletions (whiteouts, opaque directories) apply to the
// layers beneath only, so they are done before the layer's own entries.
func stackLayers(layers [][]layerItem) Tree {
	tree := map[string]stackNode{}
	// removeBelow deletes everything strictly inside dir.
	removeBelow := func(dir string) {
		prefix := dir + "/"
		for p := range tree {
			if dir == "" || strings.HasPrefix(p, prefix) {
				delete(tree, p)
			}
		}
	}
	for li, items := range layers {
		for _, it := range items {
			switch it.kind {
			case itemWhiteout:
				delete(tree, it.path)
				removeBelow(it.path)
			case itemOpaque:
				removeBelow(it.path)
			}
		}
		for _, it := range items {
			if it.kind != itemNode {
				continue
			}
			if old, ok := tree[it.path]; ok && !(old.Mode.IsDir() && it.node.Mode.IsDir()) {
				removeBelow(it.path)
			}
			v := stackNode{Node: it.node}
			if it.linkID != "" {
				v.linkID = fmt.Sprintf("%d/%s", li, it.linkID)
			}
			tree[it.path] = v
		}
	}
	out := make(Tree, len(tree))
	groups := map[string][]string{}
	for p, v := range tree {
		out[p] = v.Node
		if v.linkID != "" {
			groups[v.linkID] = append(groups[v.linkID], p)
		}
	}
	for _, names := range groups {
		sort.Strings(names)
	}
	markLinkGroups(out, groups)
	return out
}
