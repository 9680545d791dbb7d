// Package launch boots a Nanos disk: NewLaunch prepares the QEMU (KVM when
// usable, else TCG) or Firecracker command line for a disk (a BIOS disk, or
// one for direct kernel boot with a kernel from vm/kernel), Run starts it
// with the console on the caller's streams and returns the guest's exit
// code. It also parses what a user says about a VM: ParseMemory,
// ParsePortForward.
package launch
