package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nanofs/nanofs/vm"
	vmdisk "github.com/nanofs/nanofs/vm/disk"
	"github.com/nanofs/nanofs/vm/kernel"
)

// VMM names a virtual machine monitor.
type VMM string

// The monitors Run can launch.
const (
	QEMU        VMM = "qemu"
	Firecracker VMM = "firecracker"
)

// Accel selects how the guest CPU runs under QEMU.
type Accel string

// Accelerators.
const (
	AccelAuto Accel = "auto" // KVM when /dev/kvm is usable, else TCG
	AccelKVM  Accel = "kvm"
	AccelTCG  Accel = "tcg" // emulation: slower, works everywhere
)

// Binaries run by default.
const (
	QEMUBinary        = "qemu-system-x86_64"
	FirecrackerBinary = "firecracker"
)

// PortForward forwards a host port to a guest port (QEMU user networking).
type PortForward struct {
	HostAddr string // host address to bind; "" means all interfaces
	Host     uint16
	Guest    uint16
	UDP      bool
}

// ParsePortForward parses "[HOSTADDR:]HOST:GUEST[/tcp|/udp]", the form of
// docker run -p.
func ParsePortForward(s string) (PortForward, error) {
	var p PortForward
	spec, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		switch proto {
		case "tcp":
		case "udp":
			p.UDP = true
		default:
			return p, fmt.Errorf("port forward %q: protocol %q (want tcp or udp)", s, proto)
		}
	}
	i := strings.LastIndexByte(spec, ':')
	if i < 0 {
		return p, fmt.Errorf("port forward %q: want HOST:GUEST", s)
	}
	guest := spec[i+1:]
	rest := spec[:i]
	host := rest
	if j := strings.LastIndexByte(rest, ':'); j >= 0 {
		p.HostAddr, host = strings.TrimSuffix(strings.TrimPrefix(rest[:j], "["), "]"), rest[j+1:]
		if net.ParseIP(p.HostAddr) == nil || strings.Contains(p.HostAddr, ":") {
			return p, fmt.Errorf("port forward %q: host address %q is not an IPv4 address", s, p.HostAddr)
		}
	}
	var err error
	if p.Host, err = parsePort(host); err != nil {
		return p, fmt.Errorf("port forward %q: host %w", s, err)
	}
	if p.Guest, err = parsePort(guest); err != nil {
		return p, fmt.Errorf("port forward %q: guest %w", s, err)
	}
	return p, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// hostfwd renders the forward as a QEMU hostfwd rule.
func (p PortForward) hostfwd() string {
	proto := "tcp"
	if p.UDP {
		proto = "udp"
	}
	return fmt.Sprintf("hostfwd=%s:%s:%d-:%d", proto, p.HostAddr, p.Host, p.Guest)
}

// ParseMemory parses a memory size as QEMU's -m does ("512", "512M", "2G";
// a bare number is MiB) and returns MiB.
func ParseMemory(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := 1
	switch {
	case strings.HasSuffix(t, "G"):
		mult, t = 1024, strings.TrimSuffix(t, "G")
	case strings.HasSuffix(t, "M"):
		t = strings.TrimSuffix(t, "M")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > 1<<24/mult {
		return 0, fmt.Errorf("memory size %q: want MiB or a size like 512M or 2G", s)
	}
	return n * mult, nil
}

// RunOption configures Run and NewLaunch.
type RunOption func(*runConfig)

type runConfig struct {
	vmm        VMM
	accel      Accel
	memoryMiB  int
	cpus       int
	ports      []PortForward
	kernel     *kernel.Kernel
	findKernel []kernel.KernelOption
	persist    bool
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	notice     func(string)
	binary     string
	kvmDevice  string
	cpuinfo    string // where the host CPU's flags are read; "" trusts the device alone
}

// WithVMM selects the monitor (default QEMU).
func WithVMM(v VMM) RunOption { return func(c *runConfig) { c.vmm = v } }

// WithAccel selects the QEMU accelerator (default AccelAuto).
func WithAccel(a Accel) RunOption { return func(c *runConfig) { c.accel = a } }

// WithMemory sets the guest memory in MiB (default 2048).
func WithMemory(mib int) RunOption { return func(c *runConfig) { c.memoryMiB = mib } }

// WithCPUs sets the number of virtual CPUs (default 1).
func WithCPUs(n int) RunOption { return func(c *runConfig) { c.cpus = n } }

// WithPorts forwards host ports to the guest.
func WithPorts(p ...PortForward) RunOption {
	return func(c *runConfig) { c.ports = append(c.ports, p...) }
}

// WithBootKernel gives the kernel for disks without bootloader and for
// Firecracker; without it FindKernel is asked, with these options.
func WithBootKernel(k kernel.Kernel) RunOption { return func(c *runConfig) { c.kernel = &k } }

// WithKernelSearch passes options to FindKernel when a kernel is needed and
// WithBootKernel gave none.
func WithKernelSearch(opts ...kernel.KernelOption) RunOption {
	return func(c *runConfig) { c.findKernel = append(c.findKernel, opts...) }
}

// WithPersist lets the guest write to the disk. By default its writes (the
// kernel writes to the root filesystem at every boot, spec §10) go to a
// throw-away overlay and the disk stays as built.
func WithPersist() RunOption { return func(c *runConfig) { c.persist = true } }

// WithConsole connects the guest console: output to stdout, input from
// stdin (nil: none), and the monitor's own messages to stderr.
func WithConsole(stdin io.Reader, stdout, stderr io.Writer) RunOption {
	return func(c *runConfig) { c.stdin, c.stdout, c.stderr = stdin, stdout, stderr }
}

// WithNotice receives one-line notices, such as falling back to TCG.
func WithNotice(f func(string)) RunOption { return func(c *runConfig) { c.notice = f } }

// WithBinary replaces the monitor executable (a name looked up in PATH, or
// a path).
func WithBinary(path string) RunOption { return func(c *runConfig) { c.binary = path } }

// withKVMDevice replaces /dev/kvm (tests). The host CPU's flags are then not
// consulted, so a plain file stands for a working KVM.
func withKVMDevice(path string) RunOption {
	return func(c *runConfig) { c.kvmDevice, c.cpuinfo = path, "" }
}

// Launch is a prepared VM start: the command line and what it needs.
type Launch struct {
	VMM    VMM
	Accel  Accel // QEMU only
	Layout vmdisk.DiskLayout
	Path   string   // executable
	Args   []string // arguments, without Path
	// Notice is set when the accelerator had to fall back (KVM → TCG).
	Notice string
	// Kernel is the kernel given to the monitor (direct boot, Firecracker).
	Kernel string

	cfg     *runConfig
	disk    string
	fcJSON  []byte // Firecracker configuration, written at start
	cleanup []func()
}

// String renders the command line, shell-quoted.
func (l *Launch) String() string {
	parts := []string{shellQuote(l.Path)}
	for _, a := range l.Args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// NewLaunch prepares booting disk: it detects the disk layout, finds a
// kernel when the disk has no bootloader or Firecracker is asked, picks the
// accelerator, and builds the command line, without starting anything.
func NewLaunch(disk string, opts ...RunOption) (*Launch, error) {
	c := &runConfig{vmm: QEMU, accel: AccelAuto, memoryMiB: 2048, cpus: 1, kvmDevice: "/dev/kvm", cpuinfo: "/proc/cpuinfo"}
	for _, o := range opts {
		o(c)
	}
	if c.memoryMiB <= 0 {
		return nil, fmt.Errorf("memory %d MiB: must be positive", c.memoryMiB)
	}
	if c.cpus <= 0 || c.cpus > 255 {
		return nil, fmt.Errorf("%d CPUs: want 1 to 255", c.cpus)
	}
	layout, err := vmdisk.DetectLayout(disk)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(disk)
	if err != nil {
		return nil, err
	}
	l := &Launch{VMM: c.vmm, Layout: layout, cfg: c, disk: abs}
	if layout == vmdisk.LayoutDirect || c.vmm == Firecracker {
		k := c.kernel
		if k == nil || k.Kernel == "" {
			found, err := kernel.FindKernel(c.findKernel...)
			if err != nil {
				return nil, fmt.Errorf("%s needs a kernel to boot: %w", disk, err)
			}
			k = &found
		}
		l.Kernel = k.Kernel
	}
	switch c.vmm {
	case QEMU:
		err = l.qemu()
	case Firecracker:
		err = l.firecracker()
	default:
		err = fmt.Errorf("unknown VMM %q (want qemu or firecracker)", c.vmm)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// kvmUsable reports whether KVM can run a guest: the device opens, and the
// CPU offers hardware virtualization. A VM without nested virtualization
// (Firecracker, many cloud instances) can still have a /dev/kvm that opens,
// but a guest started on it hangs or QEMU aborts setting MSRs.
func kvmUsable(dev, cpuinfo string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	f.Close()
	if cpuinfo == "" {
		return nil
	}
	info, err := os.ReadFile(cpuinfo)
	if err != nil {
		return fmt.Errorf("reading the CPU's flags: %w", err)
	}
	for _, line := range strings.Split(string(info), "\n") {
		name, flags, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "flags" {
			continue
		}
		for _, f := range strings.Fields(flags) {
			if f == "vmx" || f == "svm" {
				return nil
			}
		}
	}
	return errors.New("the CPU offers no hardware virtualization (no vmx or svm flag: a VM without nested virtualization)")
}

// qemuValue escapes a value inside a QEMU option list, where "," separates
// options and ",," is a literal comma.
func qemuValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func (l *Launch) qemu() error {
	c := l.cfg
	l.Path = c.binary
	if l.Path == "" {
		l.Path = QEMUBinary
	}
	switch c.accel {
	case AccelKVM:
		if err := kvmUsable(c.kvmDevice, c.cpuinfo); err != nil {
			return &vm.OptionError{Option: vm.OptionAccel, Value: string(AccelKVM), Err: fmt.Errorf("%s is not usable: %w", c.kvmDevice, err)}
		}
		l.Accel = AccelKVM
	case AccelTCG:
		l.Accel = AccelTCG
	case AccelAuto, "":
		if err := kvmUsable(c.kvmDevice, c.cpuinfo); err != nil {
			l.Accel = AccelTCG
			l.Notice = fmt.Sprintf("KVM is not usable (%v): running under TCG emulation, which is much slower", err)
		} else {
			l.Accel = AccelKVM
		}
	default:
		return fmt.Errorf("unknown accelerator %q (want kvm, tcg or auto)", c.accel)
	}

	drive := "if=none,id=hd0,format=raw,file=" + qemuValue(l.disk)
	if !c.persist {
		drive += ",snapshot=on"
	}
	netdev := "user,id=n0"
	for _, p := range c.ports {
		netdev += "," + p.hostfwd()
	}

	var a []string
	if l.Layout == vmdisk.LayoutBIOS {
		a = append(a, "-machine", "q35")
	} else {
		// PVH direct boot works on microvm, not on q35/pc with SeaBIOS
		// (spec §10); its devices sit on virtio-mmio.
		a = append(a, "-machine", "microvm,rtc=on,ioapic2=off",
			"-kernel", l.Kernel,
			"-global", "virtio-mmio.force-legacy=false")
	}
	a = append(a, "-accel", string(l.Accel))
	if l.Accel == AccelKVM {
		a = append(a, "-cpu", "host")
	} else {
		a = append(a, "-cpu", "max")
	}
	a = append(a,
		"-m", strconv.Itoa(c.memoryMiB)+"M",
		"-smp", strconv.Itoa(c.cpus),
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-serial", "stdio",
		"-no-reboot",
		"-device", "isa-debug-exit",
		"-drive", drive,
		"-netdev", netdev,
	)
	if l.Layout == vmdisk.LayoutBIOS {
		a = append(a,
			"-device", "virtio-blk-pci,drive=hd0",
			"-device", "virtio-net-pci,netdev=n0")
	} else {
		a = append(a,
			"-device", "virtio-blk-device,drive=hd0",
			"-device", "virtio-net-device,netdev=n0")
	}
	l.Args = a
	return nil
}

// Exit codes: QEMU's isa-debug-exit device makes QEMU exit with
// (code << 1) | 1 for a guest writing code to its port (Nanos writes the
// program's exit status there when the root tuple has debug_exit; spec
// §10). A clean power-off (no debug_exit) exits 0. Only the low 8 bits of
// QEMU's status reach us, so guest codes above 127 arrive modulo 128; the
// kernel's own codes (signal numbers, 0x7e fault, 0x7f halt) all fit.

// guestExitCode maps QEMU's exit status to the guest's exit code; ok is
// false for a status that QEMU itself chose (an even status other than 0).
func guestExitCode(status int) (code int, ok bool) {
	switch {
	case status == 0:
		return 0, true
	case status&1 == 1:
		return status >> 1, true
	}
	return 0, false
}

// Run boots disk and waits for the guest to stop; it returns the guest's
// exit code (see WithDebugExit). The console is the process's stdio unless
// WithConsole says otherwise. Cancelling ctx stops the VM (SIGTERM, then
// SIGKILL after a few seconds) and returns ctx's error.
func Run(ctx context.Context, disk string, opts ...RunOption) (int, error) {
	l, err := NewLaunch(disk, opts...)
	if err != nil {
		return 0, err
	}
	return l.Run(ctx)
}

// Run starts the prepared VM and waits for it; see the package-level Run.
func (l *Launch) Run(ctx context.Context) (int, error) {
	defer func() {
		for _, f := range l.cleanup {
			f()
		}
	}()
	c := l.cfg
	if l.Notice != "" && c.notice != nil {
		c.notice(l.Notice)
	}
	bin, err := exec.LookPath(l.Path)
	if err != nil {
		return 0, l.notInstalled(err)
	}
	args := l.Args
	if l.VMM == Firecracker {
		if args, err = l.prepareFirecracker(); err != nil {
			return 0, err
		}
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = c.stdin
	cmd.Stdout = c.stdout
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	stderr := c.stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	errs := &errorLines{w: stderr, prefix: filepath.Base(bin) + ": "}
	cmd.Stderr = errs
	// Let the monitor shut down on SIGTERM (QEMU flushes its disk); kill
	// it if it lingers.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	status := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return 0, fmt.Errorf("running %s: %w", l.VMM, err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 0, fmt.Errorf("%s was killed by %v", l.VMM, ws.Signal())
		}
		status = ee.ExitCode()
	}
	if l.VMM == Firecracker {
		// Firecracker stops on the guest's keyboard-controller reset and
		// knows nothing of the program's exit code.
		if status != 0 {
			return 0, fmt.Errorf("firecracker exited with status %d%s", status, errs.summary())
		}
		return 0, nil
	}
	code, ok := guestExitCode(status)
	// QEMU's own failures (bad option, missing file) exit 1 like a guest
	// exiting 0; they are told apart by the error QEMU printed.
	if !ok || (status == 1 && errs.seen()) {
		return 0, fmt.Errorf("qemu exited with status %d%s", status, errs.summary())
	}
	return code, nil
}

func (l *Launch) notInstalled(err error) error {
	switch l.VMM {
	case Firecracker:
		return notForFirecracker(fmt.Errorf("firecracker is not installed (%w): install a release from github.com/firecracker-microvm/firecracker and put `firecracker` in PATH", err))
	default:
		return fmt.Errorf("QEMU is not installed (%w): install it (Debian/Ubuntu: apt-get install qemu-system-x86)", err)
	}
}

// errorLines passes a monitor's stderr through and remembers the error
// lines it printed (QEMU prefixes them with its name; warnings say so).
type errorLines struct {
	w      io.Writer
	prefix string
	mu     sync.Mutex
	buf    []byte
	errs   []string
}

func (e *errorLines) Write(p []byte) (int, error) {
	e.mu.Lock()
	e.buf = append(e.buf, p...)
	for {
		i := bytes.IndexByte(e.buf, '\n')
		if i < 0 {
			break
		}
		e.note(string(e.buf[:i]))
		e.buf = e.buf[i+1:]
	}
	e.mu.Unlock()
	return e.w.Write(p)
}

func (e *errorLines) note(line string) {
	if !strings.HasPrefix(line, e.prefix) {
		return
	}
	msg := strings.TrimPrefix(line, e.prefix)
	if strings.Contains(msg, "warning:") || strings.HasPrefix(msg, "terminating on signal") {
		return
	}
	if len(e.errs) < 5 {
		e.errs = append(e.errs, msg)
	}
}

func (e *errorLines) seen() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.buf) > 0 {
		e.note(string(e.buf))
		e.buf = nil
	}
	return len(e.errs) > 0
}

func (e *errorLines) summary() string {
	if !e.seen() {
		return ""
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return ": " + strings.Join(e.errs, "; ")
}
