package fusefs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/sys/mountinfo"
)

// Unmount detaches the fusefs mount on dir. It works whether or not the
// server is alive: after the server was killed the mount is left behind
// answering "transport endpoint is not connected", and this is how to clear
// it. The unmount is lazy (MNT_DETACH, fusermount3 -u -z): programs still
// inside the mount keep what they hold, new ones see the empty directory.
// Unmount refuses a directory that holds no fusefs mount, so it cannot take
// down some other filesystem by mistake.
func Unmount(dir string) error { return thisHost.unmount(dir) }

func (h host) unmount(dir string) error {
	abs, err := mountPath(dir)
	if err != nil {
		return err
	}
	fstype, err := h.mountedType(abs)
	if err != nil {
		return err
	}
	switch fstype {
	case FSType:
	case "":
		return fmt.Errorf("%s: %w", abs, ErrNotMounted)
	default:
		return fmt.Errorf("%s holds a %s mount, not a nanofs one: not unmounting it", abs, fstype)
	}
	var direct error
	if h.euid == 0 {
		if direct = syscall.Unmount(abs, syscall.MNT_DETACH); direct == nil {
			return nil
		}
	}
	bin, err := h.fusermount()
	if err != nil {
		if direct != nil {
			return fmt.Errorf("unmount %s: %w", abs, direct)
		}
		return err
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-u", "-z", abs)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s -u -z %s: %w: %s", bin, abs, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// mountPath makes dir absolute the way the mount table spells it, without
// touching dir itself: on a dead mount even stat(2) fails.
func mountPath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", dir, err)
	}
	if parent, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(parent, filepath.Base(abs))
	}
	return abs, nil
}

// mountedType is the filesystem type of the topmost mount on dir, or "" if
// nothing is mounted there.
func (h host) mountedType(dir string) (string, error) {
	mounts, err := h.mounts()
	if err != nil {
		return "", err
	}
	fstype := ""
	for _, m := range mounts {
		if m.mountPoint == dir {
			fstype = m.fsType // later lines are mounted on top of earlier ones
		}
	}
	return fstype, nil
}

// mounts reads the mount table.
func (h host) mounts() ([]mountEntry, error) {
	f, err := os.Open(h.mountinfo)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	mounts, err := parseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table %s: %w", h.mountinfo, err)
	}
	return mounts, nil
}

// mountEntry is one line of /proc/self/mountinfo, the fields fusefs needs.
type mountEntry struct {
	mountPoint string
	fsType     string
	source     string
}

// parseMountinfo reads the format of proc(5) /proc/PID/mountinfo (octal
// escapes undone) with moby's parser, keeping the fields fusefs needs.
func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	infos, err := mountinfo.GetMountsFromReader(r, nil)
	if err != nil {
		return nil, err
	}
	out := make([]mountEntry, len(infos))
	for i, m := range infos {
		out[i] = mountEntry{mountPoint: m.Mountpoint, fsType: m.FSType, source: m.Source}
	}
	return out, nil
}
