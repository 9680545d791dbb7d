package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/artifact"
	"github.com/nanofs/nanofs/vm/kernel"
	"github.com/nanofs/nanofs/vm/launch"
	"github.com/nanofs/nanofs/vm/opsconfig"
)

// Machine is how Run boots. A zero field takes the ops config's RunConfig
// (and Kernel), then the default.
type Machine struct {
	Memory  string       // guest memory such as 512M (default 2G)
	CPUs    int          // virtual CPUs (default 1)
	Ports   []string     // host ports forwarded, [HOSTIP:]HOST:GUEST[/tcp|/udp]
	Kernel  string       // img for disks without bootloader and for Firecracker
	VMM     launch.VMM   // default QEMU
	Accel   launch.Accel // default auto
	Persist bool         // keep the guest's writes to the disk

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Notice         func(string) // one-line notices (TCG emulation, ...)
}

// DefaultMemory is the guest memory when nothing says otherwise.
const DefaultMemory = "2G"

// applyConfig takes the config's RunConfig where the machine says nothing.
func (m *Machine) applyConfig(c *opsconfig.Config) {
	if c != nil {
		if m.Memory == "" {
			m.Memory = c.Memory
		}
		if m.CPUs == 0 {
			m.CPUs = c.CPUs
		}
		if len(m.Ports) == 0 {
			m.Ports = c.Ports
		}
		if m.Kernel == "" {
			m.Kernel = c.Kernel
		}
	}
	if m.Memory == "" {
		m.Memory = DefaultMemory
	}
	if m.CPUs == 0 {
		m.CPUs = 1
	}
}

func (m *Machine) runOptions() ([]launch.RunOption, error) {
	mem, err := launch.ParseMemory(m.Memory)
	if err != nil {
		return nil, err
	}
	vmm, accel := m.VMM, m.Accel
	if vmm == "" {
		vmm = launch.QEMU
	}
	if accel == "" {
		accel = launch.AccelAuto
	}
	opts := []launch.RunOption{
		launch.WithVMM(vmm),
		launch.WithAccel(accel),
		launch.WithMemory(mem),
		launch.WithCPUs(m.CPUs),
		launch.WithConsole(m.Stdin, m.Stdout, m.Stderr),
	}
	if m.Notice != nil {
		opts = append(opts, launch.WithNotice(m.Notice))
	}
	for _, p := range m.Ports {
		pf, err := launch.ParsePortForward(p)
		if err != nil {
			return nil, err
		}
		opts = append(opts, launch.WithPorts(pf))
	}
	if m.Kernel != "" {
		opts = append(opts, launch.WithKernelSearch(kernel.WithKernelFiles(m.Kernel, "")))
	}
	if m.Persist {
		opts = append(opts, launch.WithPersist())
	}
	return opts, nil
}

// Run boots target and returns the guest's exit code. A Nanos disk image
// boots as it is, or, given args, as a temporary copy whose program runs
// with args instead (DiskWithArguments; the disk itself is untouched);
// anything Build takes is built first, with args as the program's
// arguments, into a temporary disk removed when the VM stops. A registry
// reference to a nanofs artifact (package artifact) boots the disk it
// holds, fetched into a temporary file; WithReuse lets an image's build be
// replaced by a matching artifact among its referrers.
func Run(ctx context.Context, target string, args []string, m Machine, opts ...Option) (int, error) {
	o := newOptions(opts)
	if err := o.loadConfig(); err != nil {
		return 0, err
	}
	m.applyConfig(o.config)
	ropts, err := m.runOptions()
	if err != nil {
		return 0, err
	}
	disk, cleanup, err := o.runTarget(ctx, target, args, m)
	if err != nil {
		return 0, err
	}
	if cleanup != nil {
		defer cleanup()
	}
	l, err := launch.NewLaunch(disk, ropts...)
	if err != nil {
		return 0, err
	}
	o.debugf("%s", l.String())
	return l.Run(ctx)
}

// runTarget is the disk to boot: target itself, or one built from it.
func (o *options) runTarget(ctx context.Context, target string, args []string, m Machine) (string, func(), error) {
	src, err := lazy.Classify(target)
	var nse *lazy.NoSourceError
	switch {
	case errors.As(err, &nse):
		return "", nil, fmt.Errorf("%s: no such disk image, and not an image reference (%w)", target, nse.Err)
	case err != nil:
		return "", nil, err
	case src.Kind == lazy.KindDisk:
		if len(args) > 0 {
			return DiskWithArguments(target, args)
		}
		return target, nil, nil
	case src.Kind == lazy.KindDirectory && o.entry == "":
		return "", nil, fmt.Errorf("%s is a directory, neither a disk image nor an OCI image layout (a root filesystem: %w)", target, ErrNoConfig)
	}
	dir, err := os.MkdirTemp("", "nanofs-run-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	disk := filepath.Join(dir, "disk.img")
	if src.Kind == lazy.KindRegistry {
		// A built unikernel pushed as an artifact boots as the disk it holds.
		if _, err := artifact.Get(ctx, target, o.registryOpts...); err == nil {
			if _, err := artifact.Pull(ctx, target, disk, o.registryOpts...); err != nil {
				cleanup()
				return "", nil, err
			}
			if len(args) == 0 {
				return disk, cleanup, nil
			}
			with, wcleanup, err := DiskWithArguments(disk, args)
			if err != nil {
				cleanup()
				return "", nil, err
			}
			return with, func() { wcleanup(); cleanup() }, nil
		}
	}
	o.output, o.args, o.argsSet = disk, args, len(args) > 0
	if m.Kernel != "" {
		o.kernel = m.Kernel
	}
	o.configApplied = true
	if _, err := Build(ctx, target, o.asOption()); err != nil {
		cleanup()
		return "", nil, err
	}
	return disk, cleanup, nil
}

// asOption hands options already made (and the config already read) to
// Build.
func (o *options) asOption() Option {
	return func(dst *options) { *dst = *o }
}

// DiskWithArguments copies disk to a temporary file whose log has one more
// record: the root's arguments, the program's name followed by args (as
// `docker run IMAGE ARGS` replaces the command). The disk itself is never
// changed. cleanup removes the copy.
func DiskWithArguments(disk string, args []string) (copy string, cleanup func(), err error) {
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
	cleanup = func() { os.RemoveAll(dir) }
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
