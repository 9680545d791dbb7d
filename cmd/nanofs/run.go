package main

import (
	"context"
	"fmt"

	"github.com/nanofs/nanofs/vm/build"
	"github.com/nanofs/nanofs/vm/launch"
	"github.com/spf13/cobra"
)

func init() { verbs = append(verbs, newRunCmd) }

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
		Use:   "run DISK|IMAGE|REF [-p HOST:GUEST]... [-- ARGS]",
		Short: "Boot a Nanos disk image, or build one from an image and boot it, under QEMU (or Firecracker)",
		Long: `Boot DISK, a Nanos disk image, with QEMU. Given an IMAGE instead (anything
"nanofs build" takes: registry reference, OCI layout, docker-save tarball), run
first builds a disk from it into a temporary file, with the same flags as
build and ARGS after -- as the program's arguments. An argument that names a
local file or directory by a relative path (hi.js, src/main.py) is copied
into the image at that path under the program's working directory, where the
program will look for it (--no-auto-add turns this off); --add copies
anything else. --config reads an ops config.json, RunConfig included.
Given DISK, ARGS after -- replace its program's arguments in a temporary
copy of the disk (the disk itself is not changed). Given REF, a unikernel
pushed with "nanofs build --push", its disk is fetched into a temporary file
and booted the same way; --reuse boots an artifact among IMAGE's referrers
built from the same inputs instead of building.

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
  nanofs run node-16.3.0.img -- -e 'console.log(1)'      # the disk's program with other arguments
  nanofs run web.img -p 8080:80
  nanofs run app.img --memory 512M --cpus 2 --accel tcg
  nanofs run registry.example.com/app:1.2-nanofs          # a unikernel pushed with build --push`,
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
	opts, err := o.build.buildOpts(g, newProgress(g))
	if err != nil {
		return err
	}
	changed := cmd.Flags().Changed
	m := build.Machine{
		Ports: o.ports, Kernel: o.kernel, VMM: launch.VMM(o.vmm), Accel: launch.Accel(o.accel), Persist: o.persist,
		Stdin: cmd.InOrStdin(), Stdout: g.stdout, Stderr: g.stderr,
		Notice: func(s string) { g.logf("nanofs: %s", s) },
	}
	if changed("memory") {
		m.Memory = o.memory
	}
	if changed("cpus") {
		m.CPUs = o.cpus
	}
	code, err := build.Run(ctx, target, rest, m, opts...)
	if err != nil {
		return flagError(err)
	}
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}
