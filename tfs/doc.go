// Package tfs writes, reads and verifies TFS, the filesystem of Nanos
// unikernel disk images (version 5; legacy version 4 read-only). It follows
// the project's Nanos image format document, nanos-image-format.md ("the spec";
// § numbers below refer to it), and imports nothing but the standard library.
//
// # Writing a volume
//
// A Writer streams one TFS volume. File contents go to the output as they
// are read, through a bounded buffer; only metadata (about 200 bytes per
// entry) stays in memory until Close writes the log after the data and,
// last, sector 0:
//
//	w, err := tfs.NewWriter(f, tfs.WithSeed([]byte(imageDigest)), tfs.WithLabel("app"))
//	err = w.AddFile("bin/app", size, r)         // exactly size bytes from any io.Reader
//	err = w.Symlink("app", "bin/sh")            // target, name
//	err = w.Link("bin/app", "usr/bin/app")      // hard link: existing name, new name
//	err = w.Mkdir("tmp")                        // parents are implicit; any order works
//	err = w.SetProgram("/bin/app")              // root manifest keys (spec §7)
//	err = w.SetArguments("/bin/app", "--port", "80")
//	err = w.SetEnvironment(map[string]string{"HOME": "/"})
//	err = w.SetCwd("/")
//	err = w.SetRoot("debug_exit", tfs.Flag{})   // any other key: String, Int, Flag, Vector, Tuple
//	err = w.Close()
//	n := w.Size()                                // the volume's final size in bytes
//
// AddFS adds a whole fs.FS (a directory via os.Root.FS or os.DirFS, or
// another TFS) in lexical order, hard links included.
//
// Placement: with NewWriter (an io.WriterAt) data is laid out from sector 1
// in the order AddFile is called — concurrent AddFile calls copy in
// parallel — then the log extensions (1024 sectors each, contiguous), then
// the free space (WithFreeSpace, default 1 MiB, so the kernel can extend
// its log at first boot; only its last sector is written, a fresh file
// stays sparse). With NewStreamWriter (any io.Writer, a pipe included)
// every byte goes out in order: the caller declares the data size up front
// (the sum of DataSize over the files), sector 0 links to the log placed
// right after it, and the output of both modes is identical for the same
// calls.
//
// The writer enforces the spec's checklist (§9): big-endian base-128
// varints, each key symbol immediate once per log, exact TUPLE_AVAILABLE
// lengths, 22 bytes of slack in every extension, extents split at 32 MiB,
// zeroed tail padding, hard links as references with nlink set. Paths the
// kernel creates at boot (§8) are refused with ErrReservedPath unless
// AllowReservedPaths is given. Output is deterministic: children are
// sorted, keys are written in a fixed order, the UUID derives from WithSeed
// (or is given with WithUUID), so the same calls give the same bytes.
//
// # Assembling a whole disk
//
// A bootable disk (spec §2) is the boot region, a 4 KiB klog gap, a 12 MiB
// boot FS holding /kernel, the root FS, then the MBR patched in. All TFS
// offsets are relative to the volume, so each volume is written in place:
//
//	bootStart := int64(512 + stage2Len + 4096)
//	boot, _ := tfs.NewWriter(disk, tfs.WithOffset(bootStart),
//		tfs.WithSize(12<<20), tfs.WithFreeSpace(0), tfs.WithSeed(seed))
//	boot.AddFile("kernel", kernelSize, kernel)
//	boot.Close()
//	rootStart := bootStart + 12<<20
//	root, _ := tfs.NewWriter(disk, tfs.WithOffset(rootStart), tfs.WithSeed(seed))
//	... add the plan's files and the manifest, root.Close()
//	rootSectors := root.Size() / tfs.SectorSize // for the MBR root entry
//
// WithOffset keeps an *os.File destination, which lets the kernel copy
// contents of *os.File sources (copy_file_range); io.NewOffsetWriter works
// too. WithSize fixes a volume's size (the boot FS is exactly 12 MiB) and
// makes AddFile refuse what would not fit. Verify checks the assembled
// disk, partition table included.
//
// # Reading and verifying
//
// Open reads a raw volume or a whole disk (partition selection exactly as
// the kernel and Nanos's dump do, §2.2; WithPartition picks the boot FS),
// replays the log (later records update earlier tuples) and returns an FS:
// an fs.FS that is also an fs.StatFS, fs.ReadDirFS, fs.ReadFileFS and
// fs.ReadLinkFS, whose regular files implement io.ReaderAt and io.Seeker;
// FileInfo.Sys() is a *FileStat (inode number, link count). Manifest returns
// the root keys. Verify reports every broken rule of §9 (and of the schema
// behind it) as a Problem located by volume and log position, path or MBR
// field. Neither panics nor allocates beyond the size of its input on
// hostile images (both are fuzzed).
package tfs
