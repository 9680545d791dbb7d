// Package vmtest holds the test fixtures of the vm packages: boot sectors
// that report over the serial port, boot images laid out as Nanos's, a
// real ELF standing in for kernel.img.
package vmtest
