package tfs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Limits the Nanos kernel enforces on lookups (spec §1).
const (
	maxNameLen    = 255
	maxPathLen    = 4095 // PATH_MAX including the NUL
	maxLinkHops   = 40
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

// resolve looks p up from the root the way the kernel does: absolute and
// relative paths both start at the root, symlinks are followed in every
// element (and in the last one when follow is set), ".." pops to the
// parent, at most maxLinkHops links are followed.
func resolve[N any](ops pathOps[N], p string, follow bool) (N, error) {
	var zero N
	stack := []N{ops.root}
	comps := strings.Split(p, "/")
	hops := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := stack[len(stack)-1]
		if !ops.isDir(cur) {
			return zero, fmt.Errorf("%w: not a directory", fs.ErrNotExist)
		}
		n, ok := ops.child(cur, c)
		if !ok {
			return zero, fs.ErrNotExist
		}
		if t, isLink := ops.target(n); isLink && (follow || hasMore(comps)) {
			hops++
			if hops > maxLinkHops {
				return zero, errTooManyLinks
			}
			if strings.HasPrefix(t, "/") {
				stack = stack[:1]
			}
			comps = append(strings.Split(t, "/"), comps...)
			continue
		}
		stack = append(stack, n)
	}
	return stack[len(stack)-1], nil
}

// hasMore reports whether comps still names something (a trailing "" or "."
// does not).
func hasMore(comps []string) bool {
	for _, c := range comps {
		if c != "" && c != "." {
			return true
		}
	}
	return false
}
