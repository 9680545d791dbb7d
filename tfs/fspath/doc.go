// Package fspath is the one symbolic-link-following path walk of nanofs,
// generic over how a directory is read: tfs's trees, the merged layers of
// lazy, the added-files layer of vm/content/hostfs and resolve's view of
// an image all look paths up through it, as the kernel does inside a
// chroot: absolute and relative paths start at the root, ".." stops at
// the root, an absolute link target starts again from the root, and at
// most MaxSymlinks links are followed. It also holds SeekReaderAt. It
// imports only the standard library, so that every package may use it.
package fspath
