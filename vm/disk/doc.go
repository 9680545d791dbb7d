// Package disk writes Nanos disk images exactly as Nanos's mkfs lays them
// out (spec §2): boot record and stage2, the kernel log area, the 12 MiB
// boot filesystem holding /kernel and klibs, the root filesystem, the MBR;
// or, WithoutBootloader, a disk for direct kernel boot. CreateDisk takes a
// RootFiller that streams the root filesystem into a tfs.Writer; WriteDisk
// walks a resolve.Plan over a file system into it (ManifestFromPlan gives
// the manifest). DetectLayout tells how an existing disk boots.
//
// Every disk is written to a temporary file and renamed only when complete
// (tfs.Output). It imports vm/kernel for the kernel and boot image, and
// nothing of launch or opspkg.
package disk
