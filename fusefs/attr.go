package fusefs

import (
	"archive/tar"
	"hash/fnv"
	"io/fs"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Sys is what a FileInfo.Sys() value implements to tell fusefs what io/fs
// cannot express: which names are hard links of one file, and who owns it.
//
// Packages that produce a filesystem (lazy, tfs, ...) implement these four
// methods on the value their FileInfo.Sys() returns; they need not import
// fusefs, the method set is enough. fusefs also understands *syscall.Stat_t
// (os.DirFS, os.Root.FS) and *tar.Header (uid/gid only).
//
// A Sys value of a device node may also implement DeviceSys.
type Sys interface {
	// Ino identifies the file within its filesystem: the same number every
	// time the file is looked up, the same for every hard link of the file,
	// and different for different files. 0 means "unknown"; fusefs then
	// derives a number from the path and cannot tell hard links apart.
	Ino() uint64
	// Nlink is the number of names the file has: for a regular file its hard
	// links, for a directory 2 plus its subdirectories. 0 means "unknown";
	// fusefs then reports 1 for a file and counts subdirectories for a
	// directory.
	Nlink() uint32
	// Uid and Gid are the numeric owner and group.
	Uid() uint32
	Gid() uint32
}

// DeviceSys is implemented by Sys values of character and block devices
// to give their device numbers.
type DeviceSys interface {
	Rdev() (major, minor uint32)
}

// identity is what makes two names the same file. Exactly one of ino (with
// dev) or path is set.
type identity struct {
	dev, ino uint64
	path     string
}

// inodeTable hands out inode numbers. Each identity keeps the number it got
// first for the lifetime of the mount, and no two identities ever share one,
// even if their preferred numbers (host inode, Sys.Ino, path hash) collide.
type inodeTable struct {
	mu     sync.Mutex
	byID   map[identity]uint64
	owners map[uint64]identity
}

func newInodeTable() *inodeTable {
	return &inodeTable{byID: map[identity]uint64{}, owners: map[uint64]identity{}}
}

// number returns the inode number of id, preferring preferred so that
// numbers stay the same from one mount to the next.
func (t *inodeTable) number(id identity, preferred uint64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.byID[id]; ok {
		return n
	}
	n := preferred
	for {
		// 0, 1 and ^0 have special meanings to go-fuse and the kernel.
		if n > 1 && n != ^uint64(0) {
			if _, taken := t.owners[n]; !taken {
				break
			}
		}
		n = mix64(n + 0x9e3779b97f4a7c15)
	}
	t.byID[id] = n
	t.owners[n] = id
	return n
}

// mix64 is the splitmix64 finalizer: a cheap, deterministic scrambler for
// probing the next candidate number after a collision.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func hashPath(p string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	return h.Sum64()
}

// inode returns the inode number of the file at name with info fi.
func (m *mountFS) inode(name string, fi fs.FileInfo) uint64 {
	switch s := fi.Sys().(type) {
	case *syscall.Stat_t:
		id := identity{dev: uint64(s.Dev), ino: s.Ino}
		preferred := s.Ino
		if id.dev != m.rootDev {
			// A directory source may span several host filesystems whose
			// inode numbers overlap; keep the source's own numbers for the
			// common case of one filesystem.
			preferred = mix64(id.dev ^ mix64(id.ino))
		}
		return m.inodes.number(id, preferred)
	case Sys:
		if ino := s.Ino(); ino != 0 {
			return m.inodes.number(identity{ino: ino}, ino)
		}
	}
	return m.inodes.number(identity{path: name}, hashPath(name))
}

// attr builds the FUSE attributes of the file at name with info fi. It may
// read the file system for what fi lacks (a symlink's length, a directory's
// link count).
func (m *mountFS) attr(name string, fi fs.FileInfo) fuse.Attr {
	var a fuse.Attr
	a.Ino = m.inode(name, fi)
	a.Size = uint64(max(fi.Size(), 0))
	a.Mode = unixMode(fi.Mode())
	mtime := fi.ModTime()
	atime, ctime := mtime, mtime
	switch s := fi.Sys().(type) {
	case *syscall.Stat_t:
		a.Mode = s.Mode
		a.Nlink = uint32(s.Nlink)
		a.Uid, a.Gid = s.Uid, s.Gid
		a.Rdev = uint32(s.Rdev)
		atime = time.Unix(s.Atim.Unix())
		ctime = time.Unix(s.Ctim.Unix())
	case Sys:
		a.Nlink = s.Nlink()
		a.Uid, a.Gid = s.Uid(), s.Gid()
		if d, ok := s.(DeviceSys); ok && fi.Mode()&fs.ModeDevice != 0 {
			major, minor := d.Rdev()
			a.Rdev = uint32(mkdev(int64(major), int64(minor)))
		}
	case *tar.Header:
		a.Uid, a.Gid = uint32(s.Uid), uint32(s.Gid)
		a.Rdev = uint32(mkdev(s.Devmajor, s.Devminor))
	}
	a.SetTimes(&atime, &mtime, &ctime)
	if a.Nlink == 0 {
		a.Nlink = 1
		if fi.IsDir() {
			a.Nlink = m.dirLinks(name)
		}
	}
	if fi.Mode()&fs.ModeSymlink != 0 && a.Size == 0 {
		// lstat(2) reports a symlink's length as its size; tar headers
		// (and so many fs.FS) say 0.
		if target, err := m.fsys.ReadLink(name); err == nil {
			a.Size = uint64(len(target))
		}
	}
	return a
}

// dirLinks counts the links of a directory the classic way: its own entry,
// its ".", and the ".." of each subdirectory.
func (m *mountFS) dirLinks(name string) uint32 {
	entries, err := fs.ReadDir(m.fsys, name)
	if err != nil {
		return 2
	}
	n := uint32(2)
	for _, e := range entries {
		if e.IsDir() {
			n++
		}
	}
	return n
}

// unixMode converts Go's portable file mode into st_mode bits.
func unixMode(m fs.FileMode) uint32 {
	mode := uint32(m.Perm())
	switch {
	case m.IsDir():
		mode |= syscall.S_IFDIR
	case m&fs.ModeSymlink != 0:
		mode |= syscall.S_IFLNK
	case m&fs.ModeNamedPipe != 0:
		mode |= syscall.S_IFIFO
	case m&fs.ModeSocket != 0:
		mode |= syscall.S_IFSOCK
	case m&fs.ModeCharDevice != 0:
		mode |= syscall.S_IFCHR
	case m&fs.ModeDevice != 0:
		mode |= syscall.S_IFBLK
	default:
		mode |= syscall.S_IFREG
	}
	if m&fs.ModeSetuid != 0 {
		mode |= syscall.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		mode |= syscall.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		mode |= syscall.S_ISVTX
	}
	return mode
}

// mkdev packs a device number the way the kernel's old 32-bit dev_t does,
// which is what FUSE carries.
func mkdev(major, minor int64) uint64 {
	return uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12
}
