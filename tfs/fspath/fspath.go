package fspath

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync"
	"syscall"
)

// MaxSymlinks bounds the symbolic links one lookup follows, as Linux's
// MAXSYMLINKS.
const MaxSymlinks = 40

// Walker looks paths up in a tree of nodes N.
type Walker[N any] struct {
	Root  N
	IsDir func(N) bool
	// Child is the entry name of the directory dir, or an error
	// (fs.ErrNotExist, or one that wraps it, when there is none).
	Child func(dir N, name string) (N, error)
	// Link reports n's target when n is a symbolic link.
	Link func(n N) (target string, isLink bool, err error)

	// Strict takes the path as the kernel does: a trailing "/" or "."
	// still names something, so the element before it must be a
	// directory (a link there is followed) and a non-directory anywhere
	// but at the end is NotDir. Without it, trailing "/" and "." are
	// ignored and a non-directory is only refused when a name is looked
	// up in it.
	Strict bool
	// NotDir, Loop and EmptyLink are the errors for a lookup through a
	// non-directory (default syscall.ENOTDIR), too many links (default
	// syscall.ELOOP) and a link whose target is empty (default: none, the
	// link names the directory it is in).
	NotDir, Loop, EmptyLink error

	// OnLink hears of each link followed, OnDir of each directory entered
	// by name (the root excluded).
	OnLink func(link N, target string)
	OnDir  func(dir N)
}

// Resolve looks p up from the root. A link in the last element is
// followed when follow is set (and, Strict, when a trailing "/" or "."
// follows it).
func (w *Walker[N]) Resolve(p string, follow bool) (N, error) {
	var zero N
	notDir, loop := w.NotDir, w.Loop
	if notDir == nil {
		notDir = syscall.ENOTDIR
	}
	if loop == nil {
		loop = syscall.ELOOP
	}
	stack := []N{w.Root} // the directories walked; the last is current
	comps := strings.Split(p, "/")
	hops := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		cur := stack[len(stack)-1]
		if w.Strict && !w.IsDir(cur) {
			return zero, notDir
		}
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if !w.IsDir(cur) {
			return zero, notDir
		}
		n, err := w.Child(cur, c)
		if err != nil {
			return zero, err
		}
		more := len(comps) > 0
		if !w.Strict {
			more = hasMore(comps)
		}
		target, isLink, err := w.Link(n)
		if err != nil {
			return zero, err
		}
		if isLink && (follow || more) {
			hops++
			if hops > MaxSymlinks {
				return zero, loop
			}
			if target == "" && w.EmptyLink != nil {
				return zero, w.EmptyLink
			}
			if w.OnLink != nil {
				w.OnLink(n, target)
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			comps = append(strings.Split(target, "/"), comps...)
			continue
		}
		if w.OnDir != nil && w.IsDir(n) {
			w.OnDir(n)
		}
		stack = append(stack, n)
	}
	return stack[len(stack)-1], nil
}

// hasMore reports whether comps still names something (a trailing "" or
// "." does not).
func hasMore(comps []string) bool {
	for _, c := range comps {
		if c != "" && c != "." {
			return true
		}
	}
	return false
}

// SeekReaderAt serves ReadAt from a file that can only seek, one read at
// a time. A read that ends early at the end of the file says io.EOF.
type SeekReaderAt struct {
	mu sync.Mutex
	RS io.ReadSeeker
}

// ReadAt reads len(p) bytes at off.
func (s *SeekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.RS.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(s.RS, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// Entry is a canonical path of a tree and its Lstat (nil for the root).
type Entry struct {
	Path string
	Info fs.FileInfo
}

// PathWalker is a Strict Walker over canonical paths, for a tree read by
// lstat and readlink: root is the root's path, join makes a child's path.
func PathWalker(root string, join func(dir, name string) string, lstat func(string) (fs.FileInfo, error), readlink func(string) (string, error)) Walker[Entry] {
	return Walker[Entry]{
		Root:  Entry{Path: root},
		IsDir: func(e Entry) bool { return e.Info == nil || e.Info.IsDir() },
		Child: func(dir Entry, name string) (Entry, error) {
			p := join(dir.Path, name)
			info, err := lstat(p)
			return Entry{p, info}, err
		},
		Link: func(e Entry) (string, bool, error) {
			if e.Info == nil || e.Info.Mode()&fs.ModeSymlink == 0 {
				return "", false, nil
			}
			target, err := readlink(e.Path)
			return target, true, err
		},
		Strict: true,
	}
}

// UnixMode gives the permission bits of m with setuid, setgid and sticky
// in their Unix places (0o4000, 0o2000, 0o1000), as tar headers, ops
// packages and a plan's JSON want them.
func UnixMode(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}
