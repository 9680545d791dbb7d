package disk

import (
	"github.com/nanofs/nanofs/vm/internal/kerneltest"
	"github.com/nanofs/nanofs/vm/internal/vmtest"
)

// The shared fixtures, under the names the tests use.
var (
	probeStage1    = vmtest.ProbeStage1
	readFile       = vmtest.ReadFile
	sameBytes      = vmtest.SameBytes
	testKernel     = kerneltest.Kernel
	assertEmptyDir = vmtest.AssertEmptyDir
)
