package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nanofs/nanofs/tfs"
	vmdisk "github.com/nanofs/nanofs/vm/disk"
	vmkernel "github.com/nanofs/nanofs/vm/kernel"
	"github.com/nanofs/nanofs/vm/launch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runProbeStage1 is a real-mode boot sector that prints a line on the
// serial console and exits QEMU through isa-debug-exit with code 3 (the
// same program as the vm package's test probe; see its assembly there).
var runProbeStage1 = []byte{
	0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0xba, 0xf8, 0x03, 0xbe, 0x1c, 0x7c, 0xac, 0x84, 0xc0, 0x74, 0x03,
	0xee, 0xeb, 0xf8, 0xba, 0x01, 0x05, 0xb0, 0x03, 0xee, 0xf4, 0xeb, 0xfd,
	'n', 'a', 'n', 'o', 'f', 's', '-', 'b', 'o', 'o', 't', '-', 's', 'e', 'c', 't', 'o', 'r', '-', 'o', 'k', '\n', 0,
}

// runProbeDisk builds a bootable disk whose boot sector is the probe.
func runProbeDisk(t *testing.T) string {
	t.Helper()
	kernel, boot := kernelTestFiles(t, runProbeStage1)
	dir := t.TempDir()
	k := vmkernel.Kernel{Kernel: filepath.Join(dir, "kernel.img"), Boot: filepath.Join(dir, "boot.img")}
	require.NoError(t, os.WriteFile(k.Kernel, kernel, 0o644))
	require.NoError(t, os.WriteFile(k.Boot, boot, 0o644))
	disk := filepath.Join(dir, "probe.img")
	fill := func(_ context.Context, w *tfs.Writer) error {
		return w.AddFile("bin/app", int64(len(kernel)), bytes.NewReader(kernel))
	}
	_, err := vmdisk.CreateDisk(context.Background(), disk, fill, vmdisk.WithKernel(k), vmdisk.WithManifest(vmdisk.Manifest{Program: "/bin/app"}))
	require.NoError(t, err)
	return disk
}

func TestRunDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU; skipped under -short")
	}
	if _, err := exec.LookPath(launch.QEMUBinary); err != nil {
		t.Skipf("needs %s (Debian/Ubuntu: apt-get install qemu-system-x86)", launch.QEMUBinary)
	}
	disk := runProbeDisk(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, ln.Close())
	code, stdout, stderr := kernelCLI(t, "-v", "run", disk, "--memory", "64M", "-p", "127.0.0.1:"+port+":80")
	assert.Equal(t, 3, code, stderr)
	assert.Equal(t, "nanofs-boot-sector-ok\n", stdout)
	assert.Contains(t, stderr, "qemu-system-x86_64 -machine q35")
	assert.Contains(t, stderr, "hostfwd=tcp:127.0.0.1:"+port+"-:80")
	if _, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		assert.Contains(t, stderr, "running under TCG")
	}

	code, _, stderr = kernelCLI(t, "-q", "run", disk, "--memory", "64M", "--accel", "tcg")
	assert.Equal(t, 3, code, stderr)
	assert.Empty(t, stderr)
}

func TestRunRejects(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "x.img")
	require.NoError(t, os.WriteFile(disk, make([]byte, 1024), 0o644))
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"run", filepath.Join(dir, "missing.img")}, "no such disk image"},
		{[]string{"run", dir}, "is a directory, neither a disk image nor an OCI image layout"},
		{[]string{"run", disk, "extra"}, "after --"},
		{[]string{"run", disk, "--", "extra"}, "no TFS magic"}, // not a TFS disk
		{[]string{"run", disk, "-p", "80"}, "HOST:GUEST"},
		{[]string{"run", disk, "--memory", "lots"}, "memory size"},
		{[]string{"run", disk}, "not a Nanos disk image"},
		{[]string{"run"}, "requires at least 1 arg"},
	}
	for _, tt := range tests {
		code, _, stderr := kernelCLI(t, tt.args...)
		assert.Equal(t, 1, code, tt.args)
		assert.Contains(t, stderr, tt.err, tt.args)
	}
}

func TestRunFirecrackerMissing(t *testing.T) {
	if _, err := exec.LookPath(launch.FirecrackerBinary); err == nil {
		t.Skip("firecracker is installed")
	}
	disk := runProbeDisk(t)
	code, _, stderr := kernelCLI(t, "run", disk, "--vmm", "firecracker", "--kernel", "/bin/true")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "firecracker is not installed")
	assert.Contains(t, stderr, "--vmm qemu")
}
