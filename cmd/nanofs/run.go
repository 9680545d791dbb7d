package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm"
	"github.com/spf13/cobra"
)

func init() { verbs = append(verbs, newRunCmd) }

// errNotRunTarget says that run's target is not a disk image file.
var errNotRunTarget = errors.New("not a disk image file")

// runDiskTarget accepts an existing file that is not a docker-save
// tarball: a disk image. Anything else is an image to build first.
func runDiskTarget(_ context.Context, _ *globals, target string, args []string) (string, func(), error) {
	st, err := os.Stat(target)
	if errors.Is(err, os.ErrNotExist) || err == nil && (st.IsDir() || isTarball(target)) {
		return "", nil, errNotRunTarget
	}
	if err != nil {
		return "", nil, err
	}
	if len(args) > 0 {
		return diskWithArguments(target, args)
	}
	return target, nil, nil
}

// diskWithArguments copies disk to a temporary file whose log has one more
// record: the root's arguments, the program's name followed by args (as
// `docker run IMAGE ARGS` replaces the command). The disk itself is never
// changed.
func diskWithArguments(disk string, args []string) (string, func(), error) {
	src, err := os.Open(disk)
	if err != nil {
		return "", nil, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return "", nil, err
	}
	fsys, err := tfs.Open(src, st.Size())
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", disk, err)
	}
	m := fsys.Manifest()
	var argv0 string
	if v, ok := m["arguments"].(tfs.Vector); ok && len(v) > 0 {
		if s, ok := v[0].(tfs.String); ok {
			argv0 = string(s)
		}
	}
	if argv0 == "" {
		p, ok := m["program"].(tfs.String)
		if !ok {
			return "", nil, fmt.Errorf("%s: the disk names no program", disk)
		}
		argv0 = string(p)
	}
	dir, err := os.MkdirTemp("", "nanofs-run-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	out := filepath.Join(dir, filepath.Base(disk))
	dst, err := os.Create(out)
	if err == nil {
		_, err = io.Copy(dst, src)
	}
	if err == nil {
		err = tfs.UpdateRoot(dst, st.Size(), tfs.Tuple{"arguments": tfs.Strings(append([]string{argv0}, args...)...)})
	}
	if dst != nil {
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("%s with new arguments: %w", disk, err)
	}
	return out, cleanup, nil
}

type runOptions struct {
	build   buildOptions // run IMAGE: what goes into the disk
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
		Use:   "run DISK|IMAGE [-p HOST:GUEST]... [-- ARGS]",
		Short: "Boot a Nanos disk image, or build one from an image and boot it, under QEMU (or Firecracker)",
		Long: `Boot DISK, a Nanos disk image, with QEMU. Given an IMAGE instead (anything
"nanofs build" takes: registry reference, OCI layout, docker-save tarball), run
first builds a disk from it into a temporary file, with the same flags as
build and ARGS after -- as the program's arguments. An argument that names a
local file or directory by a relative path (hi.js, src/main.py) is copied
into the image at that path under the program's working directory, where the
program will look for it (--no-auto-add turns this off); --add copies
anything else. --config reads an ops config.json, RunConfig included.

The VM runs with QEMU: KVM when /dev/kvm is usable, otherwise
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
		Example: `  nanofs run node:16.3.0 --entry node -- hi.js          # hi.js from this directory
  nanofs run node:16.3.0 --entry node -- -e 'console.log("hi")'
  nanofs run node:16.3.0 --entry node --add lib:/srv/lib --workdir /srv -- main.js
  nanofs run node:16.3.0 --config config.json             # an ops config
  nanofs run app.img
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
	o.build.registerContent(f)
	o.build.registerBoot(f)
	return cmd
}

func runRun(ctx context.Context, cmd *cobra.Command, g *globals, args []string, o runOptions) error {
	target, rest := args[0], args[1:]
	if dash := cmd.ArgsLenAtDash(); dash < 0 && len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q (program arguments go after --)", rest)
	}
	if err := o.build.loadConfig(g); err != nil {
		return err
	}
	o.applyConfig(cmd.Flags().Changed)
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

	disk, cleanup, err := runDiskTarget(ctx, g, target, rest)
	if errors.Is(err, errNotRunTarget) {
		disk, cleanup, err = buildForRun(ctx, g, target, rest, &o)
	}
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

// applyConfig takes the --config file's RunConfig (and Kernel) where no
// flag says otherwise; changed reports the flags given.
func (o *runOptions) applyConfig(changed func(flag string) bool) {
	c := o.build.opsCfg
	if c == nil {
		return
	}
	if c.Memory != "" && !changed("memory") {
		o.memory = c.Memory
	}
	if c.CPUs > 0 && !changed("cpus") {
		o.cpus = c.CPUs
	}
	if len(o.ports) == 0 {
		o.ports = c.Ports
	}
	if o.kernel == "" {
		o.kernel = o.build.kernel
	}
}

// buildForRun builds IMAGE into a temporary disk that is removed after the
// VM stops: bootable with a bootloader when one is found, else for direct
// kernel boot.
func buildForRun(ctx context.Context, g *globals, image string, args []string, o *runOptions) (string, func(), error) {
	st, err := os.Stat(image)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, perr := name.ParseReference(image); perr != nil {
			return "", nil, fmt.Errorf("%s: no such disk image, and not an image reference (%v)", image, perr)
		}
	case err == nil && st.IsDir() && !isOCILayout(image):
		return "", nil, fmt.Errorf("%s is a directory, neither a disk image nor an OCI image layout", image)
	}
	dir, err := os.MkdirTemp("", "nanofs-run-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	b := o.build
	b.args, b.kernel, b.out = args, o.kernel, filepath.Join(dir, "disk.img")
	if err := runBuild(ctx, g, image, &b); err != nil {
		cleanup()
		return "", nil, err
	}
	return b.out, cleanup, nil
}
