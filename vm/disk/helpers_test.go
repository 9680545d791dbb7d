package disk

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/vm/internal/vmtest"
	"github.com/nanofs/nanofs/vm/kernel"
)

// The shared fixtures (vmtest), under the names the tests use.
var (
	probeStage1    = vmtest.ProbeStage1
	spinStage1     = vmtest.SpinStage1
	writeBootImage = vmtest.WriteBootImage
	testELF        = vmtest.ELF
	readFile       = vmtest.ReadFile
	sameBytes      = vmtest.SameBytes
)

const probeMessage = vmtest.ProbeMessage

// testKernel is a kernel of a test ELF and a boot image with stage1.
func testKernel(t testing.TB, stage1 []byte, stage2Sectors int) kernel.Kernel {
	t.Helper()
	k, b := vmtest.KernelFiles(t, stage1, stage2Sectors)
	return kernel.Kernel{Kernel: k, Boot: b, Source: "flag"}
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing cached")
}
