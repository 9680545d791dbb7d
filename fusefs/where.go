package fusefs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrNotInMount: a directory is not inside a nanofs mount.
var ErrNotInMount = errors.New("not inside a nanofs mount")

// Enclosing returns the mount point of the nanofs mount that holds dir
// (dir itself or a parent of it) and the source it was mounted from, as
// the mount table says. Another file system mounted on top in between
// hides the nanofs mount.
func Enclosing(dir string) (mountPoint, source string, err error) {
	return thisHost.enclosing(dir)
}

func (h host) enclosing(dir string) (string, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	mounts, err := h.mounts()
	if err != nil {
		return "", "", err
	}
	best, bestType, bestSrc := "", "", ""
	for _, m := range mounts {
		if m.mountPoint != abs && m.mountPoint != "/" && !strings.HasPrefix(abs, m.mountPoint+"/") {
			continue
		}
		// The deepest mount point wins; at the same point, the later line
		// is mounted on top.
		if len(m.mountPoint) >= len(best) {
			best, bestType, bestSrc = m.mountPoint, m.fsType, m.source
		}
	}
	if bestType != FSType {
		return "", "", fmt.Errorf("%s: %w", abs, ErrNotInMount)
	}
	return best, bestSrc, nil
}
