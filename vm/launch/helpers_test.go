package launch

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	vmdisk "github.com/nanofs/nanofs/vm/disk"
	"github.com/nanofs/nanofs/vm/internal/kerneltest"
	"github.com/nanofs/nanofs/vm/internal/vmtest"
	"github.com/nanofs/nanofs/vm/kernel"
)

// The shared fixtures, under the names the tests use.
var (
	probeStage1    = vmtest.ProbeStage1
	spinStage1     = vmtest.SpinStage1
	writeBootImage = vmtest.WriteBootImage
	readFile       = vmtest.ReadFile
	sameBytes      = vmtest.SameBytes
	testKernel     = kerneltest.Kernel
)

const probeMessage = vmtest.ProbeMessage

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
