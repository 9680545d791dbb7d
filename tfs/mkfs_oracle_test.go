package tfs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nanosMkfs returns Nanos's own mkfs, the independent writer: the same
// tree written by it and by Writer must read back the same through Nanos's
// dump and through this package's reader.
func nanosMkfs(t *testing.T) string {
	t.Helper()
	return nanosTool(t, "NANOS_MKFS", "mkfs", "NANOS_DUMP", "to compare with Nanos's own writer")
}

// mkfsManifest writes the manifest Nanos's mkfs reads for the tree at src:
// files by host path, symbolic links by target, directories nested.
func mkfsManifest(t *testing.T, src string) string {
	t.Helper()
	var node func(dir string, depth int) string
	node = func(dir string, depth int) string {
		ents, err := os.ReadDir(dir)
		require.NoError(t, err)
		var b strings.Builder
		b.WriteString("(children:(")
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			b.WriteString("\n" + strings.Repeat(" ", depth) + e.Name() + ":")
			switch {
			case e.IsDir():
				b.WriteString(node(p, depth+1))
			case e.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				require.NoError(t, err)
				b.WriteString("(linktarget:" + target + ")")
			default:
				b.WriteString("(contents:(host:" + p + "))")
			}
		}
		b.WriteString("))")
		return b.String()
	}
	root := node(src, 1)
	// The root's own tuple also holds the program and its arguments.
	return strings.TrimSuffix(root, ")") + "\n program:/bin/app\n arguments:[app one two]\n environment:(USER:root HOME:/)\n)"
}

// oracleTree is a tree both writers can express: directories (one empty),
// files of sizes around sector and extent boundaries, names with spaces
// removed (mkfs's manifest grammar has no quoting), links relative and
// absolute.
func oracleTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	files := map[string]int{
		"bin/app":            70001,
		"etc/passwd":         31,
		"etc/empty-file":     0,
		"lib/x86_64/libc.so": 1 << 20,
		"lib/one-sector":     512,
		"lib/sector-plus":    513,
		"lib/page":           4096,
		"usr/share/日本/語":     1234,
		"a/b/c/d/e/leaf":     7,
	}
	for name, size := range files {
		p := filepath.Join(src, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, pseudo(uint64(size), size), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(src, "tmp/empty"), 0o755))
	require.NoError(t, os.Symlink("libc.so", filepath.Join(src, "lib/x86_64/libc.so.6")))
	require.NoError(t, os.Symlink("/lib/x86_64/libc.so", filepath.Join(src, "bin/abs-link")))
	return src
}

// dumpMetadata is dump's printout of the root tuple (the file tree, each
// file's extents, the manifest keys) without what depends on where a writer
// puts things: the UUID and the extents' sector offsets.
func dumpMetadata(t *testing.T, dump, img string) string {
	t.Helper()
	out, err := exec.Command(dump, img).CombinedOutput()
	require.NoError(t, err, "dump %s: %s", img, out)
	s := regexp.MustCompile(`(?m)^UUID: .*\n`).ReplaceAllString(string(out), "")
	return regexp.MustCompile(`offset:\d+`).ReplaceAllString(s, "offset:N")
}

func TestNanosMkfsOracle(t *testing.T) {
	mkfs := nanosMkfs(t)
	dump := nanosDump(t)
	src := oracleTree(t)
	dir := t.TempDir()

	theirs := filepath.Join(dir, "mkfs.img")
	cmd := exec.Command(mkfs, "-l", "oracle", "-s", "4M", theirs)
	cmd.Stdin = strings.NewReader(mkfsManifest(t, src))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "Nanos mkfs: %s", out)

	ours := filepath.Join(dir, "tfs.img")
	f, err := os.Create(ours)
	require.NoError(t, err)
	w, err := NewWriter(f, WithLabel("oracle"), WithSeed([]byte("mkfs oracle")))
	require.NoError(t, err)
	require.NoError(t, w.AddFS(context.Background(), os.DirFS(src), nil))
	require.NoError(t, w.SetProgram("/bin/app"))
	require.NoError(t, w.SetArguments("app", "one", "two"))
	require.NoError(t, w.SetEnvironment(map[string]string{"USER": "root", "HOME": "/"}))
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())

	t.Run("dump prints the same tree and manifest", func(t *testing.T) {
		assert.Equal(t, dumpMetadata(t, dump, theirs), dumpMetadata(t, dump, ours))
	})
	t.Run("dump extracts the same files", func(t *testing.T) {
		a, _ := dumpTree(t, dump, theirs)
		b, _ := dumpTree(t, dump, ours)
		sameExtract(t, a, b)
		sameExtract(t, src, b)
	})
	t.Run("this reader reads mkfs's image", func(t *testing.T) {
		img, err := os.Open(theirs)
		require.NoError(t, err)
		defer img.Close()
		st, err := img.Stat()
		require.NoError(t, err)
		require.NoError(t, Verify(img, st.Size()), "Verify on Nanos mkfs's image")
		fsys, err := Open(img, st.Size())
		require.NoError(t, err)
		assert.Equal(t, treeListing(t, os.DirFS(src)), treeListing(t, fsys))
	})
}

// treeListing lists every path of fsys with its kind and content (files)
// or target (links), sorted, for comparing two trees as text.
func treeListing(t *testing.T, fsys fs.FS) []string {
	t.Helper()
	var out []string
	require.NoError(t, fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		switch {
		case d.IsDir():
			out = append(out, p+"/")
		case d.Type()&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(fsys, p)
			require.NoError(t, err)
			out = append(out, p+" -> "+target)
		default:
			b, err := fs.ReadFile(fsys, p)
			require.NoError(t, err)
			out = append(out, fmt.Sprintf("%s %d %x", p, len(b), b[:min(len(b), 16)]))
		}
		return nil
	}))
	sort.Strings(out)
	return out
}
