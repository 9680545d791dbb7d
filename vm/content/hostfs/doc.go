// Package hostfs lays local files over a read-only filesystem: host files,
// directories and symbolic links appear at chosen paths of an image's
// filesystem, as one more layer on top of its own. The result is an
// fs.FS with the same interfaces as the image (fs.StatFS, fs.ReadDirFS,
// fs.ReadLinkFS; regular files are io.ReaderAt), so that whatever works
// out or copies an image's files (resolve, the disk writer, a FUSE mount)
// sees the added files as if the image held them.
//
// Nothing is copied up front: New records what is where (walking added
// directories once), and a file's bytes are read from the host only when
// the file is opened, streamed like any image file. Symbolic links inside
// an added directory are kept as links and never followed on the host: a
// directory is read through an os.Root, so nothing outside it can be
// reached by a link, even one planted after the walk.
package hostfs
