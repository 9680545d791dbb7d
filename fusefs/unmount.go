package fusefs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	f, err := os.Open(h.mountinfo)
	if err != nil {
		return "", fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	mounts, err := parseMountinfo(f)
	if err != nil {
		return "", fmt.Errorf("reading the mount table %s: %w", h.mountinfo, err)
	}
	fstype := ""
	for _, m := range mounts {
		if m.mountPoint == dir {
			fstype = m.fsType // later lines are mounted on top of earlier ones
		}
	}
	return fstype, nil
}

// mountEntry is one line of /proc/self/mountinfo, the fields fusefs needs.
type mountEntry struct {
	mountPoint string
	fsType     string
	source     string
}

// parseMountinfo reads the format of proc(5) /proc/PID/mountinfo:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// field 5 is the mount point, then optional fields up to "-", then the
// filesystem type and the source. Spaces and the like are octal-escaped.
func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 7 || sep < 0 || sep+2 >= len(fields) {
			return nil, fmt.Errorf("line %d: malformed: %q", line, sc.Text())
		}
		out = append(out, mountEntry{
			mountPoint: unescapeMountinfo(fields[4]),
			fsType:     unescapeMountinfo(fields[sep+1]),
			source:     unescapeMountinfo(fields[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// unescapeMountinfo undoes the kernel's \ooo escapes (space, tab, newline,
// backslash).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
