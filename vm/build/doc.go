// Package build is nanofs's whole job in one call: an image in, a
// bootable Nanos disk (or an ops package) out. Build opens the source
// (lazy.Classify decides what it is: registry, OCI layout, docker-save
// tarball or a plain directory such as a nanofs mount), reads an ops
// config if asked, lays the local files to add over the image
// (vm/content), resolves the program and every file it needs (resolve,
// with the added files as an input), finds the kernel, and writes the disk
// (disk.WriteDisk) or the package (opspkg.Package). It owns the defaults a user
// sees: the output name, the disk's seed, the order of the checks.
//
// It also owns what a build reports (Result.Summary, PackageSummary,
// Item.Report: the JSON a CLI prints), what to do about an error
// (RemedyOf, naming options; Reword puts them into the message) and what kind of failure it is (FailureOf).
// Its subpackage progress draws WithProgress's events as terminal bars.
//
// It must not import the CLI; what it says goes through WithLog and
// WithProgress, and errors in options are *vm.OptionError.
package build
