package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/nanofs/nanofs/vm"
	"github.com/spf13/cobra"
)

func init() { verbs = append(verbs, newRunCmd) }

// runTarget turns run's first argument, and the arguments after "--", into
// a disk image to boot. It returns errNotRunTarget when target is not its
// kind, so that the next one is tried; cleanup (may be nil) runs after the
// VM stops.
type runTarget func(ctx context.Context, g *globals, target string, args []string) (disk string, cleanup func(), err error)

// errNotRunTarget passes a target on to the next runTarget.
var errNotRunTarget = errors.New("not this kind of run target")

// runTargets are tried in order. A disk image file comes first; a verb
// file that builds disks from image references (`run IMAGE`) appends its
// own runTarget here in its init.
var runTargets = []runTarget{runDiskTarget}

// runDiskTarget accepts an existing file: a disk image.
func runDiskTarget(_ context.Context, _ *globals, target string, args []string) (string, func(), error) {
	st, err := os.Stat(target)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, errNotRunTarget
	}
	if err != nil {
		return "", nil, err
	}
	if st.IsDir() {
		return "", nil, fmt.Errorf("%s is a directory, not a disk image", target)
	}
	if len(args) > 0 {
		return "", nil, fmt.Errorf("%s is a built disk: its program arguments were fixed when it was built (rebuild it with -a ARG)", target)
	}
	return target, nil, nil
}

type runOptions struct {
	ports   []string
	memory  string
	cpus    int
	accel   string
	vmm     string
	kernel  string
	persist bool
}

func newRunCmd(g *globals) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run DISK [-p HOST:GUEST]...",
		Short: "Boot a Nanos disk image under QEMU (or Firecracker)",
		Long: `Boot DISK, a Nanos disk image, with QEMU: KVM when /dev/kvm is usable, otherwise
TCG emulation (much slower; a one-line notice says so). The disk is attached
as virtio-blk, networking is QEMU user networking on virtio-net (the guest
gets 10.0.2.15 by DHCP; -p forwards host ports to it), and the guest console
is this process's stdin/stdout. nanofs exits with the program's exit code
(codes above 127 arrive modulo 128; 126 and 127 are also what the kernel
reports for its own faults and halts).

The guest's writes to the disk (Nanos updates its root filesystem at every
boot) are discarded unless --persist. A disk built without bootloader is
booted directly with the kernel (--kernel, NANOFS_KERNEL, or the cache) on
QEMU's microvm machine. --vmm firecracker boots with Firecracker instead
(needs KVM; no port forwarding; the exit code is not reported).`,
		Example: `  nanofs run app.img
  nanofs run web.img -p 8080:80
  nanofs run app.img --memory 512M --cpus 2 --accel tcg`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), cmd, g, args, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.ports, "publish", "p", nil, "forward a host port to the guest, [HOSTIP:]HOST:GUEST[/tcp|/udp] (repeatable)")
	f.StringVar(&o.memory, "memory", "2G", "guest memory, e.g. 512M or 2G")
	f.IntVar(&o.cpus, "cpus", 1, "number of virtual CPUs")
	f.StringVar(&o.accel, "accel", "auto", "QEMU accelerator: kvm, tcg, or auto (KVM when usable)")
	f.StringVar(&o.vmm, "vmm", "qemu", "virtual machine monitor: qemu or firecracker")
	f.StringVar(&o.kernel, "kernel", "", "kernel.img for disks without bootloader and for Firecracker")
	f.BoolVar(&o.persist, "persist", false, "keep the guest's writes to the disk")
	return cmd
}

func runRun(ctx context.Context, cmd *cobra.Command, g *globals, args []string, o runOptions) error {
	target, rest := args[0], args[1:]
	if dash := cmd.ArgsLenAtDash(); dash < 0 && len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q (program arguments go after --)", rest)
	}
	mem, err := vm.ParseMemory(o.memory)
	if err != nil {
		return err
	}
	opts := []vm.RunOption{
		vm.WithVMM(vm.VMM(o.vmm)),
		vm.WithAccel(vm.Accel(o.accel)),
		vm.WithMemory(mem),
		vm.WithCPUs(o.cpus),
		vm.WithConsole(cmd.InOrStdin(), g.stdout, g.stderr),
		vm.WithNotice(func(s string) { g.logf("nanofs: %s", s) }),
	}
	for _, p := range o.ports {
		pf, err := vm.ParsePortForward(p)
		if err != nil {
			return err
		}
		opts = append(opts, vm.WithPorts(pf))
	}
	if o.kernel != "" {
		opts = append(opts, vm.WithKernelSearch(vm.WithKernelFiles(o.kernel, "")))
	}
	if o.persist {
		opts = append(opts, vm.WithPersist())
	}

	disk, cleanup, err := resolveRunTarget(ctx, g, target, rest)
	if err != nil {
		return err
	}
	if cleanup != nil {
		defer cleanup()
	}
	l, err := vm.NewLaunch(disk, opts...)
	if err != nil {
		return err
	}
	g.debugf("%s", l.String())
	code, err := l.Run(ctx)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}

func resolveRunTarget(ctx context.Context, g *globals, target string, args []string) (string, func(), error) {
	for _, t := range runTargets {
		disk, cleanup, err := t(ctx, g, target, args)
		if errors.Is(err, errNotRunTarget) {
			continue
		}
		return disk, cleanup, err
	}
	return "", nil, fmt.Errorf("%s: no such disk image", target)
}
