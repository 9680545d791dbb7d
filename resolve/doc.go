// Package resolve works out, without running anything, every file the
// program of an image needs in a unikernel, as a Plan: the entrypoint
// (Docker's Entrypoint + Cmd, through PATH and #! scripts), its ELF
// interpreter and the shared libraries the dynamic loader would load
// (RPATH, RUNPATH, LD_LIBRARY_PATH, ld.so.conf, glibc and musl defaults),
// the runtime extras no ELF header names (NSS modules, /etc files, CA
// certificates, a generated resolv.conf, libgcc_s), files named by
// WithInclude globs and entries laid over the image (WithAdded).
//
// It owns the rules of what a program needs; it reads any io/fs.FS (a
// lazy image, a directory, an image with local files over it) through
// its own link-following path walker, which never leaves the root, and
// reads only ELF headers and dynamic sections. It imports nothing of the
// project: callers (vm/build) hand it the image's config and the options.
package resolve
