package fusefs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// walkRel lists every path under root, relative to it, the way
// filepath.WalkDir sees it.
func walkRel(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		out = append(out, rel)
		return err
	}))
	sort.Strings(out)
	return out
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(p, &st), p)
	return st
}

// compareWithSource checks the mounted tree against the source directory,
// which filepath.WalkDir and lstat(2) read independently of fusefs: same
// names, modes, owners, sizes, link counts, mtimes, symlink targets and
// file contents, and hard links where the source has them.
func compareWithSource(t *testing.T, src, mnt string) {
	want := walkRel(t, src)
	require.Equal(t, want, walkRel(t, mnt), "the mounted tree lists different names")
	srcToMnt := map[uint64]uint64{}
	mntToSrc := map[uint64]uint64{}
	for _, rel := range want {
		s, m := lstat(t, filepath.Join(src, rel)), lstat(t, filepath.Join(mnt, rel))
		assert.Equalf(t, fmt.Sprintf("%o", s.Mode), fmt.Sprintf("%o", m.Mode), "%s: mode", rel)
		assert.Equalf(t, s.Nlink, m.Nlink, "%s: nlink", rel)
		assert.Equalf(t, s.Uid, m.Uid, "%s: uid", rel)
		assert.Equalf(t, s.Gid, m.Gid, "%s: gid", rel)
		assert.Equalf(t, s.Size, m.Size, "%s: size", rel)
		assert.Equalf(t, s.Mtim, m.Mtim, "%s: mtime", rel)
		if prev, ok := srcToMnt[s.Ino]; ok {
			assert.Equalf(t, prev, m.Ino, "%s: a hard link got its own inode", rel)
		}
		if prev, ok := mntToSrc[m.Ino]; ok {
			assert.Equalf(t, prev, s.Ino, "%s: shares an inode number with another file", rel)
		}
		srcToMnt[s.Ino], mntToSrc[m.Ino] = m.Ino, s.Ino
		switch s.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			st, err := os.Readlink(filepath.Join(src, rel))
			require.NoError(t, err)
			mt, err := os.Readlink(filepath.Join(mnt, rel))
			require.NoError(t, err)
			assert.Equalf(t, st, mt, "%s: symlink target", rel)
		case unix.S_IFREG:
			assert.Equalf(t, sha256File(t, filepath.Join(src, rel)), sha256File(t, filepath.Join(mnt, rel)), "%s: content", rel)
		}
	}
}

func TestMountDirectoryMatchesSource(t *testing.T) {
	requireFUSE(t)
	src := buildTree(t)
	root, err := os.OpenRoot(src)
	require.NoError(t, err)
	defer root.Close()
	mnt, _ := mountT(t, root.FS())
	compareWithSource(t, src, mnt)

	// The kernel follows the mount's symlinks itself.
	b, err := os.ReadFile(filepath.Join(mnt, "chain"))
	require.NoError(t, err)
	assert.Equal(t, "hello, world\n", string(b))
	_, err = os.Stat(filepath.Join(mnt, "dangling"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestMountInodesAreStable(t *testing.T) {
	requireFUSE(t)
	src := buildTree(t)
	root, err := os.OpenRoot(src)
	require.NoError(t, err)
	defer root.Close()
	mapfs := fstest.MapFS{
		"a/b/c": {Data: []byte("c")},
		"a/d":   {Data: []byte("d")},
		"e":     {Mode: fs.ModeSymlink, Data: []byte("a/d")},
	}
	for name, fsys := range map[string]fs.FS{"directory": root.FS(), "mapfs": mapfs} {
		t.Run(name, func(t *testing.T) {
			inodes := func() map[string]uint64 {
				mnt, srv := mountT(t, fsys)
				defer srv.Unmount()
				out := map[string]uint64{}
				for _, rel := range walkRel(t, mnt) {
					out[rel] = lstat(t, filepath.Join(mnt, rel)).Ino
				}
				return out
			}
			first := inodes()
			assert.Equal(t, first, inodes(), "inode numbers changed from one mount to the next")
		})
	}
}

// sysInfo is a FileInfo.Sys() value of a filesystem that is not a host
// directory, as the lazy and tfs packages produce.
type sysInfo struct {
	ino      uint64
	nlink    uint32
	uid, gid uint32
}

func (s sysInfo) Ino() uint64   { return s.ino }
func (s sysInfo) Nlink() uint32 { return s.nlink }
func (s sysInfo) Uid() uint32   { return s.uid }
func (s sysInfo) Gid() uint32   { return s.gid }

var _ Sys = sysInfo{}

func TestMountGenericFS(t *testing.T) {
	requireFUSE(t)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	link := sysInfo{ino: 42, nlink: 2, uid: 1000, gid: 100}
	fsys := fstest.MapFS{
		"etc/passwd":        {Data: []byte("root:x:0:0\n"), Mode: 0o644, ModTime: mtime},
		"usr/bin/app":       {Data: []byte("ELF..."), Mode: 0o755 | fs.ModeSetuid, ModTime: mtime, Sys: link},
		"usr/bin/app-alias": {Data: []byte("ELF..."), Mode: 0o755 | fs.ModeSetuid, ModTime: mtime, Sys: link},
		"usr/lib/x/y/z":     {Data: []byte("z"), Mode: 0o600, Sys: sysInfo{ino: 7, nlink: 1, uid: 5, gid: 6}},
		"usr/lib/link":      {Data: []byte("x/y/z"), Mode: fs.ModeSymlink | 0o777},
		"usr/share":         {Mode: fs.ModeDir | 0o555, ModTime: mtime},
		"run/fifo":          {Mode: fs.ModeNamedPipe | 0o600},
		"dev/null":          {Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666},
	}
	mnt, _ := mountT(t, fsys)

	type want struct {
		mode      uint32
		size      int64
		nlink     uint64
		uid, gid  uint32
		mtimeSecs int64
	}
	for name, w := range map[string]want{
		".":                 {mode: unix.S_IFDIR | 0o555, nlink: 2 + 4},
		"etc/passwd":        {mode: unix.S_IFREG | 0o644, size: 11, nlink: 1, mtimeSecs: mtime.Unix()},
		"usr":               {mode: unix.S_IFDIR | 0o555, nlink: 2 + 3},
		"usr/bin/app":       {mode: unix.S_IFREG | unix.S_ISUID | 0o755, size: 6, nlink: 2, uid: 1000, gid: 100, mtimeSecs: mtime.Unix()},
		"usr/bin/app-alias": {mode: unix.S_IFREG | unix.S_ISUID | 0o755, size: 6, nlink: 2, uid: 1000, gid: 100, mtimeSecs: mtime.Unix()},
		"usr/lib/x/y/z":     {mode: unix.S_IFREG | 0o600, size: 1, nlink: 1, uid: 5, gid: 6},
		"usr/lib/link":      {mode: unix.S_IFLNK | 0o777, size: 5, nlink: 1},
		"usr/share":         {mode: unix.S_IFDIR | 0o555, nlink: 2, mtimeSecs: mtime.Unix()},
		"run/fifo":          {mode: unix.S_IFIFO | 0o600, nlink: 1},
		"dev/null":          {mode: unix.S_IFCHR | 0o666, nlink: 1},
	} {
		st := lstat(t, filepath.Join(mnt, name))
		assert.Equalf(t, fmt.Sprintf("%o", w.mode), fmt.Sprintf("%o", st.Mode), "%s: mode", name)
		if w.mode&unix.S_IFMT != unix.S_IFDIR {
			assert.Equalf(t, w.size, st.Size, "%s: size", name)
		}
		assert.Equalf(t, w.nlink, st.Nlink, "%s: nlink", name)
		assert.Equalf(t, w.uid, st.Uid, "%s: uid", name)
		assert.Equalf(t, w.gid, st.Gid, "%s: gid", name)
		if w.mtimeSecs != 0 {
			assert.Equalf(t, w.mtimeSecs, st.Mtim.Sec, "%s: mtime", name)
		}
	}
	a, b := lstat(t, filepath.Join(mnt, "usr/bin/app")), lstat(t, filepath.Join(mnt, "usr/bin/app-alias"))
	assert.Equal(t, uint64(42), a.Ino, "Sys().Ino() is the inode number")
	assert.Equal(t, a.Ino, b.Ino, "hard links share an inode")
	target, err := os.Readlink(filepath.Join(mnt, "usr/lib/link"))
	require.NoError(t, err)
	assert.Equal(t, "x/y/z", target)
	got, err := os.ReadFile(filepath.Join(mnt, "usr/lib/link"))
	require.NoError(t, err)
	assert.Equal(t, "z", string(got))

	names, err := os.ReadDir(mnt)
	require.NoError(t, err)
	var listed []string
	for _, e := range names {
		listed = append(listed, e.Name())
	}
	assert.Equal(t, []string{"dev", "etc", "run", "usr"}, listed)
	f, err := os.Open(mnt)
	require.NoError(t, err)
	all, err := f.Readdirnames(-1)
	f.Close()
	require.NoError(t, err)
	assert.NotContains(t, all, "", "no empty names")
}

// countingFS records which paths a mount touches and how many bytes it
// reads, to prove that mounting and listing stay lazy.
type countingFS struct {
	fstest.MapFS
	mu        sync.Mutex
	touched   map[string]bool
	readBytes atomic.Int64
}

func (c *countingFS) touch(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touched[name] = true
}

func (c *countingFS) touchedPaths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for p := range c.touched {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (c *countingFS) Open(name string) (fs.File, error) {
	c.touch(name)
	f, err := c.MapFS.Open(name)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, c: c}, nil
}

func (c *countingFS) ReadDir(name string) ([]fs.DirEntry, error) {
	c.touch(name)
	return c.MapFS.ReadDir(name)
}

func (c *countingFS) Lstat(name string) (fs.FileInfo, error) {
	c.touch(name)
	return c.MapFS.Lstat(name)
}

func (c *countingFS) ReadLink(name string) (string, error) {
	c.touch(name)
	return c.MapFS.ReadLink(name)
}

type countingFile struct {
	fs.File
	c *countingFS
}

func (f *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.(io.ReaderAt).ReadAt(p, off)
	f.c.readBytes.Add(int64(n))
	return n, err
}

func TestMountIsLazy(t *testing.T) {
	requireFUSE(t)
	c := &countingFS{MapFS: fstest.MapFS{}, touched: map[string]bool{}}
	for d := range 100 {
		for f := range 100 {
			c.MapFS[fmt.Sprintf("dir%03d/sub/file%03d", d, f)] = &fstest.MapFile{Data: []byte("x")}
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), largeSize/16)
	c.MapFS["big"] = &fstest.MapFile{Data: big}

	mnt, _ := mountT(t, c)
	assert.Equal(t, []string{"."}, c.touchedPaths(), "mounting must touch only the root")

	entries, err := os.ReadDir(mnt)
	require.NoError(t, err)
	assert.Len(t, entries, 101)
	for _, p := range c.touchedPaths() {
		assert.NotContainsf(t, p, "/", "listing the root looked below its children: %s", p)
	}

	f, err := os.Open(filepath.Join(mnt, "big"))
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 100)
	_, err = f.ReadAt(buf, 10<<20)
	require.NoError(t, err)
	assert.Equal(t, big[10<<20:10<<20+100], buf)
	t.Logf("reading 100 bytes of a %d-byte file read %d bytes from the fs.FS", len(big), c.readBytes.Load())
	assert.Less(t, c.readBytes.Load(), int64(2<<20), "a small read must not read the whole file")
}

func TestMountIsReadOnly(t *testing.T) {
	requireFUSE(t)
	src := buildTree(t)
	root, err := os.OpenRoot(src)
	require.NoError(t, err)
	defer root.Close()
	mnt, _ := mountT(t, root.FS())
	p := func(name string) string { return filepath.Join(mnt, name) }
	for name, op := range map[string]func() error{
		"open for writing": func() error { return openClose(p("hello.txt"), os.O_WRONLY) },
		"open read-write":  func() error { return openClose(p("hello.txt"), os.O_RDWR) },
		"truncate on open": func() error { return openClose(p("hello.txt"), os.O_RDONLY|os.O_TRUNC) },
		"create":           func() error { return openClose(p("new"), os.O_CREATE|os.O_WRONLY) },
		"mkdir":            func() error { return os.Mkdir(p("newdir"), 0o755) },
		"remove file":      func() error { return os.Remove(p("hello.txt")) },
		"remove dir":       func() error { return os.Remove(p("emptydir")) },
		"rename":           func() error { return os.Rename(p("hello.txt"), p("bye.txt")) },
		"symlink":          func() error { return os.Symlink("x", p("newlink")) },
		"link":             func() error { return os.Link(p("hello.txt"), p("hardlink")) },
		"chmod":            func() error { return os.Chmod(p("hello.txt"), 0o777) },
		"chown":            func() error { return os.Lchown(p("hello.txt"), 1, 1) },
		"truncate":         func() error { return os.Truncate(p("hello.txt"), 0) },
		"utimes":           func() error { return os.Chtimes(p("hello.txt"), time.Now(), time.Now()) },
		"mkfifo":           func() error { return syscall.Mkfifo(p("newfifo"), 0o644) },
		"setxattr":         func() error { return unix.Setxattr(p("hello.txt"), "user.x", []byte("y"), 0) },
	} {
		assert.ErrorIsf(t, op(), syscall.EROFS, "%s", name)
	}
	b, err := os.ReadFile(p("hello.txt"))
	require.NoError(t, err)
	assert.Equal(t, "hello, world\n", string(b), "nothing changed")
}

func openClose(name string, flag int) error {
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

func TestMountConcurrentReaders(t *testing.T) {
	requireFUSE(t)
	src := buildTree(t)
	want, err := os.ReadFile(filepath.Join(src, "large/blob.bin"))
	require.NoError(t, err)
	root, err := os.OpenRoot(src)
	require.NoError(t, err)
	defer root.Close()
	mnt, _ := mountT(t, root.FS())
	name := filepath.Join(mnt, "large/blob.bin")

	shared, err := os.Open(name)
	require.NoError(t, err)
	defer shared.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			f := shared // half the readers share one descriptor
			if g%2 == 1 {
				own, err := os.Open(name)
				if err != nil {
					errs <- err
					return
				}
				defer own.Close()
				f = own
			}
			r := rand.New(rand.NewPCG(uint64(g), 99))
			for range 200 {
				off := r.Int64N(int64(len(want)))
				n := 1 + r.IntN(256<<10)
				buf := make([]byte, n)
				got, err := f.ReadAt(buf, off)
				if err != nil && !errors.Is(err, io.EOF) {
					errs <- err
					return
				}
				end := min(off+int64(n), int64(len(want)))
				if got != int(end-off) || !bytes.Equal(buf[:got], want[off:end]) {
					errs <- fmt.Errorf("reader %d: wrong bytes at [%d, %d)", g, off, end)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMountRootListableAtOnce(t *testing.T) {
	requireFUSE(t)
	fsys := fstest.MapFS{}
	for i := range 20000 {
		fsys[path.Join("deep", fmt.Sprintf("d%d", i%50), fmt.Sprintf("f%d", i))] = &fstest.MapFile{Data: []byte("x")}
	}
	fsys["top"] = &fstest.MapFile{Data: []byte("t")}
	mnt, _ := mountT(t, fsys)
	names, err := os.ReadDir(mnt)
	require.NoError(t, err)
	require.Len(t, names, 2)
	assert.Equal(t, "deep", names[0].Name())
	assert.True(t, names[0].IsDir())
}

func TestMountRejects(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	full := filepath.Join(tmp, "full")
	require.NoError(t, os.MkdirAll(filepath.Join(full, "x"), 0o755))
	empty := filepath.Join(tmp, "empty")
	require.NoError(t, os.Mkdir(empty, 0o755))
	dev := filepath.Join(tmp, "fakedev")
	require.NoError(t, os.WriteFile(dev, nil, 0o644))
	noFusermount := func(string) (string, error) { return "", errors.New("not found") }
	found := func(p string) (string, error) { return "/usr/bin/" + filepath.Base(p), nil }

	for _, tc := range []struct {
		name    string
		h       host
		dir     string
		wantErr error
		wantMsg string
	}{
		{"missing dir", host{fuseDevice: "/dev/null", lookPath: found}, filepath.Join(tmp, "nope"), ErrBadMountpoint, "does not exist"},
		{"not a dir", host{fuseDevice: "/dev/null", lookPath: found}, file, ErrBadMountpoint, "is not a directory"},
		{"not empty", host{fuseDevice: "/dev/null", lookPath: found}, full, ErrBadMountpoint, `is not empty (it holds "x")`},
		{"no /dev/fuse", host{fuseDevice: filepath.Join(tmp, "nodev"), lookPath: found}, empty, ErrNoFuseDevice, "modprobe fuse"},
		{"/dev/fuse not a device", host{fuseDevice: dev, lookPath: found}, empty, ErrNoFuseDevice, "/dev/fuse is missing"},
		{"no fusermount3 as a user", host{fuseDevice: "/dev/null", euid: 1000, lookPath: noFusermount}, empty, ErrNoFusermount, "install fuse3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.preflight(tc.dir)
			require.ErrorIs(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), tc.wantMsg)
		})
	}

	t.Run("as root fusermount3 is not needed", func(t *testing.T) {
		if _, err := os.Stat("/dev/fuse"); err != nil {
			t.Skip("needs /dev/fuse")
		}
		assert.NoError(t, host{fuseDevice: "/dev/null", euid: 0, lookPath: noFusermount}.preflight(empty))
	})

	t.Run("not a ReadLinkFS", func(t *testing.T) {
		_, err := Mount(empty, onlyFS{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "fs.ReadLinkFS")
	})
}

type onlyFS struct{}

func (onlyFS) Open(string) (fs.File, error) { return nil, fs.ErrNotExist }

func TestUnmountRefuses(t *testing.T) {
	dir := t.TempDir()
	err := Unmount(dir)
	require.ErrorIs(t, err, ErrNotMounted)
	assert.Contains(t, err.Error(), dir)

	err = Unmount("/proc")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "holds a proc mount, not a nanofs one")
	_, err = os.Stat("/proc/self")
	require.NoError(t, err, "/proc is still mounted")
}

// asUser is this machine seen as by a non-root user: mounts and unmounts go
// through fusermount3 instead of mount(2)/umount2(2).
func asUser(t *testing.T) host {
	h := thisHost
	h.euid = 1000
	if _, err := h.fusermount(); err != nil {
		t.Skip("needs fusermount3: install fuse3 (apt-get install fuse3)")
	}
	return h
}

func TestMountThroughFusermount(t *testing.T) {
	requireFUSE(t)
	h := asUser(t)
	src := buildTree(t)
	root, err := os.OpenRoot(src)
	require.NoError(t, err)
	defer root.Close()
	mnt := t.TempDir()
	srv, err := h.mount(mnt, root.FS())
	require.NoError(t, err)
	compareWithSource(t, src, mnt)
	require.NoError(t, srv.Unmount())
	entries, err := os.ReadDir(mnt)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestUnmountDeadServer(t *testing.T) {
	requireFUSE(t)
	for name, h := range map[string]func(t *testing.T) host{
		"umount2":     func(*testing.T) host { return thisHost },
		"fusermount3": asUser,
	} {
		t.Run(name, func(t *testing.T) {
			h := h(t)
			// A server that stops answering without unmounting is what
			// kill -9 leaves: the connection closes, the mount stays.
			src := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
			root, err := os.OpenRoot(src)
			require.NoError(t, err)
			defer root.Close()
			mnt := t.TempDir()
			srv, err := h.mount(mnt, root.FS())
			require.NoError(t, err)
			t.Cleanup(func() { _ = Unmount(mnt) })
			require.NoError(t, abortConnection(mnt))
			srv.Wait()

			_, err = os.Stat(filepath.Join(mnt, "f"))
			require.ErrorIs(t, err, syscall.ENOTCONN, "the mount is dead but present")
			_, err = h.mount(mnt, root.FS())
			require.Error(t, err)
			assert.Contains(t, err.Error(), "nanofs umount")

			require.NoError(t, h.unmount(mnt))
			entries, err := os.ReadDir(mnt)
			require.NoError(t, err, "the mount point is a plain directory again")
			assert.Empty(t, entries)
		})
	}
}

// abortConnection kills a mount's FUSE connection the way the kernel does
// when the server dies, through /sys/fs/fuse/connections/N/abort.
func abortConnection(mnt string) error {
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		return err
	}
	p := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", unix.Minor(st.Dev))
	if _, err := os.Stat(p); err != nil {
		if !strings.Contains(readFileOrEmpty("/proc/filesystems"), "fusectl") {
			return fmt.Errorf("no fusectl: %w", err)
		}
		if err := unix.Mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return err
		}
	}
	return os.WriteFile(p, []byte("1"), 0o200)
}

func readFileOrEmpty(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func TestParseMountinfo(t *testing.T) {
	in := `22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
36 35 98:0 /mnt1 /mnt\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
90 22 0:50 / /tmp/a\134b\011c rw,nosuid,nodev,relatime - fuse.nanofs node:16 rw,user_id=0,group_id=0
91 22 0:51 / /x rw - fuse.nanofs with\040space ro
`
	got, err := parseMountinfo(strings.NewReader(in))
	require.NoError(t, err)
	assert.Equal(t, []mountEntry{
		{mountPoint: "/proc", fsType: "proc", source: "proc"},
		{mountPoint: "/mnt 2", fsType: "ext3", source: "/dev/root"},
		{mountPoint: "/tmp/a\\b\tc", fsType: "fuse.nanofs", source: "node:16"},
		{mountPoint: "/x", fsType: "fuse.nanofs", source: "with space"},
	}, got)

	for _, bad := range []string{
		"22 1 0:21 / /proc rw shared:12 proc proc rw\n",
		"22 1 0:21 / /proc - proc\n",
		"short\n",
	} {
		_, err := parseMountinfo(strings.NewReader(bad))
		assert.Errorf(t, err, "%q", bad)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add("36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n")
	f.Add("91 22 0:51 / /x rw - fuse.nanofs with\\040space ro\n\n")
	f.Add("1 2 3 4 5 6 - \\777 \\")
	f.Fuzz(func(t *testing.T, s string) {
		entries, err := parseMountinfo(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, e := range entries {
			if len(e.mountPoint) > len(s) || len(e.fsType) > len(s) {
				t.Fatalf("an unescaped field grew: %+v", e)
			}
		}
	})
}
