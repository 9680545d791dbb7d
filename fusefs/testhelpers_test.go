package fusefs

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// requireFUSE skips a test that needs a real mount when the machine cannot
// make one, saying what to install.
func requireFUSE(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("real FUSE mount: skipped with -short")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse (load the fuse kernel module) and fuse3 (apt-get install fuse3)")
	}
	if os.Geteuid() != 0 {
		if _, err := thisHost.fusermount(); err != nil {
			t.Skip("needs fusermount3: install fuse3 (apt-get install fuse3)")
		}
	}
}

// mountT mounts fsys on a fresh directory for the length of the test.
func mountT(t testing.TB, fsys fs.FS, opts ...Option) (string, *Server) {
	t.Helper()
	requireFUSE(t)
	dir := t.TempDir()
	srv, err := Mount(dir, fsys, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			_ = Unmount(dir)
		}
	})
	return dir, srv
}

// largeSize is big enough that reading it whole would show in the read
// counters, small enough to hash quickly.
const largeSize = 24<<20 + 12345

// buildTree writes the source tree the mount tests compare against: every
// kind of entry the mount must reproduce.
func buildTree(t testing.TB) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.Mkdir(root, 0o755))
	w := func(name string, mode os.FileMode, data []byte) {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, data, 0o600))
		require.NoError(t, os.Chmod(p, mode))
	}
	w("hello.txt", 0o644, []byte("hello, world\n"))
	w("empty", 0o644, nil)
	w("bin/tool", 0o755|os.ModeSetuid, []byte("#!/bin/sh\necho tool\n"))
	w("secret", 0o600, []byte("only root"))
	w("noperm", 0, []byte("mode 0000"))
	w("héllo wörld ☃.txt", 0o644, []byte("unicode\n"))
	w("日本語/ファイル", 0o644, []byte("japanese\n"))
	w("with space/and\ttab", 0o644, []byte("space\n"))
	w("new\nline", 0o644, []byte("newline\n"))

	big := make([]byte, largeSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	w("large/blob.bin", 0o644, big)

	deep := root
	for i := range 40 {
		deep = filepath.Join(deep, "d"+strings.Repeat("x", i%7))
	}
	require.NoError(t, os.MkdirAll(deep, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(deep, "leaf"), []byte("deep\n"), 0o644))

	// Hard links: one file, three names in two directories.
	w("links/original", 0o640, []byte("linked content\n"))
	require.NoError(t, os.Mkdir(filepath.Join(root, "links2"), 0o755))
	require.NoError(t, os.Link(filepath.Join(root, "links/original"), filepath.Join(root, "links/second")))
	require.NoError(t, os.Link(filepath.Join(root, "links/original"), filepath.Join(root, "links2/third")))

	// Symlinks: absolute, relative, dangling, to a directory, a chain.
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(root, "abs-link")))
	require.NoError(t, os.Symlink("../hello.txt", filepath.Join(root, "bin/rel-link")))
	require.NoError(t, os.Symlink("does/not/exist", filepath.Join(root, "dangling")))
	require.NoError(t, os.Symlink("日本語", filepath.Join(root, "dir-link")))
	require.NoError(t, os.Symlink("bin/rel-link", filepath.Join(root, "chain")))

	require.NoError(t, syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(root, "emptydir"), 0o700))
	require.NoError(t, os.Mkdir(filepath.Join(root, "sticky"), 0o777))
	require.NoError(t, os.Chmod(filepath.Join(root, "sticky"), 0o777|os.ModeSticky))

	if os.Geteuid() == 0 {
		require.NoError(t, os.Lchown(filepath.Join(root, "hello.txt"), 1000, 1001))
		require.NoError(t, os.Lchown(filepath.Join(root, "日本語"), 12345, 54321))
		require.NoError(t, os.Lchown(filepath.Join(root, "dangling"), 7, 8))
	}

	// Distinct mtimes with nanoseconds, files before their directories
	// (writing into a directory changes its mtime).
	base := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	var paths []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		ts := base.Add(time.Duration(i) * time.Hour)
		ns := []unix.Timespec{unix.NsecToTimespec(ts.UnixNano()), unix.NsecToTimespec(ts.UnixNano())}
		require.NoError(t, unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ns, unix.AT_SYMLINK_NOFOLLOW))
	}
	return root
}

func sha256File(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}
