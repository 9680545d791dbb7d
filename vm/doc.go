// Package vm turns a root filesystem into a bootable Nanos unikernel and
// boots it.
//
// It has four jobs, each usable alone:
//
//   - Kernel acquisition: [FindKernel] locates the Nanos kernel (kernel.img)
//     and BIOS bootloader (boot.img) from explicit paths, the NANOFS_KERNEL
//     and NANOFS_BOOT environment variables, the nanofs cache or an ops
//     install; [Fetch] downloads an official release into the cache.
//   - Disk assembly: [CreateDisk] writes a whole disk image exactly as Nanos's
//     mkfs lays it out (boot record and stage2, kernel log area, 12 MiB boot
//     filesystem holding /kernel, root filesystem, MBR), or, with
//     [WithoutBootloader], a disk for direct kernel boot that carries only the
//     root filesystem behind a minimal partition table. The root filesystem is
//     streamed by the caller into a [tfs.Writer].
//   - Launching: [Run] boots a disk under QEMU (KVM when usable, else TCG) or
//     Firecracker and returns the guest's exit code.
//   - ops packages: [NewPackage] lays a plan out as ops's package.manifest
//     and sysroot, written as an archive or installed into an ops home.
//
// [WriteDisk] and [Package] walk a resolve.Plan over a file system (the
// image with any added local files) into a disk's root filesystem or an
// ops package.
//
// The whole job, image in and disk out, is vm/build (Build, Run); vm/content
// owns the local files a build adds and vm/opsconfig reads ops's
// config.json. Small shared pieces live here: [OptionError] (a bad option,
// named so that a CLI can say which flag), [ByteCount].
//
// The on-disk facts come from the project's Nanos image format
// specification (sections 2, 7, 8 and 10).
package vm
