// Package kernel finds and fetches what boots a Nanos disk: kernel.img
// and the BIOS bootloader boot.img. FindKernel looks, in order, at
// explicit files, NANOFS_KERNEL/NANOFS_BOOT, the nanofs cache and an ops
// install; Fetch downloads an official release into the cache, checked;
// ReadBootImage reads a boot.img's stage1 and stage2 (spec §2.1, §2.2).
//
// It must not import the other vm packages: disk and launch use it.
package kernel
