package kernel

import (
	"github.com/nanofs/nanofs/vm/internal/vmtest"
)

// The shared fixtures (vmtest), under the names the tests use.
var (
	probeStage1    = vmtest.ProbeStage1
	writeBootImage = vmtest.WriteBootImage
	testELF        = vmtest.ELF
	assertEmptyDir = vmtest.AssertEmptyDir
)
