package tfs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/nanofs/nanofs/tfs/fspath"
)

// Limits the Nanos kernel enforces on lookups (spec §1).
const (
	maxNameLen    = 255
	maxPathLen    = 4095 // PATH_MAX including the NUL
	maxTargetLen  = maxPathLen
	rootPathMatch = "."
)

// ErrReservedPath is returned for entries at paths the Nanos kernel creates
// itself at boot, or for non-directories on their parent paths (spec §8): a
// root filesystem carrying one makes the kernel halt. Use AllowReservedPaths
// for volumes that are not root filesystems.
var ErrReservedPath = errors.New("path reserved by the Nanos kernel")

var errTooManyLinks = errors.New("too many levels of symbolic links")

// reservedPaths are created by the kernel at every boot (spec §8).
var reservedPaths = map[string]bool{
	"dev/urandom":                   true,
	"dev/null":                      true,
	"proc/meminfo":                  true,
	"proc/mounts":                   true,
	"proc/self/maps":                true,
	"sys/devices/system/cpu/online": true,
	"sys/devices/system/cpu/cpu0":   true,
}

// reservedParents must be directories if present.
var reservedParents = map[string]bool{
	"dev":                    true,
	"proc":                   true,
	"proc/self":              true,
	"sys":                    true,
	"sys/devices":            true,
	"sys/devices/system":     true,
	"sys/devices/system/cpu": true,
}

// checkReserved reports whether an entry of kind dir (or not) may live at p.
func checkReserved(p string, dir bool) error {
	if reservedPaths[p] {
		return fmt.Errorf("%w (the kernel creates /%s at boot)", ErrReservedPath, p)
	}
	if reservedParents[p] && !dir {
		return fmt.Errorf("%w (/%s must be a directory: the kernel creates entries under it at boot)", ErrReservedPath, p)
	}
	return nil
}

// cleanPath turns a writer path ("etc/passwd", "/etc/passwd", "etc/") into
// the io/fs form, "." for the root, and enforces the kernel's limits.
func cleanPath(name string) (string, error) {
	p := strings.Trim(name, "/")
	if p == "" || p == "." {
		return rootPathMatch, nil
	}
	if len(p)+1 > maxPathLen {
		return "", fmt.Errorf("path %q is longer than %d bytes", name, maxPathLen)
	}
	// Names are bytes to Nanos: unlike io/fs, UTF-8 is not required.
	for elem := range strings.SplitSeq(p, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return "", fmt.Errorf("invalid path %q: empty, \".\" or \"..\" element", name)
		}
		if len(elem) > maxNameLen {
			return "", fmt.Errorf("path %q: name %.20q... is longer than %d bytes", name, elem, maxNameLen)
		}
		if strings.IndexByte(elem, 0) >= 0 {
			return "", fmt.Errorf("path %q contains a NUL byte", name)
		}
	}
	return p, nil
}

// pathOps lets one symlink-following walk serve both the writer's node tree
// and the reader's tuples.
type pathOps[N any] struct {
	root   N
	isDir  func(N) bool
	child  func(dir N, name string) (N, bool)
	target func(N) (string, bool) // symlink target, if N is a symlink
}

// resolve looks p up from the root the way the kernel does (fspath):
// absolute and relative paths both start at the root, symlinks are
// followed in every element (and in the last one when follow is set), ".."
// pops to the parent, at most fspath.MaxSymlinks links are followed.
func resolve[N any](ops pathOps[N], p string, follow bool) (N, error) {
	w := fspath.Walker[N]{
		Root:  ops.root,
		IsDir: ops.isDir,
		Child: func(dir N, name string) (N, error) {
			n, ok := ops.child(dir, name)
			if !ok {
				return n, fs.ErrNotExist
			}
			return n, nil
		},
		Link: func(n N) (string, bool, error) {
			t, ok := ops.target(n)
			return t, ok, nil
		},
		NotDir: fmt.Errorf("%w: not a directory", fs.ErrNotExist),
		Loop:   errTooManyLinks,
	}
	return w.Resolve(p, follow)
}
