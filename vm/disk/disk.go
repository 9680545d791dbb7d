package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/kernel"
)

// Manifest holds the root-tuple keys the kernel reads (spec §7), apart from
// the directory tree.
type Manifest struct {
	Program     string            // path of the ELF to run; mandatory
	Arguments   []string          // argv including argv[0]; empty means [Program]
	Environment map[string]string // envp
	Cwd         string            // initial working directory; "" leaves it unset
	// Extra sets any other root key (spec §7), for example
	// "readonly_rootfs": tfs.Flag{} or "en1": tfs.Tuple{"ipaddr": ...}.
	// It is applied last and may override debug_exit and klibs.
	Extra tfs.Tuple
}

// RootFiller streams the root filesystem's entries (files, directories,
// symlinks, hard links, and manifest keys if it likes) into w. It must not
// call w.Close.
type RootFiller func(ctx context.Context, w *tfs.Writer) error

// FromFS is a RootFiller that copies a whole tree (see tfs.Writer.AddFS);
// entries TFS cannot hold (devices, FIFOs, sockets) are skipped.
func FromFS(fsys fs.FS) RootFiller {
	return func(ctx context.Context, w *tfs.Writer) error {
		return w.AddFS(ctx, fsys, func(string, fs.FileMode) {})
	}
}

// DiskOption configures CreateDisk.
type DiskOption func(*diskConfig)

type diskConfig struct {
	kernel       kernel.Kernel
	noBootloader bool
	klibs        []string
	manifest     Manifest
	seed         []byte
	debugExit    bool
	size         int64
	rootOpts     []tfs.Option
	// WriteDisk only
	parallel    int
	fileWritten func(path string, size int64)
}

// WithKernel names the kernel and boot.img a bootable disk is built from
// (see FindKernel). Direct-boot disks (WithoutBootloader) need neither.
func WithKernel(k kernel.Kernel) DiskOption { return func(c *diskConfig) { c.kernel = k } }

// WithoutBootloader writes a disk for direct kernel boot (QEMU -kernel on
// the microvm machine, Firecracker): the root filesystem behind a minimal
// partition table, no boot record, stage2 or boot filesystem. The kernel
// finds its root filesystem only through a partition table (spec §10), so
// the disk keeps one.
func WithoutBootloader() DiskOption { return func(c *diskConfig) { c.noBootloader = true } }

// WithKlibs copies the named kernel libraries from the kernel's KlibDir
// into /klib of the boot filesystem and sets klibs:"bootfs" so that the
// kernel loads them (spec §2.4).
func WithKlibs(names ...string) DiskOption {
	return func(c *diskConfig) { c.klibs = append(c.klibs, names...) }
}

// WithManifest sets the program, arguments, environment, working directory
// and other root keys.
func WithManifest(m Manifest) DiskOption { return func(c *diskConfig) { c.manifest = m } }

// WithSeed derives the volume UUIDs from seed, so that the same inputs give
// a byte-identical disk. The default is the empty seed: still
// deterministic, but every disk then shares its UUIDs.
func WithSeed(seed []byte) DiskOption {
	return func(c *diskConfig) { c.seed = slices.Clone(seed) }
}

// WithDebugExit sets (the default) or leaves out the debug_exit flag, which
// makes the kernel report the program's exit code through QEMU's
// isa-debug-exit device (spec §10). Without it a QEMU guest powers off
// through ACPI and the exit code is lost; on hypervisors without that
// device the kernel falls back to a keyboard-controller reset.
func WithDebugExit(on bool) DiskOption { return func(c *diskConfig) { c.debugExit = on } }

// WithDiskSize makes the disk exactly bytes long (a multiple of 512): the
// root filesystem extends to the end, its free space growing. Without it
// the disk is as small as the contents allow (plus tfs.DefaultFreeSpace).
func WithDiskSize(bytes int64) DiskOption { return func(c *diskConfig) { c.size = bytes } }

// WithRootOptions passes options to the root filesystem's tfs.Writer, for
// example tfs.WithLabel or tfs.WithFreeSpace. Offset, size and seed are
// CreateDisk's own.
func WithRootOptions(opts ...tfs.Option) DiskOption {
	return func(c *diskConfig) { c.rootOpts = append(c.rootOpts, opts...) }
}

// DiskInfo describes a disk written by CreateDisk.
type DiskInfo struct {
	Path       string
	Size       int64    // bytes
	Bootloader bool     // false for a direct-boot disk
	Stage2     int64    // stage2 bytes copied from boot.img
	BootStart  int64    // byte offset of the boot filesystem (0 without bootloader)
	RootStart  int64    // byte offset of the root filesystem
	RootSize   int64    // bytes, to the end of the disk
	BootUUID   [16]byte // zero without bootloader
	RootUUID   [16]byte
	Kernel     kernel.Kernel // what the boot filesystem holds
	Skipped    []string      // WriteDisk: plan entries left out (paths the kernel creates at boot)
}

// CreateDisk writes a Nanos disk image to out: the boot region from
// boot.img (stage1 and stage2, whose size its region record gives), the
// 4 KiB kernel log area, the 12 MiB boot filesystem holding /kernel (and
// /klib/* with WithKlibs), then the root filesystem that fill streams into,
// and finally sector 0 with the partition entries (spec §2). With
// WithoutBootloader only the partition table, the log area and the root
// filesystem are written. The manifest of WithManifest is set before fill
// runs, so fill may change it. The disk is written to a temporary file next
// to out and renamed over it only when complete.
func CreateDisk(ctx context.Context, out string, fill RootFiller, opts ...DiskOption) (*DiskInfo, error) {
	c := &diskConfig{debugExit: true}
	for _, o := range opts {
		o(c)
	}
	info := &DiskInfo{Path: out, Bootloader: !c.noBootloader, Kernel: c.kernel}
	if c.size < 0 || c.size%SectorSize != 0 {
		return nil, fmt.Errorf("disk size %d is not a multiple of %d bytes", c.size, SectorSize)
	}

	var boot *kernel.BootImage
	if c.noBootloader {
		if len(c.klibs) > 0 {
			return nil, errors.New("klibs live in the boot filesystem: a disk without bootloader cannot carry them")
		}
		info.RootStart = SectorSize + KlogSize
	} else {
		if c.kernel.Kernel == "" {
			return nil, errors.New("a bootable disk needs kernel.img (see kernel.FindKernel), or WithoutBootloader for direct kernel boot")
		}
		if c.kernel.Boot == "" {
			return nil, fmt.Errorf("a bootable disk needs boot.img (set %s or name one), or use a disk without bootloader for direct kernel boot", kernel.EnvBoot)
		}
		if err := kernel.CheckELF(c.kernel.Kernel, "amd64"); err != nil {
			return nil, err
		}
		var err error
		if boot, err = kernel.ReadBootImage(c.kernel.Boot); err != nil {
			return nil, err
		}
		info.Stage2 = boot.Stage2
		info.BootStart = boot.FirstPartition()
		info.RootStart = info.BootStart + BootFSSize
	}
	if c.size > 0 && c.size <= info.RootStart {
		return nil, fmt.Errorf("disk size %d leaves no room for a root filesystem after byte %d", c.size, info.RootStart)
	}

	f, err := tfs.CreateOutput(out, "disk")
	if err != nil {
		return nil, err
	}
	defer f.Abort()

	if boot != nil {
		if err := boot.WriteStage2(f.File); err != nil {
			return nil, err
		}
		if info.BootUUID, err = writeBootFS(f.File, info.BootStart, c); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if info.RootUUID, info.RootSize, err = writeRootFS(ctx, f.File, info.RootStart, c, fill); err != nil {
		return nil, err
	}
	info.Size = info.RootStart + info.RootSize
	if err := f.Truncate(info.Size); err != nil {
		return nil, fmt.Errorf("sizing disk: %w", err)
	}

	var s0 [SectorSize]byte
	if boot != nil {
		s0, err = mbrSector(boot.Sector0,
			partition{active: true, typ: partTypeTFS, start: info.BootStart, size: BootFSSize},
			partition{active: true, typ: partTypeTFS, start: info.RootStart, size: info.RootSize})
	} else {
		s0, err = directBootSector(info.RootStart, info.RootSize)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(s0[:], 0); err != nil {
		return nil, fmt.Errorf("writing sector 0: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	return info, nil
}

// volumeSeed derives a per-volume seed so the two filesystems of a disk
// get different UUIDs from one disk seed.
func volumeSeed(seed []byte, volume string) []byte {
	return append(append(slices.Clip(seed), 0), volume...)
}

// writeBootFS writes the boot filesystem: /kernel and the requested klibs.
// It is read by stage2 with a never-freeing heap, so it is written with no
// free space and a single log extension (spec §2.3, §9.10).
func writeBootFS(f *os.File, off int64, c *diskConfig) ([16]byte, error) {
	w, err := tfs.NewWriter(f,
		tfs.WithOffset(off),
		tfs.WithSize(BootFSSize),
		tfs.WithFreeSpace(0),
		tfs.WithSeed(volumeSeed(c.seed, "boot")),
		tfs.AllowReservedPaths())
	if err != nil {
		return [16]byte{}, fmt.Errorf("boot filesystem: %w", err)
	}
	if err := AddHostFile(w, "kernel", c.kernel.Kernel); err != nil {
		return [16]byte{}, fmt.Errorf("boot filesystem: %w", err)
	}
	if len(c.klibs) > 0 {
		if c.kernel.KlibDir == "" {
			return [16]byte{}, fmt.Errorf("klibs %v asked for, but the kernel from %s comes without a klibs directory", c.klibs, c.kernel.Source)
		}
		names := slices.Clone(c.klibs)
		slices.Sort(names)
		for _, name := range slices.Compact(names) {
			if name == "" || name == "." || name == ".." || path.Base(name) != name {
				return [16]byte{}, fmt.Errorf("invalid klib name %q", name)
			}
			if err := AddHostFile(w, "klib/"+name, filepath.Join(c.kernel.KlibDir, name)); err != nil {
				return [16]byte{}, fmt.Errorf("boot filesystem: klib %s: %w", name, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		return [16]byte{}, fmt.Errorf("boot filesystem: %w", err)
	}
	return w.UUID(), nil
}

// AddHostFile copies a regular host file into the volume.
func AddHostFile(w *tfs.Writer, name, host string) error {
	src, err := os.Open(host)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", host)
	}
	return w.AddFile(name, st.Size(), src)
}

// writeRootFS writes the root filesystem at off and returns its UUID and
// size.
func writeRootFS(ctx context.Context, f *os.File, off int64, c *diskConfig, fill RootFiller) ([16]byte, int64, error) {
	opts := slices.Clone(c.rootOpts)
	opts = append(opts, tfs.WithOffset(off), tfs.WithSeed(volumeSeed(c.seed, "root")))
	if c.size > 0 {
		opts = append(opts, tfs.WithSize(c.size-off))
	}
	w, err := tfs.NewWriter(f, opts...)
	if err != nil {
		return [16]byte{}, 0, fmt.Errorf("root filesystem: %w", err)
	}
	if err := setManifest(w, c); err != nil {
		return [16]byte{}, 0, fmt.Errorf("root filesystem manifest: %w", err)
	}
	if fill != nil {
		if err := fill(ctx, w); err != nil {
			return [16]byte{}, 0, fmt.Errorf("root filesystem: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return [16]byte{}, 0, err
	}
	if err := w.Close(); err != nil {
		return [16]byte{}, 0, fmt.Errorf("root filesystem: %w", err)
	}
	return w.UUID(), w.Size(), nil
}

func setManifest(w *tfs.Writer, c *diskConfig) error {
	m := c.manifest
	if m.Program != "" {
		if err := w.SetProgram(m.Program); err != nil {
			return err
		}
	}
	if len(m.Arguments) > 0 {
		if err := w.SetArguments(m.Arguments...); err != nil {
			return err
		}
	}
	if m.Environment != nil {
		if err := w.SetEnvironment(m.Environment); err != nil {
			return err
		}
	}
	if m.Cwd != "" {
		if err := w.SetCwd(m.Cwd); err != nil {
			return err
		}
	}
	if c.debugExit {
		if err := w.SetRoot("debug_exit", tfs.Flag{}); err != nil {
			return err
		}
	}
	if len(c.klibs) > 0 {
		if err := w.SetRoot("klibs", tfs.String("bootfs")); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Extra)) {
		if err := w.SetRoot(k, m.Extra[k]); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
	}
	return nil
}
