// Package fusefs mounts any read-only io/fs.FS with FUSE.
//
// The filesystem must also implement fs.ReadLinkFS (ReadLink and Lstat, Go
// 1.25+), and its opened regular files should implement io.ReaderAt: reads
// are served with ReadAt straight into the kernel's buffer, so reading a few
// bytes of a huge file costs a few bytes. Directories are read only when
// something looks into them, so the root of an image of any size is listable
// as soon as Mount returns.
//
// What io/fs cannot say (inode numbers, hard links, owners) comes from
// FileInfo.Sys(): *syscall.Stat_t, *tar.Header, or any value with the
// methods of Sys.
package fusefs
