package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nanofs/nanofs/tfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mkfsRun runs the CLI and returns exit code, stdout and stderr.
func mkfsRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// mkfsSourceTree writes a directory with every kind of entry mkfs meets.
func mkfsSourceTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(p string, data []byte) {
		full := filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, data, 0o755))
	}
	big := make([]byte, 3<<20+77)
	for i := range big {
		big[i] = byte(i * 7)
	}
	write("bin/app", big)
	write("etc/hostname", []byte("nanofs\n"))
	write("empty-file", nil)
	write("données/日本語.txt", []byte("unicode\n"))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "var/empty"), 0o755))
	require.NoError(t, os.Link(filepath.Join(dir, "bin/app"), filepath.Join(dir, "bin/app2")))
	require.NoError(t, os.Symlink("app", filepath.Join(dir, "bin/sh")))
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(dir, "hostname")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644))
	return dir
}

// mkfsCompare checks the image against the directory, with the operating
// system as the oracle.
func mkfsCompare(t *testing.T, dir string, img *tfs.FS) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel := filepath.ToSlash(strings.TrimPrefix(strings.TrimPrefix(p, dir), "/"))
		if rel == "" {
			rel = "."
		}
		info, err := d.Info()
		require.NoError(t, err)
		got, err := img.Lstat(rel)
		if info.Mode()&fs.ModeNamedPipe != 0 {
			assert.ErrorIs(t, err, fs.ErrNotExist, rel)
			return nil
		}
		require.NoError(t, err, rel)
		assert.Equal(t, info.Mode().Type(), got.Mode().Type(), rel)
		switch {
		case info.Mode().IsRegular():
			want, err := os.ReadFile(p)
			require.NoError(t, err)
			data, err := img.ReadFile(rel)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, data), "%s: contents differ", rel)
			assert.EqualValues(t, info.Sys().(*syscall.Stat_t).Nlink, got.Sys().(*tfs.FileStat).Nlink, rel)
		case info.Mode()&fs.ModeSymlink != 0:
			want, err := os.Readlink(p)
			require.NoError(t, err)
			target, err := img.ReadLink(rel)
			require.NoError(t, err)
			assert.Equal(t, want, target, rel)
		}
		return nil
	}))
}

func mkfsOpen(t *testing.T, name string) *tfs.FS {
	t.Helper()
	f, err := os.Open(name)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	info, err := f.Stat()
	require.NoError(t, err)
	require.NoError(t, tfs.Verify(f, info.Size()))
	img, err := tfs.Open(f, info.Size())
	require.NoError(t, err)
	return img
}

func TestMkfs(t *testing.T) {
	src := mkfsSourceTree(t)
	out := t.TempDir()
	img := filepath.Join(out, "app.img")
	args := []string{"mkfs", src, "-o", img, "--program", "bin/sh", "-a", "--port", "-a", "8080,9090", "-e", "HOME=/", "-e", "EQ=a=b", "--cwd", "/var", "--label", "app"}
	code, stdout, stderr := mkfsRun(t, args...)
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "skipping /pipe: a FIFO")
	assert.Contains(t, stderr, "wrote "+img)

	fsys := mkfsOpen(t, img)
	mkfsCompare(t, src, fsys)
	assert.Equal(t, "app", fsys.Label())
	assert.Equal(t, tfs.Tuple{
		"program":     tfs.String("/bin/sh"),
		"arguments":   tfs.Strings("/bin/sh", "--port", "8080,9090"),
		"environment": tfs.Tuple{"HOME": tfs.String("/"), "EQ": tfs.String("a=b")},
		"cwd":         tfs.String("/var"),
	}, fsys.Manifest())

	// Same inputs, same bytes; another seed changes only the UUID.
	again := filepath.Join(out, "again.img")
	code, _, stderr = mkfsRun(t, append(args[:3:3], append([]string{again}, args[4:]...)...)...)
	require.Equal(t, 0, code, stderr)
	a, err := os.ReadFile(img)
	require.NoError(t, err)
	b, err := os.ReadFile(again)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(a, b), "mkfs is not deterministic")

	seeded := filepath.Join(out, "seeded.img")
	code, _, stderr = mkfsRun(t, "mkfs", src, "-o", seeded, "--program", "bin/sh", "--seed", "other", "-q")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr, "--quiet")
	assert.NotEqual(t, fsys.UUID(), mkfsOpen(t, seeded).UUID())

	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.Contains(e.Name(), ".tmp-"), "temporary file left: %s", e.Name())
	}
	info, err := os.Stat(img)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o644), info.Mode().Perm())
}

func TestMkfsFreeSpace(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	sizes := map[string]int64{}
	for _, free := range []string{"0", "1MiB", "64M", "1048576"} {
		img := filepath.Join(t.TempDir(), "v.img")
		code, _, stderr := mkfsRun(t, "mkfs", src, "-o", img, "--free-space", free)
		require.Equal(t, 0, code, stderr)
		info, err := os.Stat(img)
		require.NoError(t, err)
		sizes[free] = info.Size()
	}
	assert.Equal(t, sizes["1MiB"], sizes["1048576"])
	assert.Equal(t, sizes["0"]+1<<20, sizes["1MiB"])
	assert.Equal(t, sizes["0"]+64<<20, sizes["64M"])
}

func TestMkfsErrors(t *testing.T) {
	src := mkfsSourceTree(t)
	reserved := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(reserved, "proc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(reserved, "proc/meminfo"), nil, 0o644))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no output", []string{"mkfs", src}, `"output" not set`},
		{"no directory", []string{"mkfs", filepath.Join(src, "nope"), "-o", "OUT"}, "source directory"},
		{"a file as directory", []string{"mkfs", filepath.Join(src, "etc/hostname"), "-o", "OUT"}, "source directory"},
		{"bad env", []string{"mkfs", src, "-o", "OUT", "-e", "NOEQUALS"}, "want NAME=VALUE"},
		{"arg without program", []string{"mkfs", src, "-o", "OUT", "-a", "x"}, "--arg needs --program"},
		{"program not in the tree", []string{"mkfs", src, "-o", "OUT", "--program", "/bin/none"}, `program "/bin/none"`},
		{"program is a directory", []string{"mkfs", src, "-o", "OUT", "--program", "/etc"}, "not a regular file"},
		{"label too long", []string{"mkfs", src, "-o", "OUT", "--label", strings.Repeat("l", 32)}, "label"},
		{"bad free space", []string{"mkfs", src, "-o", "OUT", "--free-space", "lots"}, "is not a size"},
		{"reserved kernel path", []string{"mkfs", reserved, "-o", "OUT"}, "reserved by the Nanos kernel"},
		{"output directory missing", []string{"mkfs", src, "-o", "/nonexistent-dir/x.img"}, "creating the image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			prev := filepath.Join(out, "OUT")
			require.NoError(t, os.WriteFile(prev, []byte("previous image"), 0o644))
			args := append([]string(nil), tc.args...)
			for i, a := range args {
				if a == "OUT" {
					args[i] = prev
				}
			}
			code, stdout, stderr := mkfsRun(t, args...)
			assert.Equal(t, 1, code)
			assert.Empty(t, stdout)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			assert.True(t, strings.HasPrefix(lines[len(lines)-1], "nanofs: "), stderr)
			assert.Contains(t, stderr, tc.want)
			// A failed mkfs loses nothing: the old image is intact, no
			// temporary file is left behind.
			data, err := os.ReadFile(prev)
			require.NoError(t, err)
			assert.Equal(t, "previous image", string(data))
			entries, err := os.ReadDir(out)
			require.NoError(t, err)
			assert.Len(t, entries, 1)
		})
	}
}

// An image written inside the directory it is made from leaves itself
// (and its temporary file) out.
func TestMkfsOutputInsideSource(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	img := filepath.Join(src, "sub", "self.img")
	require.NoError(t, os.MkdirAll(filepath.Dir(img), 0o755))
	require.NoError(t, os.WriteFile(img, []byte("old image"), 0o644))
	for range 2 {
		code, _, stderr := mkfsRun(t, "mkfs", src, "-o", img)
		require.Equal(t, 0, code, stderr)
		fsys := mkfsOpen(t, img)
		es, err := fs.ReadDir(fsys, "sub")
		require.NoError(t, err)
		assert.Empty(t, es)
		got, err := fsys.ReadFile("f")
		require.NoError(t, err)
		assert.Equal(t, "x", string(got))
	}
}
