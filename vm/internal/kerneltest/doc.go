// Package kerneltest makes test kernels (vmtest's ELF and boot images) for
// the packages that take a kernel.Kernel; vm/kernel's own tests use vmtest.
package kerneltest
