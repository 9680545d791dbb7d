package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanofs/nanofs/fusefs"
	"github.com/nanofs/nanofs/tfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireFUSEForMount skips a test that makes real mounts on a machine that cannot.
func requireFUSEForMount(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real FUSE mount: skipped with -short")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse (load the fuse kernel module) and fuse3 (apt-get install fuse3)")
	}
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			t.Skip("needs fusermount3: install fuse3 (apt-get install fuse3)")
		}
	}
}

// mountSourceTree is a small directory to mount.
func mountSourceTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("nanofs\n"), 0o644))
	require.NoError(t, os.Symlink("etc/hostname", filepath.Join(src, "link")))
	return src
}

// mountedFSType asks findmnt(8), not nanofs, what is mounted on dir ("" for
// nothing).
func mountedFSType(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("findmnt", "-n", "-o", "FSTYPE", "--mountpoint", dir).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return ""
	}
	require.NoError(t, err, "findmnt")
	lines := strings.Fields(string(out))
	return lines[len(lines)-1]
}

func runMountCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestMountRejects(t *testing.T) {
	src := mountSourceTree(t)
	full := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o644))
	file := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(file, []byte("not an image"), 0o644))
	mnt := t.TempDir()

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"DIR not empty", []string{"mount", src, full}, `is not empty (it holds "x"): the mount point must be an empty directory`},
		{"DIR missing", []string{"mount", src, filepath.Join(mnt, "nope")}, "does not exist"},
		{"DIR is a file", []string{"mount", src, file}, "is not a directory"},
		{"no such source", []string{"mount", filepath.Join(mnt, "nope"), mnt}, "is not a local OCI layout directory or docker-save tarball, nor an image reference"},
		{"file that is no disk image", []string{"mount", file, mnt}, "is neither a Nanos disk image nor a docker-save tarball"},
		{"one argument", []string{"mount", src}, "accepts 2 arg(s)"},
		{"umount of a plain directory", []string{"umount", mnt}, "no nanofs mount there"},
		{"umount of another filesystem", []string{"umount", "/proc"}, "not a nanofs one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runMountCLI(t, tc.args...)
			assert.Equal(t, 1, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, "nanofs: ")
			assert.Contains(t, stderr, tc.want)
		})
	}
}

func TestMountForegroundUntilSignal(t *testing.T) {
	requireFUSEForMount(t)
	src, mnt := mountSourceTree(t), t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr bytes.Buffer
	codec := make(chan int, 1)
	go func() { codec <- run(ctx, []string{"mount", src, mnt}, &bytes.Buffer{}, &stderr) }()

	waitForMount(t, func() bool { return mountedFSType(t, mnt) == "fuse.nanofs" })
	b, err := os.ReadFile(filepath.Join(mnt, "link"))
	require.NoError(t, err)
	assert.Equal(t, "nanofs\n", string(b))

	cancel() // what Ctrl-C does through main's signal.NotifyContext
	select {
	case code := <-codec:
		assert.Equal(t, 0, code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("mount did not return after its context was cancelled")
	}
	assert.Empty(t, mountedFSType(t, mnt), "unmounted on the way out")
	assert.Contains(t, stderr.String(), "mounted "+src+" on "+mnt)
}

// buildNanofsForMount compiles this command, for the tests that need a separate
// server process.
func buildNanofsForMount(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "nanofs")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func runMountBin(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), o.String(), e.String()
	}
	require.NoError(t, err)
	return 0, o.String(), e.String()
}

// serverAlive reports whether pid is a running (not zombie) process. The server
// is not our child, so it is reaped by whoever adopted it, maybe late.
func serverAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitForMount(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out waiting")
}

func TestMountBackground(t *testing.T) {
	requireFUSEForMount(t)
	bin := buildNanofsForMount(t)
	src := mountSourceTree(t)

	startServer := func(t *testing.T, mnt string) int {
		code, stdout, stderr := runMountBin(t, bin, "mount", "--background", src, mnt)
		require.Equal(t, 0, code, stderr)
		pid, err := strconv.Atoi(strings.TrimSpace(stdout))
		require.NoError(t, err, "stdout is the pid: %q", stdout)
		require.Positive(t, pid, "a pid of 0 or -1 would make the cleanup's kill(2) signal every process")
		t.Cleanup(func() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			if mountedFSType(t, mnt) != "" {
				_ = exec.Command("umount", "-l", mnt).Run()
			}
		})
		// Ready means ready: no waiting before the first read.
		assert.Equal(t, "fuse.nanofs", mountedFSType(t, mnt))
		b, err := os.ReadFile(filepath.Join(mnt, "etc/hostname"))
		require.NoError(t, err)
		assert.Equal(t, "nanofs\n", string(b))
		assert.True(t, serverAlive(pid))
		return pid
	}

	t.Run("umount stops the server", func(t *testing.T) {
		mnt := t.TempDir()
		pid := startServer(t, mnt)
		code, _, stderr := runMountBin(t, bin, "umount", mnt)
		require.Equal(t, 0, code, stderr)
		assert.Empty(t, mountedFSType(t, mnt))
		waitForMount(t, func() bool { return !serverAlive(pid) })
	})

	t.Run("SIGTERM unmounts cleanly", func(t *testing.T) {
		mnt := t.TempDir()
		pid := startServer(t, mnt)
		require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
		waitForMount(t, func() bool { return !serverAlive(pid) })
		assert.Empty(t, mountedFSType(t, mnt))
	})

	t.Run("umount clears the mount of a killed server", func(t *testing.T) {
		mnt := t.TempDir()
		pid := startServer(t, mnt)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		waitForMount(t, func() bool { return !serverAlive(pid) })
		_, err := os.ReadDir(mnt)
		if !errors.Is(err, syscall.ECONNABORTED) { // the first access after the death
			require.ErrorIs(t, err, syscall.ENOTCONN, "kill -9 leaves a dead mount behind")
		}
		assert.Equal(t, "fuse.nanofs", mountedFSType(t, mnt))

		code, _, stderr := runMountBin(t, bin, "mount", src, mnt)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "nanofs umount")

		code, _, stderr = runMountBin(t, bin, "umount", mnt)
		require.Equal(t, 0, code, stderr)
		assert.Empty(t, mountedFSType(t, mnt))
		entries, err := os.ReadDir(mnt)
		require.NoError(t, err)
		assert.Empty(t, entries)
	})

	t.Run("errors reach the caller", func(t *testing.T) {
		full := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o644))
		code, stdout, stderr := runMountBin(t, bin, "mount", "--background", src, full)
		assert.Equal(t, 1, code)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "is not empty")
	})
}

func TestMountHasFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"mount", "--background", "a", "b"}, true},
		{[]string{"-v", "mount", "--background=true", "a", "b"}, true},
		{[]string{"mount", "a", "b"}, false},
		{[]string{"mount", "--", "--background", "b"}, false},
		{[]string{"mount", "--backgrounds", "b"}, false},
	} {
		assert.Equalf(t, tc.want, hasFlag(tc.args, "background"), "%q", tc.args)
	}
}

// mountInProcess runs `nanofs mount SOURCE DIR` in this process until the
// returned stop is called.
func mountInProcess(t *testing.T, src, mnt string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	codec := make(chan int, 1)
	go func() { codec <- run(ctx, []string{"mount", src, mnt}, &bytes.Buffer{}, &stderr) }()
	ready := func() bool { return mountedFSType(t, mnt) == "fuse.nanofs" }
	for deadline := time.Now().Add(30 * time.Second); !ready(); time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-codec:
			t.Fatalf("mount exited with %d: %s", code, stderr.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "mount did not become ready")
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		assert.Equal(t, 0, <-codec, stderr.String())
	}
	t.Cleanup(stop)
	return stop
}

func TestMountDiskImage(t *testing.T) {
	requireFUSEForMount(t)
	files := map[string]string{
		"etc/hostname":          "nanofs\n",
		"usr/bin/app":           strings.Repeat("ELF", 100000),
		"usr/lib/libx.so.1":     "library",
		"empty":                 "",
		"héllo wörld/☃ unicode": "snow",
	}
	imgPath := filepath.Join(t.TempDir(), "disk.img")
	out, err := os.Create(imgPath)
	require.NoError(t, err)
	w, err := tfs.NewWriter(out)
	require.NoError(t, err)
	for name, body := range files {
		require.NoError(t, w.AddFile(name, int64(len(body)), strings.NewReader(body)))
	}
	require.NoError(t, w.Mkdir("var/empty"))
	require.NoError(t, w.Symlink("libx.so.1", "usr/lib/libx.so"))
	require.NoError(t, w.Symlink("/etc/hostname", "abs"))
	require.NoError(t, w.Link("usr/bin/app", "usr/bin/app-link"))
	require.NoError(t, w.Close())
	require.NoError(t, out.Close())

	mnt := t.TempDir()
	mountInProcess(t, imgPath, mnt)

	// The oracle: the same image read by tfs itself, through io/fs.
	f, err := os.Open(imgPath)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	img, err := tfs.Open(f, fi.Size())
	require.NoError(t, err)

	var want, got []string
	require.NoError(t, fs.WalkDir(img, ".", func(p string, d fs.DirEntry, err error) error {
		want = append(want, p)
		return err
	}))
	require.NoError(t, filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(mnt, p)
		got = append(got, filepath.ToSlash(rel))
		return err
	}))
	sort.Strings(want)
	sort.Strings(got)
	require.Equal(t, want, got)

	inodes := map[uint64]string{}
	for _, p := range want {
		info, err := img.Lstat(p)
		require.NoError(t, err)
		mi, err := os.Lstat(filepath.Join(mnt, p))
		require.NoError(t, err)
		assert.Equalf(t, info.Mode(), mi.Mode(), "%s: mode", p)
		if !info.IsDir() {
			assert.Equalf(t, info.Size(), mi.Size(), "%s: size", p)
		}
		assert.Truef(t, info.ModTime().Equal(mi.ModTime()), "%s: mtime %v, mounted %v", p, info.ModTime(), mi.ModTime())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := img.ReadLink(p)
			require.NoError(t, err)
			mt, err := os.Readlink(filepath.Join(mnt, p))
			require.NoError(t, err)
			assert.Equal(t, target, mt, p)
		case info.Mode().IsRegular():
			body, err := os.ReadFile(filepath.Join(mnt, p))
			require.NoError(t, err)
			expected, err := fs.ReadFile(img, p)
			require.NoError(t, err)
			assert.Equalf(t, sha256.Sum256(expected), sha256.Sum256(body), "%s: content", p)
		}
		// When the image tells hard links apart, so must the mount.
		if id, ok := info.Sys().(fusefs.Sys); ok && id.Ino() != 0 && !info.IsDir() {
			ino := mi.Sys().(*syscall.Stat_t).Ino
			if other, seen := inodes[ino]; seen {
				assert.Equalf(t, id.Ino(), mustIno(t, img, other), "%s and %s share an inode in the mount only", p, other)
			}
			inodes[ino] = p
		}
	}
	for name, body := range files {
		b, err := os.ReadFile(filepath.Join(mnt, name))
		require.NoError(t, err)
		assert.Equal(t, body, string(b), name)
	}
	app, err := os.Stat(filepath.Join(mnt, "usr/bin/app"))
	require.NoError(t, err)
	alias, err := os.Stat(filepath.Join(mnt, "usr/bin/app-link"))
	require.NoError(t, err)
	if _, ok := mustInfo(t, img, "usr/bin/app").Sys().(fusefs.Sys); ok {
		assert.True(t, os.SameFile(app, alias), "hard links share one inode")
	} else {
		t.Logf("tfs FileInfo.Sys() (%T) does not implement fusefs.Sys: hard links are not detected", mustInfo(t, img, "usr/bin/app").Sys())
	}
}

func mustInfo(t *testing.T, fsys fs.ReadLinkFS, p string) fs.FileInfo {
	t.Helper()
	fi, err := fsys.Lstat(p)
	require.NoError(t, err)
	return fi
}

func mustIno(t *testing.T, fsys fs.ReadLinkFS, p string) uint64 {
	t.Helper()
	return mustInfo(t, fsys, p).Sys().(fusefs.Sys).Ino()
}
