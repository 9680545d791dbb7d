package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nanofs/nanofs/vm"
	"github.com/nanofs/nanofs/vm/disk"
	vmdisk "github.com/nanofs/nanofs/vm/disk"
	"github.com/nanofs/nanofs/vm/kernel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePortForward(t *testing.T) {
	tests := []struct {
		in   string
		want PortForward
		err  string
	}{
		{"8080:80", PortForward{Host: 8080, Guest: 80}, ""},
		{"8080:80/tcp", PortForward{Host: 8080, Guest: 80}, ""},
		{"5353:53/udp", PortForward{Host: 5353, Guest: 53, UDP: true}, ""},
		{"127.0.0.1:8080:80", PortForward{HostAddr: "127.0.0.1", Host: 8080, Guest: 80}, ""},
		{"80", PortForward{}, "want HOST:GUEST"},
		{"0:80", PortForward{}, "host port"},
		{"8080:65536", PortForward{}, "guest port"},
		{"x:80", PortForward{}, "host port"},
		{"8080:80/sctp", PortForward{}, "protocol"},
		{"localhost:8080:80", PortForward{}, "IPv4"},
		{"[::1]:8080:80", PortForward{}, "IPv4"},
	}
	for _, tt := range tests {
		got, err := ParsePortForward(tt.in)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	assert.Equal(t, "hostfwd=udp:127.0.0.1:5353-:53", PortForward{HostAddr: "127.0.0.1", Host: 5353, Guest: 53, UDP: true}.hostfwd())
	assert.Equal(t, "hostfwd=tcp::8080-:80", PortForward{Host: 8080, Guest: 80}.hostfwd())
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"512", 512}, {"512M", 512}, {"512m", 512}, {"512MiB", 512}, {"2G", 2048}, {"2GiB", 2048}, {"1g", 1024},
		{"", 0}, {"0", 0}, {"-1G", 0}, {"2T", 0}, {"lots", 0}, {"99999999G", 0},
	}
	for _, tt := range tests {
		got, err := ParseMemory(tt.in)
		if tt.want == 0 {
			assert.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestGuestExitCode(t *testing.T) {
	tests := []struct {
		status, code int
		ok           bool
	}{
		{0, 0, true},     // ACPI power-off (no debug_exit)
		{1, 0, true},     // debug-exit 0
		{7, 3, true},     // spec §10: a program returning 3 gave 7
		{255, 127, true}, // kernel halt (VM_EXIT_HALT 0x7f)
		{253, 126, true}, // kernel fault (VM_EXIT_FAULT 0x7e)
		{2, 0, false},
	}
	for _, tt := range tests {
		code, ok := guestExitCode(tt.status)
		assert.Equal(t, tt.ok, ok, "status %d", tt.status)
		assert.Equal(t, tt.code, code, "status %d", tt.status)
	}
}

// testDisks writes a BIOS disk booting stage1 and a direct-boot disk.
func testDisks(t *testing.T, stage1 []byte) (bios, direct string, k kernel.Kernel) {
	t.Helper()
	dir := t.TempDir()
	k = testKernel(t, stage1, 2)
	bios = filepath.Join(dir, "bios,with comma.img")
	createTestDisk(t, bios, disk.WithKernel(k))
	direct = filepath.Join(dir, "direct.img")
	createTestDisk(t, direct, disk.WithoutBootloader())
	return bios, direct, k
}

func TestNewLaunchQEMU(t *testing.T) {
	bios, direct, k := testDisks(t, probeStage1)
	noKVM := withKVMDevice(filepath.Join(t.TempDir(), "no-kvm"))
	fakeKVM := filepath.Join(t.TempDir(), "kvm")
	require.NoError(t, os.WriteFile(fakeKVM, nil, 0o600))

	l, err := NewLaunch(bios, noKVM, WithPorts(PortForward{Host: 8080, Guest: 80}, PortForward{HostAddr: "127.0.0.1", Host: 5353, Guest: 53, UDP: true}))
	require.NoError(t, err)
	assert.Equal(t, AccelTCG, l.Accel)
	assert.Equal(t, vmdisk.LayoutBIOS, l.Layout)
	assert.Contains(t, l.Notice, "TCG")
	assert.Equal(t, QEMUBinary, l.Path)
	assert.Equal(t, []string{
		"-machine", "q35", "-accel", "tcg", "-cpu", "max",
		"-m", "2048M", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-device", "isa-debug-exit",
		"-drive", "if=none,id=hd0,format=raw,file=" + strings.ReplaceAll(bios, ",", ",,") + ",snapshot=on",
		"-netdev", "user,id=n0,hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-:53",
		"-device", "virtio-blk-pci,drive=hd0",
		"-device", "virtio-net-pci,netdev=n0",
	}, l.Args)
	assert.Contains(t, l.String(), "'if=none,id=hd0")

	// KVM when usable; explicit kvm without it is an error.
	l, err = NewLaunch(bios, withKVMDevice(fakeKVM), WithMemory(512), WithCPUs(2), WithPersist())
	require.NoError(t, err)
	assert.Equal(t, AccelKVM, l.Accel)
	assert.Empty(t, l.Notice)
	assert.Contains(t, strings.Join(l.Args, " "), "-accel kvm -cpu host -m 512M -smp 2")
	assert.NotContains(t, strings.Join(l.Args, " "), "snapshot=on")
	_, err = NewLaunch(bios, noKVM, WithAccel(AccelKVM))
	require.ErrorContains(t, err, "not usable")
	l, err = NewLaunch(bios, withKVMDevice(fakeKVM), WithAccel(AccelTCG))
	require.NoError(t, err)
	assert.Equal(t, AccelTCG, l.Accel)
	assert.Empty(t, l.Notice)

	// Direct boot: microvm with the kernel.
	l, err = NewLaunch(direct, noKVM, WithBootKernel(k))
	require.NoError(t, err)
	assert.Equal(t, vmdisk.LayoutDirect, l.Layout)
	args := strings.Join(l.Args, " ")
	assert.Contains(t, args, "-machine microvm,rtc=on,ioapic2=off -kernel "+k.Kernel+" -global virtio-mmio.force-legacy=false")
	assert.Contains(t, args, "-device virtio-blk-device,drive=hd0 -device virtio-net-device,netdev=n0")
	_, err = NewLaunch(direct, noKVM, WithKernelSearch(kernel.WithCacheDir(t.TempDir()), kernel.WithOpsHome(t.TempDir()), envOf(nil)))
	require.ErrorIs(t, err, kernel.ErrNoKernel)
	l, err = NewLaunch(direct, noKVM, WithKernelSearch(kernel.WithCacheDir(t.TempDir()), kernel.WithOpsHome(t.TempDir()), envOf(map[string]string{kernel.EnvKernel: k.Kernel})))
	require.NoError(t, err)
	assert.Equal(t, k.Kernel, l.Kernel)

	for _, bad := range [][]RunOption{
		{WithAccel("hvf")}, {WithVMM("xen")}, {WithMemory(0)}, {WithCPUs(0)},
	} {
		_, err := NewLaunch(bios, append(bad, noKVM)...)
		assert.Error(t, err)
	}
}

func TestNewLaunchFirecracker(t *testing.T) {
	bios, _, k := testDisks(t, probeStage1)
	fakeKVM := filepath.Join(t.TempDir(), "kvm")
	require.NoError(t, os.WriteFile(fakeKVM, nil, 0o600))
	noKVM := withKVMDevice(filepath.Join(t.TempDir(), "none"))
	// A real executable stands in for the firecracker binary: only the
	// configuration is checked here, nothing is started.
	fc := WithBinary("true")

	_, err := NewLaunch(bios, WithVMM(Firecracker), WithBootKernel(k), noKVM, WithBinary("nanofs-test-no-such-firecracker"))
	require.ErrorContains(t, err, "firecracker is not installed")
	var oe *vm.OptionError
	require.ErrorAs(t, err, &oe, "an error about the monitor chosen, which the CLI words as --vmm")
	assert.Equal(t, vm.OptionVMM, oe.Option)
	_, err = NewLaunch(bios, WithVMM(Firecracker), WithBootKernel(k), fc, noKVM)
	require.ErrorContains(t, err, "firecracker needs KVM")
	_, err = NewLaunch(bios, WithVMM(Firecracker), WithBootKernel(k), fc, withKVMDevice(fakeKVM), WithPorts(PortForward{Host: 1, Guest: 1}))
	require.ErrorContains(t, err, "port forwarding")
	_, err = NewLaunch(bios, WithVMM(Firecracker), WithBootKernel(k), fc, withKVMDevice(fakeKVM), WithAccel(AccelTCG))
	require.ErrorContains(t, err, "only on KVM")

	l, err := NewLaunch(bios, WithVMM(Firecracker), WithBootKernel(k), fc, withKVMDevice(fakeKVM), WithCPUs(2), WithMemory(256))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(l.fcJSON, &cfg))
	assert.Equal(t, map[string]any{"kernel_image_path": k.Kernel, "boot_args": ""}, cfg["boot-source"])
	assert.Equal(t, map[string]any{"vcpu_count": 2.0, "mem_size_mib": 256.0}, cfg["machine-config"])
	drive := cfg["drives"].([]any)[0].(map[string]any)
	abs, _ := filepath.Abs(bios)
	assert.Equal(t, abs, drive["path_on_host"])
	assert.Equal(t, false, drive["is_read_only"])

	// Without --persist the guest gets a copy of the disk.
	args, err := l.prepareFirecracker()
	require.NoError(t, err)
	defer l.cleanup[0]()
	require.Len(t, args, 3)
	b, err := os.ReadFile(args[2])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cfg))
	cp := cfg["drives"].([]any)[0].(map[string]any)["path_on_host"].(string)
	assert.NotEqual(t, abs, cp)
	sameBytes(t, readFile(t, bios), readFile(t, cp), "disk copy")
}

func needQEMU(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts QEMU; skipped under -short")
	}
	if _, err := exec.LookPath(QEMUBinary); err != nil {
		t.Skipf("needs %s (Debian/Ubuntu: apt-get install qemu-system-x86)", QEMUBinary)
	}
}

// TestRunQEMUExitCode boots a real disk whose boot sector prints a line on
// the serial console and reports 3 through isa-debug-exit: console on
// stdout, exit code mapped back, disk left unchanged.
func TestRunQEMUExitCode(t *testing.T) {
	needQEMU(t)
	bios, _, _ := testDisks(t, probeStage1)
	before := readFile(t, bios)
	var stdout, stderr bytes.Buffer
	var notices []string
	code, err := Run(context.Background(), bios, WithMemory(64),
		WithConsole(nil, &stdout, &stderr), WithNotice(func(s string) { notices = append(notices, s) }))
	require.NoError(t, err, stderr.String())
	assert.Equal(t, 3, code)
	assert.Equal(t, probeMessage, stdout.String())
	if kvmUsable("/dev/kvm", "/proc/cpuinfo") != nil {
		require.Len(t, notices, 1)
		assert.Contains(t, notices[0], "TCG")
	}
	sameBytes(t, before, readFile(t, bios), "disk after run")
}

// TestRunQEMUFailure: QEMU itself fails (the host port is taken) with the
// same status 1 a guest exiting 0 gives; Run must report QEMU's error.
func TestRunQEMUFailure(t *testing.T) {
	needQEMU(t)
	bios, _, _ := testDisks(t, probeStage1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	var stderr bytes.Buffer
	_, err = Run(context.Background(), bios, WithMemory(64), WithAccel(AccelTCG),
		WithPorts(PortForward{HostAddr: "127.0.0.1", Host: uint16(port), Guest: 80}),
		WithConsole(nil, &bytes.Buffer{}, &stderr))
	require.ErrorContains(t, err, "qemu exited with status 1")
	require.ErrorContains(t, err, strconv.Itoa(port))
}

// TestRunQEMUCancel: cancelling the context stops a guest that never
// exits.
func TestRunQEMUCancel(t *testing.T) {
	needQEMU(t)
	bios, _, _ := testDisks(t, spinStage1)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, bios, WithMemory(64), WithAccel(AccelTCG), WithConsole(nil, &bytes.Buffer{}, &bytes.Buffer{}))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second)
}

func FuzzParsePortForward(f *testing.F) {
	for _, s := range []string{"8080:80", "127.0.0.1:1:2/udp", "::", "a:b:c:d", "1:2/tcp/udp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePortForward(s)
		if err != nil {
			return
		}
		if p.Host == 0 || p.Guest == 0 || strings.ContainsAny(p.HostAddr, ",:-") {
			t.Fatalf("accepted %q as %+v", s, p)
		}
	})
}

func FuzzParseMemory(f *testing.F) {
	for _, s := range []string{"512", "2G", "1GiB", "-0", "9223372036854775807G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseMemory(s)
		if err == nil && (n <= 0 || n > 1<<24) {
			t.Fatalf("accepted %q as %d MiB", s, n)
		}
	})
}

// TestKVMUsable: a /dev/kvm that opens is not enough; inside a VM without
// nested virtualization the CPU has no vmx/svm flag and guests hang.
func TestKVMUsable(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "kvm")
	require.NoError(t, os.WriteFile(dev, nil, 0o600))
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	for _, tc := range []struct {
		name, dev, cpuinfo, err string
	}{
		{"intel", dev, write("intel", "processor\t: 0\nflags\t\t: fpu vme vmx sse\n"), ""},
		{"amd", dev, write("amd", "flags\t\t: fpu svm\n"), ""},
		{"nested off", dev, write("guest", "flags\t\t: fpu hypervisor sse\n"), "no vmx or svm"},
		{"no device", filepath.Join(dir, "none"), write("x", "flags: vmx\n"), "no such file"},
		{"no cpuinfo", dev, filepath.Join(dir, "missing"), "CPU's flags"},
		{"device only", dev, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := kvmUsable(tc.dev, tc.cpuinfo)
			if tc.err == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tc.err)
			}
		})
	}
}
