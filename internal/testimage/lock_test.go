package testimage

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCachedDirOnceAcrossGoroutines(t *testing.T) {
	base := t.TempDir()
	var builds atomic.Int32
	var wg sync.WaitGroup
	dirs := make([]string, 8)
	errs := make([]error, 8)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = cachedDir(base, "k", func(dir string) error {
				builds.Add(1)
				return os.WriteFile(filepath.Join(dir, "payload"), []byte("x"), 0o644)
			})
		}()
	}
	wg.Wait()
	for i := range dirs {
		require.NoError(t, errs[i])
		assert.Equal(t, filepath.Join(base, "k"), dirs[i])
	}
	assert.Equal(t, int32(1), builds.Load())
	assert.FileExists(t, filepath.Join(base, "k", "payload"))
	assertOnlyEntries(t, base, "k", "k.lock")
}

// lockHelperEnv makes TestCachedDirHelperProcess act as one of several
// processes racing for the same cache entry.
const lockHelperEnv = "NANOFS_TESTIMAGE_LOCK_HELPER"

func TestCachedDirHelperProcess(t *testing.T) {
	base := os.Getenv(lockHelperEnv)
	if base == "" {
		t.Skip("helper for TestCachedDirOnceAcrossProcesses")
	}
	_, err := cachedDir(base, "k", func(dir string) error {
		f, err := os.OpenFile(filepath.Join(base, "builds"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString("built\n")
		// Hold the lock a while so that the other processes queue up.
		time.Sleep(200 * time.Millisecond)
		return err
	})
	require.NoError(t, err)
}

func TestCachedDirOnceAcrossProcesses(t *testing.T) {
	base := t.TempDir()
	var cmds []*exec.Cmd
	for range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCachedDirHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), lockHelperEnv+"="+base)
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		require.NoError(t, cmd.Wait())
	}
	data, err := os.ReadFile(filepath.Join(base, "builds"))
	require.NoError(t, err)
	assert.Equal(t, "built\n", string(data), "exactly one process built the entry")
	assert.FileExists(t, filepath.Join(base, "k", completeMarker))
}

func TestCachedDirFailedBuildLeavesNothing(t *testing.T) {
	base := t.TempDir()
	boom := errors.New("boom")
	_, err := cachedDir(base, "k", func(dir string) error {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "a/b"), 0o755))
		require.NoError(t, os.Chmod(filepath.Join(dir, "a"), 0o555))
		return boom
	})
	require.ErrorIs(t, err, boom)
	assertOnlyEntries(t, base, "k.lock")

	dir, err := cachedDir(base, "k", func(dir string) error { return nil })
	require.NoError(t, err)
	assert.True(t, complete(dir))
}

func TestCachedDirReplacesDebris(t *testing.T) {
	base := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(base, "k", "half"), 0o755))      // renamed, never marked
	require.NoError(t, os.MkdirAll(filepath.Join(base, "k.tmp-123", "x"), 0o755)) // a build that died
	require.NoError(t, os.MkdirAll(filepath.Join(base, "k2.tmp-1"), 0o755))       // another key's: kept
	dir, err := cachedDir(base, "k", func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "fresh"), nil, 0o644)
	})
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "fresh"))
	assert.NoDirExists(t, filepath.Join(dir, "half"))
	assertOnlyEntries(t, base, "k", "k.lock", "k2.tmp-1")
}

func TestCachedDirRejectsBadKeys(t *testing.T) {
	for _, key := range []string{"", ".", "..", "a/b", `a\b`} {
		_, err := cachedDir(t.TempDir(), key, func(string) error { return nil })
		assert.Error(t, err, "%q", key)
	}
}

// TestRemoveTreeUnmounts mounts a tmpfs inside a tree and checks that
// removeTree takes it down before deleting, instead of deleting through it.
func TestRemoveTreeUnmounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "tree", "with space", "mnt")
	require.NoError(t, os.MkdirAll(mnt, 0o755))
	require.NoError(t, syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	require.NoError(t, os.WriteFile(filepath.Join(mnt, "f"), nil, 0o644))
	mounts, err := mountsUnder(filepath.Join(dir, "tree"))
	require.NoError(t, err)
	require.Equal(t, []string{mnt}, mounts, "mountinfo's \\040 is a space")

	require.NoError(t, removeTree(filepath.Join(dir, "tree")))
	assert.NoDirExists(t, filepath.Join(dir, "tree"))
	mounts, err = mountsUnder(dir)
	require.NoError(t, err)
	assert.Empty(t, mounts)
}

func assertOnlyEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	assert.ElementsMatch(t, names, got, "entries of %s: %s", dir, strings.Join(got, " "))
}
