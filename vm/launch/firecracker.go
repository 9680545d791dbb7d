package launch

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nanofs/nanofs/vm"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// firecracker builds the configuration for `firecracker --no-api
// --config-file`: the kernel booted directly, the disk on virtio-mmio. The
// kernel finds the root filesystem through the disk's partition table, so
// both disk layouts work.
func (l *Launch) firecracker() error {
	c := l.cfg
	l.Path = c.binary
	if l.Path == "" {
		l.Path = FirecrackerBinary
	}
	if _, err := exec.LookPath(l.Path); err != nil {
		return l.notInstalled(err)
	}
	if c.accel == AccelTCG {
		return notForFirecracker(errors.New("firecracker runs only on KVM; QEMU runs under TCG too"))
	}
	if err := kvmUsable(c.kvmDevice, c.cpuinfo); err != nil {
		return notForFirecracker(fmt.Errorf("firecracker needs KVM, but %s is not usable (%w)", c.kvmDevice, err))
	}
	if len(c.ports) > 0 {
		return notForFirecracker(errors.New("port forwarding needs QEMU's user networking; firecracker only attaches tap devices"))
	}
	cfg := map[string]any{
		"boot-source": map[string]any{"kernel_image_path": l.Kernel, "boot_args": ""},
		"drives": []map[string]any{{
			"drive_id": "disk0", "path_on_host": l.disk,
			"is_root_device": false, "is_read_only": false,
		}},
		"machine-config": map[string]any{"vcpu_count": c.cpus, "mem_size_mib": c.memoryMiB},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	l.fcJSON = b
	l.Args = []string{"--no-api", "--config-file", "<config.json>"}
	return nil
}

// prepareFirecracker writes the configuration (and, unless the guest may
// write to the disk, a throw-away copy of the disk) to a temporary
// directory and returns the final arguments.
func (l *Launch) prepareFirecracker() ([]string, error) {
	dir, err := os.MkdirTemp("", "nanofs-firecracker-*")
	if err != nil {
		return nil, err
	}
	l.cleanup = append(l.cleanup, func() { os.RemoveAll(dir) })
	cfgJSON := l.fcJSON
	if !l.cfg.persist {
		cp := filepath.Join(dir, "disk.img")
		if err := copyFile(cp, l.disk); err != nil {
			return nil, fmt.Errorf("copying the disk for firecracker: %w", err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
			return nil, err
		}
		cfg["drives"].([]any)[0].(map[string]any)["path_on_host"] = cp
		if cfgJSON, err = json.MarshalIndent(cfg, "", "  "); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, cfgJSON, 0o600); err != nil {
		return nil, err
	}
	return []string{"--no-api", "--config-file", path}, nil
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// notForFirecracker is what Firecracker cannot do here, as an error about
// the monitor chosen: QEMU can.
func notForFirecracker(err error) error {
	return &vm.OptionError{Option: vm.OptionVMM, Value: string(Firecracker), Err: err}
}
