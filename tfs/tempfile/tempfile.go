// Package tempfile creates the temporary files outputs are written through
// (then renamed into place) with the writing process's PID in their names,
// so that a later run can tell the leftovers of a process that died (kill
// -9, a crash, a power cut) from those of one still writing, and remove
// them.
package tempfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// marker separates a temporary file's prefix from its PID.
const marker = ".tmp-"

// Create makes a new temporary file in dir named prefix + ".tmp-" + PID +
// "-" + random, open for writing.
func Create(dir, prefix string) (*os.File, error) {
	return os.CreateTemp(dir, prefix+marker+strconv.Itoa(os.Getpid())+"-*")
}

// PID returns the PID in a name made by Create with prefix, and whether
// the name is one.
func PID(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix+marker)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != digits {
		return 0, false
	}
	return pid, true
}

// Alive reports whether a process with this PID exists (one of another
// user's counts: its files are not ours to judge).
func Alive(pid int) bool {
	if pid <= 0 {
		// kill(0) and kill(-n) signal process groups, kill(-1) every
		// process: never a question about one PID.
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// RemoveStale removes the files in dir that Create made with prefix for
// processes that no longer exist, and returns their paths and bytes.
func RemoveStale(dir, prefix string) (removed []string, bytes int64, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, nil
		}
		return nil, 0, err
	}
	var errs []error
	for _, e := range entries {
		pid, ok := PID(e.Name(), prefix)
		if !ok || !e.Type().IsRegular() || pid == os.Getpid() || Alive(pid) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil {
			continue // gone already
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
			continue
		}
		removed = append(removed, p)
		bytes += info.Size()
	}
	return removed, bytes, errors.Join(errs...)
}
