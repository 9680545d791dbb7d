package tfs

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeDir writes a real directory tree with every kind of entry.
func makeDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(p string, data []byte) {
		full := filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, data, 0o644))
	}
	write("bin/app", pseudo(1, 70000))
	write("etc/passwd", []byte("root:x:0:0:root:/root:/bin/nobash\n"))
	write("empty", nil)
	write("ünïcödé/日本", []byte("unicode"))
	write(deepPath(40)+"/leaf", []byte("deep"))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "var/empty"), 0o755))
	require.NoError(t, os.Link(filepath.Join(dir, "bin/app"), filepath.Join(dir, "bin/app-hardlink")))
	require.NoError(t, os.Link(filepath.Join(dir, "bin/app"), filepath.Join(dir, "usr-app")))
	require.NoError(t, os.Symlink("app", filepath.Join(dir, "bin/rel")))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "abs")))
	require.NoError(t, os.Symlink("../nowhere", filepath.Join(dir, "bin/dangling")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	return dir
}

// sameTree compares a TFS with the directory it was made from, using the
// operating system as the oracle.
func sameTree(t *testing.T, dir string, f *FS) {
	t.Helper()
	count := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		require.NoError(t, err)
		if info.Mode()&fs.ModeNamedPipe != 0 {
			_, err := f.Lstat(rel)
			assert.ErrorIs(t, err, fs.ErrNotExist, "FIFOs are skipped")
			return nil
		}
		count++
		got, err := f.Lstat(rel)
		require.NoError(t, err, rel)
		assert.Equal(t, info.Mode().Type(), got.Mode().Type(), rel)
		switch {
		case info.Mode().IsRegular():
			want, err := os.ReadFile(p)
			require.NoError(t, err)
			data, err := f.ReadFile(rel)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, data), rel)
			assert.Equal(t, info.Sys().(*syscall.Stat_t).Nlink, got.Sys().(*FileStat).Nlink, rel)
		case info.Mode()&fs.ModeSymlink != 0:
			want, err := os.Readlink(p)
			require.NoError(t, err)
			target, err := f.ReadLink(rel)
			require.NoError(t, err)
			assert.Equal(t, want, target)
		}
		return nil
	})
	require.NoError(t, err)
	n := 0
	require.NoError(t, fs.WalkDir(f, ".", func(string, fs.DirEntry, error) error { n++; return nil }))
	assert.Equal(t, count, n, "entry count")
}

func TestAddFS(t *testing.T) {
	dir := makeDir(t)
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	defer root.Close()

	var skipped []string
	img := build(t, func(w *Writer) {
		require.NoError(t, w.AddFS(context.Background(), root.FS(), func(name string, mode fs.FileMode) {
			skipped = append(skipped, name+" "+mode.String())
		}))
		require.NoError(t, w.SetProgram("/bin/app"))
	})
	assert.Equal(t, []string{"fifo p---------"}, skipped)
	require.NoError(t, Verify(img, img.size()))
	f := open(t, img)
	sameTree(t, dir, f)
	a, _ := f.Lstat("bin/app")
	b, _ := f.Lstat("usr-app")
	assert.Equal(t, a.Sys().(*FileStat).Inode, b.Sys().(*FileStat).Inode, "hard links share a tuple")

	// Copying the volume through its own fs.FS gives the same bytes.
	again := build(t, func(w *Writer) {
		require.NoError(t, w.AddFS(context.Background(), f, nil))
		require.NoError(t, w.SetProgram("/bin/app"))
	})
	assert.True(t, bytes.Equal(img.b, again.b), "TFS -> fs.FS -> TFS must be byte-identical")

	// Without a skip function, unrepresentable entries are errors.
	w, err := NewWriter(&image{})
	require.NoError(t, err)
	err = w.AddFS(context.Background(), os.DirFS(dir), nil)
	assert.ErrorContains(t, err, "fifo")
}

func TestAddFSCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w, err := NewWriter(&image{})
	require.NoError(t, err)
	assert.ErrorIs(t, w.AddFS(ctx, fstest.MapFS{"a": {Data: []byte("x")}}, nil), context.Canceled)
}

// lyingFS reports sizes one byte smaller than the data.
type lyingFS struct{ fstest.MapFS }

type lyingEntry struct{ fs.DirEntry }
type lyingInfo struct{ fs.FileInfo }

func (i lyingInfo) Size() int64 { return i.FileInfo.Size() - 1 }
func (e lyingEntry) Info() (fs.FileInfo, error) {
	i, err := e.DirEntry.Info()
	return lyingInfo{i}, err
}

func (l lyingFS) ReadDir(name string) ([]fs.DirEntry, error) {
	es, err := l.MapFS.ReadDir(name)
	for i := range es {
		es[i] = lyingEntry{es[i]}
	}
	return es, err
}

func TestAddFSFileGrew(t *testing.T) {
	w, err := NewWriter(&image{})
	require.NoError(t, err)
	err = w.AddFS(context.Background(), lyingFS{fstest.MapFS{"log": {Data: []byte("growing"), ModTime: time.Now()}}}, nil)
	assert.ErrorContains(t, err, "grew")
	assert.True(t, strings.Contains(err.Error(), "log"))
}

// Every copy path — kernel copy into a file, buffered copy into any
// io.WriterAt, kernel copy into a stream — writes the same bytes.
func TestCopyPathsAgree(t *testing.T) {
	dir := makeDir(t)
	require.NoError(t, os.Remove(filepath.Join(dir, "fifo")))
	src := os.DirFS(dir)
	manifest := func(w *Writer) { require.NoError(t, w.SetProgram("/bin/app")) }

	mem := build(t, func(w *Writer) { require.NoError(t, w.AddFS(context.Background(), hiddenFS{src}, nil)); manifest(w) })

	out, err := os.Create(filepath.Join(t.TempDir(), "vol"))
	require.NoError(t, err)
	defer out.Close()
	const off = 4608
	w, err := NewWriter(out, WithOffset(off))
	require.NoError(t, err)
	require.NoError(t, w.AddFS(context.Background(), src, nil))
	manifest(w)
	require.NoError(t, w.Close())
	fromFile := make([]byte, w.Size())
	_, err = out.ReadAt(fromFile, off)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(mem.b, fromFile), "kernel copy into a file differs")

	var dataSize int64
	seen := map[uint64]bool{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d.Type().IsRegular() {
			info, _ := d.Info()
			if ino := info.Sys().(*syscall.Stat_t).Ino; !seen[ino] {
				seen[ino] = true
				dataSize += DataSize(info.Size())
			}
		}
		return err
	}))
	var stream bytes.Buffer
	sw, err := NewStreamWriter(&stream, dataSize)
	require.NoError(t, err)
	require.NoError(t, sw.AddFS(context.Background(), src, nil))
	manifest(sw)
	require.NoError(t, sw.Close())
	assert.True(t, bytes.Equal(mem.b, stream.Bytes()), "stream output differs")

	_, err = NewStreamWriter(&stream, 0, WithOffset(512))
	assert.Error(t, err)
}

// hiddenFS hides that files are *os.File (forces the buffered copy).
type hiddenFS struct{ fs.FS }

type hiddenFile struct{ fs.File }

func (h hiddenFS) Open(name string) (fs.File, error) {
	f, err := h.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return hiddenFile{f}, nil
}

func (h hiddenFS) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(h.FS, name) }
func (h hiddenFS) ReadLink(name string) (string, error)       { return fs.ReadLink(h.FS, name) }
func (h hiddenFS) Lstat(name string) (fs.FileInfo, error)     { return fs.Lstat(h.FS, name) }
