package fusefs

import (
	"archive/tar"
	"io/fs"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnixMode(t *testing.T) {
	for _, tc := range []struct {
		in   fs.FileMode
		want uint32
	}{
		{0o644, syscall.S_IFREG | 0o644},
		{fs.ModeDir | 0o755, syscall.S_IFDIR | 0o755},
		{fs.ModeSymlink | 0o777, syscall.S_IFLNK | 0o777},
		{fs.ModeNamedPipe | 0o600, syscall.S_IFIFO | 0o600},
		{fs.ModeSocket | 0o755, syscall.S_IFSOCK | 0o755},
		{fs.ModeDevice | fs.ModeCharDevice | 0o666, syscall.S_IFCHR | 0o666},
		{fs.ModeDevice | 0o660, syscall.S_IFBLK | 0o660},
		{fs.ModeSetuid | fs.ModeSetgid | 0o755, syscall.S_IFREG | syscall.S_ISUID | syscall.S_ISGID | 0o755},
		{fs.ModeDir | fs.ModeSticky | 0o777, syscall.S_IFDIR | syscall.S_ISVTX | 0o777},
		{0, syscall.S_IFREG},
	} {
		assert.Equalf(t, tc.want, unixMode(tc.in), "%v", tc.in)
	}
}

func TestInodeTable(t *testing.T) {
	tab := newInodeTable()
	a, b := identity{path: "a"}, identity{path: "b"}
	na := tab.number(a, 1000)
	assert.Equal(t, uint64(1000), na, "the preferred number when it is free")
	nb := tab.number(b, 1000)
	assert.NotEqual(t, na, nb, "a collision gets another number")
	assert.Equal(t, na, tab.number(a, 1000), "the same identity keeps its number")
	assert.Equal(t, nb, tab.number(b, 1000))
	for _, reserved := range []uint64{0, 1, ^uint64(0)} {
		n := tab.number(identity{ino: reserved}, reserved)
		assert.NotContains(t, []uint64{0, 1, ^uint64(0)}, n)
	}
	// Probing is deterministic: the same history gives the same numbers.
	tab2 := newInodeTable()
	assert.Equal(t, na, tab2.number(a, 1000))
	assert.Equal(t, nb, tab2.number(b, 1000))
}

func TestAttrFromSys(t *testing.T) {
	mtime := time.Date(2022, 2, 2, 2, 2, 2, 5, time.UTC)
	fsys := fstest.MapFS{
		"tar":     {Data: []byte("abc"), Mode: 0o640, ModTime: mtime, Sys: &tar.Header{Uid: 11, Gid: 12}},
		"dev":     {Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Sys: &tar.Header{Devmajor: 1, Devminor: 3}},
		"sys":     {Data: []byte("x"), Sys: sysInfo{ino: 99, nlink: 3, uid: 1, gid: 2}},
		"nosys":   {Data: []byte("y")},
		"link":    {Data: []byte("tar"), Mode: fs.ModeSymlink | 0o777},
		"d/e/f":   {Data: []byte("z")},
		"d/g/h":   {Data: []byte("z")},
		"d/file":  {Data: []byte("z")},
		"sysdir":  {Mode: fs.ModeDir | 0o755, Sys: sysInfo{ino: 5, nlink: 9}},
		"zerodir": {Mode: fs.ModeDir | 0o755, Sys: sysInfo{ino: 6}},
	}
	root, err := newRoot(fsys)
	require.NoError(t, err)
	m := root.m
	attr := func(name string) (uint32, uint64, uint32, uint32, uint32, uint64, uint32) {
		fi, err := fsys.Lstat(name)
		require.NoError(t, err)
		a := m.attr(name, fi)
		return a.Mode, a.Size, a.Nlink, a.Uid, a.Gid, a.Ino, a.Rdev
	}
	mode, size, nlink, uid, gid, _, _ := attr("tar")
	assert.Equal(t, []any{uint32(syscall.S_IFREG | 0o640), uint64(3), uint32(1), uint32(11), uint32(12)}, []any{mode, size, nlink, uid, gid})
	_, _, _, _, _, _, rdev := attr("dev")
	assert.Equal(t, uint32(1<<8|3), rdev, "major 1, minor 3 as the kernel encodes it")
	_, _, nlink, uid, gid, ino, _ := attr("sys")
	assert.Equal(t, []any{uint32(3), uint32(1), uint32(2), uint64(99)}, []any{nlink, uid, gid, ino})
	_, _, _, _, _, ino, _ = attr("nosys")
	assert.Equal(t, hashPath("nosys"), ino, "no identity: the path decides")
	_, size, _, _, _, _, _ = attr("link")
	assert.Equal(t, uint64(3), size, "a symlink's size is its target's length")
	_, _, nlink, _, _, _, _ = attr("d")
	assert.Equal(t, uint32(4), nlink, "2 + two subdirectories")
	_, _, nlink, _, _, _, _ = attr("sysdir")
	assert.Equal(t, uint32(9), nlink, "Sys().Nlink() wins")
	_, _, nlink, _, _, _, _ = attr("zerodir")
	assert.Equal(t, uint32(2), nlink, "Nlink() 0 means count")
}

// devSys is a Sys value of a device node, as lazy's Stat is for /dev/null.
type devSys struct{ major, minor uint32 }

func (devSys) Ino() uint64                   { return 7 }
func (devSys) Nlink() uint32                 { return 1 }
func (devSys) Uid() uint32                   { return 0 }
func (devSys) Gid() uint32                   { return 0 }
func (d devSys) Rdev() (major, minor uint32) { return d.major, d.minor }

func TestAttrDeviceNumbers(t *testing.T) {
	fsys := fstest.MapFS{"null": {Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Sys: devSys{1, 3}}}
	m := &mountFS{inodes: newInodeTable()}
	fi, err := fs.Stat(fsys, "null")
	require.NoError(t, err)
	assert.Equal(t, uint32(1<<8|3), m.attr("null", fi).Rdev)
}
