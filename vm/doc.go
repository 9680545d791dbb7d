// Package vm is the image-to-unikernel side of nanofs. Its subpackages
// each own one job:
//
//   - vm/build: the whole job as one call (Build, Run, Resolve, Open):
//     open a source, lay local files over it, resolve, write a disk or a
//     package, boot.
//   - vm/content: the local files a build adds (vm/content/hostfs lays
//     them over the image).
//   - vm/opsconfig: ops's config.json.
//   - vm/kernel: finding the Nanos kernel.img and boot.img (FindKernel),
//     fetching a release (Fetch), reading a boot image.
//   - vm/disk: writing a Nanos disk image (CreateDisk, WriteDisk from a
//     plan), its MBR and layout (DetectLayout).
//   - vm/launch: booting a disk under QEMU or Firecracker (Run).
//   - vm/opspkg: ops packages (package.manifest + sysroot) from a plan.
//
// This package holds what they share: [OptionError], the error of a bad
// option, named so that a CLI can say which flag to use, and [ByteCount].
//
// The on-disk facts come from the project's Nanos image format
// specification (sections 2, 7, 8 and 10).
package vm
