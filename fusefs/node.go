package fusefs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/nanofs/nanofs/tfs/fspath"
)

// mountFS is the state every node of one mount shares.
type mountFS struct {
	fsys    fs.ReadLinkFS
	inodes  *inodeTable
	rootDev uint64 // host device of the root, when the source is a host directory
}

// node is one file, directory or symlink of the mounted tree. Nodes are
// created on demand by Lookup, so mounting costs one Lstat no matter how big
// the tree is. A hard-linked file is one node however many names it has;
// name is the first of them, which is as good as any for reading it.
type node struct {
	gofs.Inode
	m    *mountFS
	name string    // io/fs path of the node, "." for the root
	attr fuse.Attr // immutable: the tree never changes under a mount
}

var (
	_ gofs.InodeEmbedder = (*node)(nil)

	_ gofs.NodeLookuper   = (*node)(nil)
	_ gofs.NodeReaddirer  = (*node)(nil)
	_ gofs.NodeGetattrer  = (*node)(nil)
	_ gofs.NodeReadlinker = (*node)(nil)
	_ gofs.NodeOpener     = (*node)(nil)
	_ gofs.NodeStatfser   = (*node)(nil)

	// Everything that would change the tree answers EROFS, also when the
	// kernel's own read-only check is bypassed (no "ro" mount option).
	_ gofs.NodeSetattrer     = (*node)(nil)
	_ gofs.NodeCreater       = (*node)(nil)
	_ gofs.NodeMkdirer       = (*node)(nil)
	_ gofs.NodeMknoder       = (*node)(nil)
	_ gofs.NodeLinker        = (*node)(nil)
	_ gofs.NodeSymlinker     = (*node)(nil)
	_ gofs.NodeUnlinker      = (*node)(nil)
	_ gofs.NodeRmdirer       = (*node)(nil)
	_ gofs.NodeRenamer       = (*node)(nil)
	_ gofs.NodeSetxattrer    = (*node)(nil)
	_ gofs.NodeRemovexattrer = (*node)(nil)
	_ gofs.NodeWriter        = (*node)(nil)
	_ gofs.NodeAllocater     = (*node)(nil)
	_ gofs.NodeTmpfiler      = (*node)(nil)

	_ gofs.FileReader   = (*handle)(nil)
	_ gofs.FileReleaser = (*handle)(nil)
)

func (n *node) child(name string) string {
	if n.name == "." {
		return name
	}
	return n.name + "/" + name
}

// Lookup finds one entry of a directory: a single Lstat, never a listing.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	p := n.child(name)
	if !fs.ValidPath(p) {
		return nil, syscall.ENOENT
	}
	fi, err := n.m.fsys.Lstat(p)
	if err != nil {
		return nil, toErrno(err)
	}
	ch := &node{m: n.m, name: p, attr: n.m.attr(p, fi)}
	out.Attr = ch.attr
	// The bridge returns the node already registered under the same
	// StableAttr, so all names of a hard-linked file share one inode.
	return n.NewInode(ctx, ch, gofs.StableAttr{Mode: ch.attr.Mode & syscall.S_IFMT, Ino: ch.attr.Ino}), 0
}

// Readdir lists a directory when it is read, not before.
func (n *node) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	entries, err := fs.ReadDir(n.m.fsys, n.name)
	if err != nil {
		return nil, toErrno(err)
	}
	parentIno := n.attr.Ino
	if _, parent := n.Parent(); parent != nil {
		parentIno = parent.StableAttr().Ino
	}
	list := make([]fuse.DirEntry, 0, len(entries)+2)
	list = append(list,
		fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: n.attr.Ino},
		fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: parentIno})
	for _, e := range entries {
		p := n.child(e.Name())
		if !fs.ValidPath(p) || e.Name() == "." || e.Name() == ".." {
			continue // a name no Lookup could resolve
		}
		de := fuse.DirEntry{Name: e.Name(), Mode: unixMode(e.Type())}
		if fi, err := e.Info(); err == nil {
			de.Ino = n.m.inode(p, fi)
		}
		list = append(list, de)
	}
	return gofs.NewListDirStream(list), 0
}

func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Attr = n.attr
	return 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	target, err := n.m.fsys.ReadLink(n.name)
	if err != nil {
		return nil, toErrno(err)
	}
	return []byte(target), 0
}

// Open opens a regular file for reading. The content never changes, so the
// kernel may keep its page cache across opens (FOPEN_KEEP_CACHE).
func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND|syscall.O_CREAT) != 0 {
		return nil, 0, syscall.EROFS
	}
	f, err := n.m.fsys.Open(n.name)
	if err != nil {
		return nil, 0, toErrno(err)
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		rs, ok := f.(io.ReadSeeker)
		if !ok {
			f.Close()
			return nil, 0, syscall.EIO
		}
		ra = &fspath.SeekReaderAt{RS: rs}
	}
	return &handle{f: f, ra: ra}, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.NameLen = 255
	return 0
}

func (n *node) Setattr(context.Context, gofs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

func (n *node) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (n *node) Tmpfile(context.Context, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (n *node) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (n *node) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (n *node) Link(context.Context, gofs.InodeEmbedder, string, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (n *node) Symlink(context.Context, string, string, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (n *node) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }
func (n *node) Rmdir(context.Context, string) syscall.Errno  { return syscall.EROFS }

func (n *node) Rename(context.Context, string, gofs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}

func (n *node) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	return syscall.EROFS
}

func (n *node) Removexattr(context.Context, string) syscall.Errno { return syscall.EROFS }

func (n *node) Write(context.Context, gofs.FileHandle, []byte, int64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

func (n *node) Allocate(context.Context, gofs.FileHandle, uint64, uint64, uint32) syscall.Errno {
	return syscall.EROFS
}

// handle is an open regular file. Reads go straight to ReadAt into the
// kernel's buffer, so no read ever costs more than the bytes asked for.
type handle struct {
	f  fs.File
	ra io.ReaderAt
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.ra.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, toErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	return toErrno(h.f.Close())
}

// toErrno maps an io/fs error to the errno the caller of the system call
// sees. An errno already inside the error (from the host) wins.
func toErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &errno):
		return errno
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, fs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, fs.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return syscall.EINTR
	default:
		return syscall.EIO
	}
}
