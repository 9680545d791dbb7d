package lazy_test

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
	"github.com/stretchr/testify/require"
)

// treeOf walks a lazy image into a testimage.Tree, with owners, device
// numbers and hard-link groups taken from lazy.Stat. Directories that no
// layer has an entry for (implied by deeper entries) are left out, as a
// flattened tar such as mutate.Extract's has no entry for them either;
// each must be an ancestor of something in the tree.
func treeOf(t testing.TB, img *lazy.Image) testimage.Tree {
	t.Helper()
	tree, err := testimage.TreeFromFS(img)
	require.NoError(t, err)
	groups := map[uint64][]string{}
	var implied []string
	err = fs.WalkDir(img, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*lazy.Stat)
		if !ok {
			return fmt.Errorf("%s: Sys() is %T, want *lazy.Stat", p, info.Sys())
		}
		if st.Layer() < 0 {
			implied = append(implied, p)
		}
		n := tree[p]
		n.UID, n.GID = int(st.Uid()), int(st.Gid())
		if info.Mode()&fs.ModeDevice != 0 {
			major, minor := st.Rdev()
			n.Dev = fmt.Sprintf("%d:%d", major, minor)
		}
		if info.Mode().IsRegular() && st.Nlink() > 1 {
			groups[st.Ino()] = append(groups[st.Ino()], p)
		}
		tree[p] = n
		return nil
	})
	require.NoError(t, err)
	for _, p := range implied {
		require.True(t, slices.ContainsFunc(tree.Paths(), func(q string) bool { return strings.HasPrefix(q, p+"/") }),
			"implied directory %s has nothing below it", p)
		delete(tree, p)
	}
	for _, names := range groups {
		first := slices.Min(names)
		for _, p := range names {
			n := tree[p]
			n.LinkGroup = first
			tree[p] = n
		}
	}
	return tree
}

// requireTreesEqual fails with at most 40 lines of difference.
func requireTreesEqual(t testing.TB, want, got testimage.Tree, msg string) {
	t.Helper()
	diff := testimage.DiffTrees(want, got)
	if len(diff) == 0 {
		return
	}
	n := len(diff)
	if n > 40 {
		diff = append(diff[:40], fmt.Sprintf("... and %d more", n-40))
	}
	t.Fatalf("%s: %d differences:\n%s", msg, n, strings.Join(diff, "\n"))
}
