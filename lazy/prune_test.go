package lazy_test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

// deadPID is the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

// sizeOf is the bytes of the cache's manifests entries matching glob.
func sizeOf(t *testing.T, dir, glob string) int64 {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "manifests", glob))
	require.NoError(t, err)
	var n int64
	for _, name := range names {
		info, err := os.Stat(name)
		require.NoError(t, err)
		n += info.Size()
	}
	return n
}

// cacheSize is the bytes of the store's entries (lock files included).
func cacheSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	}))
	return n
}

// TestStaleTempFiles: what a process killed while writing the cache left
// behind (its PID in the name) goes at the next Open and at PruneCache;
// the temporary files of live processes stay.
func TestStaleTempFiles(t *testing.T) {
	cache := t.TempDir()
	layout := testimage.WriteOCILayout(t, testimage.EdgeSpec().Image(t, testimage.Gzip))
	sub := filepath.Join(cache, "layers", "ab")
	require.NoError(t, os.MkdirAll(sub, 0o755))
	stale := filepath.Join(sub, fmt.Sprintf(".tmp-%d-1", deadPID(t)))
	live := filepath.Join(sub, ".tmp-1-2") // init never dies
	require.NoError(t, os.WriteFile(stale, make([]byte, 1<<20), 0o644))
	require.NoError(t, os.WriteFile(live, nil, 0o644))

	img, err := lazy.Open(t.Context(), layout, lazy.WithCacheDir(cache))
	require.NoError(t, err)
	img.Close()
	assert.NoFileExists(t, stale, "removed by the next Open")
	assert.FileExists(t, live)

	stale2 := filepath.Join(sub, fmt.Sprintf(".tmp-%d-3", deadPID(t)))
	require.NoError(t, os.WriteFile(stale2, make([]byte, 1000), 0o644))
	res, err := lazy.PruneCache(cache, -1)
	require.NoError(t, err)
	assert.Equal(t, 1, res.TempFiles)
	assert.Equal(t, int64(1000), res.TempBytes)
	assert.Zero(t, res.Entries)
	assert.NoFileExists(t, stale2)
	assert.FileExists(t, live)
}

// TestPruneCache: with a size bound, the least recently used entries go
// first; the image used last stays whole and opens without fetching.
func TestPruneCache(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "old", testimage.EdgeSpec().Image(t, testimage.Zstd))
	reg.Push(t, "new", testimage.FixturesSpec(t).Image(t, testimage.Gzip))
	cache := t.TempDir()
	open := func(ref string) {
		t.Helper()
		img, err := lazy.Open(t.Context(), ref, lazy.WithCacheDir(cache))
		require.NoError(t, err)
		img.Close()
	}
	open(reg.Ref("old"))
	oldSize := cacheSize(t, cache)
	// Make the old image's entries clearly older.
	past := time.Now().Add(-time.Hour)
	require.NoError(t, filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chtimes(p, past, past)
		}
		return err
	}))
	open(reg.Ref("new"))
	total := cacheSize(t, cache)
	// The record that the registry speaks plain HTTP was written with the
	// old image and read (used) with the new one: it stays with the new
	// image's entries, whose share it joins.
	newSize := total - oldSize + sizeOf(t, cache, "*/*.plain-http")

	res, err := lazy.PruneCache(cache, newSize)
	require.NoError(t, err)
	t.Logf("%+v (old %d, new %d)", *res, oldSize, newSize)
	assert.Positive(t, res.Entries)
	assert.LessOrEqual(t, res.Remaining, newSize)
	assert.LessOrEqual(t, cacheSize(t, cache), newSize)

	c := testimage.StartCounter(t, reg.Host)
	img, err := lazy.Open(t.Context(), c.Ref("new"), lazy.WithCacheDir(cache))
	require.NoError(t, err)
	img.Close()
	assert.Zero(t, c.Stats().BlobBytes, "the image used last was kept")

	c.Reset()
	img, err = lazy.Open(t.Context(), c.Ref("old"), lazy.WithCacheDir(cache))
	require.NoError(t, err, "a pruned image is fetched again")
	img.Close()
	assert.Positive(t, c.Stats().BlobBytes)

	res, err = lazy.PruneCache(cache, 0)
	require.NoError(t, err)
	assert.Zero(t, res.Remaining)
	_, err = lazy.PruneCache(filepath.Join(cache, "missing"), 0)
	assert.ErrorContains(t, err, "missing")
}
