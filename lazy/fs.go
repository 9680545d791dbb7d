package lazy

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/nanofs/nanofs/lazy/internal/overlay"
)

// lookup resolves name for operation op, with errors in io/fs style.
func (img *Image) lookup(op, name string, follow bool) (*overlay.Inode, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n, err := img.tree.Resolve(name, follow)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return n, nil
}

// Open opens the named file, following symbolic links. Regular files are
// *File; directories implement fs.ReadDirFile.
func (img *Image) Open(name string) (fs.File, error) {
	n, err := img.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	info := &fileInfo{name: path.Base(name), n: n}
	if n.IsDir() {
		return &dirFile{info: info}, nil
	}
	return &File{img: img, info: info}, nil
}

// Stat describes the named file, following symbolic links.
func (img *Image) Stat(name string) (fs.FileInfo, error) {
	n, err := img.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(name), n: n}, nil
}

// Lstat describes the named file; a symbolic link is described itself.
func (img *Image) Lstat(name string) (fs.FileInfo, error) {
	n, err := img.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(name), n: n}, nil
}

// ReadLink returns the target of the named symbolic link, verbatim.
func (img *Image) ReadLink(name string) (string, error) {
	n, err := img.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.Mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: syscall.EINVAL}
	}
	return n.Target, nil
}

// ReadDir lists the named directory (symbolic links followed), sorted by
// name.
func (img *Image) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := img.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: syscall.ENOTDIR}
	}
	return dirEntries(n, 0, len(n.Names)), nil
}

// ReadFile reads the whole named file.
func (img *Image) ReadFile(name string) ([]byte, error) {
	n, err := img.lookup("read", name, true)
	if err != nil {
		return nil, err
	}
	if !n.Mode.IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: notRegular(n)}
	}
	buf := make([]byte, n.Size)
	f := &File{img: img, info: &fileInfo{name: path.Base(name), n: n}}
	if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return buf, nil
}

func notRegular(n *overlay.Inode) error {
	if n.IsDir() {
		return syscall.EISDIR
	}
	return errors.New("not a regular file")
}

func dirEntries(n *overlay.Inode, from, to int) []fs.DirEntry {
	out := make([]fs.DirEntry, 0, to-from)
	for _, name := range n.Names[from:to] {
		out = append(out, dirEntry{info: &fileInfo{name: name, n: n.Children[name]}})
	}
	return out
}

// Stat is what FileInfo.Sys returns: what io/fs cannot say about a file.
// Its methods match what FUSE servers need (nanofs's fusefs reads them).
type Stat struct {
	n *overlay.Inode
}

// Ino identifies the file: the same for every name of a hard-linked file,
// different for different files, and the same every time the image is
// opened.
func (s *Stat) Ino() uint64 { return s.n.Ino }

// Nlink is the number of names of a file, or 2 plus the number of
// subdirectories of a directory.
func (s *Stat) Nlink() uint32 { return s.n.Nlink }

// Uid is the numeric owner.
func (s *Stat) Uid() uint32 { return s.n.UID }

// Gid is the numeric group.
func (s *Stat) Gid() uint32 { return s.n.GID }

// Rdev returns the device numbers of a character or block device.
func (s *Stat) Rdev() (major, minor uint32) { return s.n.Devmajor, s.n.Devminor }

// Layer is the index (0 = bottom) of the layer the file comes from; -1
// for a directory no layer has an entry for.
func (s *Stat) Layer() int { return s.n.Layer }

type fileInfo struct {
	name string
	n    *overlay.Inode
}

func (fi *fileInfo) Name() string { return fi.name }
func (fi *fileInfo) Size() int64 {
	switch {
	case fi.n.Mode.IsRegular():
		return fi.n.Size
	case fi.n.Mode&fs.ModeSymlink != 0:
		return int64(len(fi.n.Target))
	}
	return 0
}
func (fi *fileInfo) Mode() fs.FileMode  { return fi.n.Mode }
func (fi *fileInfo) ModTime() time.Time { return fi.n.MTime }
func (fi *fileInfo) IsDir() bool        { return fi.n.IsDir() }
func (fi *fileInfo) Sys() any           { return &Stat{n: fi.n} }
func (fi *fileInfo) String() string     { return fs.FormatFileInfo(fi) }

type dirEntry struct{ info *fileInfo }

func (d dirEntry) Name() string               { return d.info.name }
func (d dirEntry) IsDir() bool                { return d.info.IsDir() }
func (d dirEntry) Type() fs.FileMode          { return d.info.Mode().Type() }
func (d dirEntry) Info() (fs.FileInfo, error) { return d.info, nil }
func (d dirEntry) String() string             { return fs.FormatDirEntry(d) }

// dirFile is an open directory.
type dirFile struct {
	info *fileInfo
	mu   sync.Mutex
	pos  int
}

var _ fs.ReadDirFile = (*dirFile)(nil)

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: syscall.EISDIR}
}

func (d *dirFile) ReadDir(count int) ([]fs.DirEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := d.info.n.Names
	rest := len(names) - d.pos
	if count <= 0 {
		out := dirEntries(d.info.n, d.pos, len(names))
		d.pos = len(names)
		return out, nil
	}
	if rest == 0 {
		return nil, io.EOF
	}
	k := min(count, rest)
	out := dirEntries(d.info.n, d.pos, d.pos+k)
	d.pos += k
	return out, nil
}

// File is an open file of an image. Its bytes are fetched (or read from
// the cache) when read.
type File struct {
	img  *Image
	info *fileInfo
	mu   sync.Mutex
	off  int64
}

var (
	_ io.ReaderAt = (*File)(nil)
	_ io.Seeker   = (*File)(nil)
)

func (f *File) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *File) Close() error               { return nil }

// Read reads from the current offset.
func (f *File) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt reads len(p) bytes at off; fewer only at the end of the file
// (with io.EOF) or on error.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	n := f.info.n
	if !n.Mode.IsRegular() {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: notRegular(n)}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: fs.ErrInvalid}
	}
	if off >= n.Size {
		return 0, io.EOF
	}
	want := p
	if rest := n.Size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	if len(want) == 0 {
		return 0, nil
	}
	if err := f.img.ctx.Err(); err != nil {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: err}
	}
	d, ok := n.Data.(*fileData)
	if !ok {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: errors.New("file without content")}
	}
	k, err := d.layer.readFile(f.img.ctx, d, want, off)
	if err != nil {
		return k, &fs.PathError{Op: "read", Path: f.info.name, Err: err}
	}
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

// Seek sets the offset of the next Read.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.info.n.Size
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.info.name, Err: fs.ErrInvalid}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.info.name, Err: fs.ErrInvalid}
	}
	f.off = offset
	return offset, nil
}
