package launch

import (
	"context"
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	vmdisk "github.com/nanofs/nanofs/vm/disk"
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

// createTestDisk writes a small disk whose program is /bin/app.
func createTestDisk(t *testing.T, out string, opts ...vmdisk.DiskOption) *vmdisk.DiskInfo {
	t.Helper()
	tree := fstest.MapFS{"bin/app": {Data: []byte("\x7fELF pretend program"), Mode: 0o755}}
	opts = append([]vmdisk.DiskOption{vmdisk.WithManifest(vmdisk.Manifest{Program: "/bin/app"}), vmdisk.WithSeed([]byte("test"))}, opts...)
	info, err := vmdisk.CreateDisk(context.Background(), out, vmdisk.FromFS(tree), opts...)
	require.NoError(t, err)
	return info
}

// envOf makes the kernel search see only the variables of m.
func envOf(m map[string]string) kernel.KernelOption {
	return kernel.WithGetenv(func(k string) string { return m[k] })
}
