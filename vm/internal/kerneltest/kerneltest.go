package kerneltest

import (
	"testing"

	"github.com/nanofs/nanofs/vm/internal/vmtest"
	"github.com/nanofs/nanofs/vm/kernel"
)

// Kernel is a kernel of a test ELF and a boot image with the given stage1.
func Kernel(t testing.TB, stage1 []byte, stage2Sectors int) kernel.Kernel {
	t.Helper()
	k, b := vmtest.KernelFiles(t, stage1, stage2Sectors)
	return kernel.Kernel{Kernel: k, Boot: b, Source: "flag"}
}
