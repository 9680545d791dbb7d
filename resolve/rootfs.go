package resolve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/nanofs/nanofs/tfs/fspath"
)

// maxSymlinks is the kernel's limit on symbolic links followed in one
// path lookup (MAXSYMLINKS), past which it fails with ELOOP.
const maxSymlinks = fspath.MaxSymlinks

// ErrSymlinkLoop is returned for a path that needs more than 40 symbolic
// links to resolve, as the kernel does (ELOOP).
var ErrSymlinkLoop = errors.New("too many levels of symbolic links")

// errNotDir is a path whose non-final element is not a directory (ENOTDIR).
var errNotDir = errors.New("not a directory")

// absent reports whether err means "nothing usable at that path", which a
// search skips, as opposed to a failure of the filesystem, which it must
// report.
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) || errors.Is(err, ErrSymlinkLoop)
}

// rootFS is the image filesystem seen the way the kernel resolves paths in
// a chroot of it: absolute symbolic links start again at the image root,
// ".." stops at the root, and only canonical paths (no symbolic link in
// them) are ever opened, so that even an fs.FS that follows links on the
// host (os.DirFS) is never asked for anything outside the image.
//
// Lookups are cached: the filesystem must not change while in use.
type rootFS struct {
	fsys fs.FS
	// prefetch queues files to be fetched in the background (nil when
	// fsys cannot): see Prefetcher.
	prefetch func(names ...string)

	mu    sync.Mutex
	stats map[string]statResult // canonical path -> Lstat
	links map[string]string     // canonical path of a link -> its target
}

type statResult struct {
	info fs.FileInfo
	err  error
}

func newRootFS(fsys fs.FS) *rootFS {
	r := &rootFS{fsys: fsys, stats: map[string]statResult{}, links: map[string]string{}}
	if p, ok := fsys.(Prefetcher); ok {
		r.prefetch = p.PrefetchLater
	}
	return r
}

// Prefetcher is a file system whose files are fetched from far away (a
// lazily read image, lazy.Image): a resolve tells it each file it puts in
// the plan, and the libraries a program is about to need, as soon as it
// knows them, so that their bytes travel while it goes on.
type Prefetcher interface {
	// PrefetchLater queues the named files (fs.FS names) and returns at
	// once; it must ignore names it does not have.
	PrefetchLater(names ...string)
}

// prefetchLater queues the canonical paths ps, if fsys fetches files.
func (r *rootFS) prefetchLater(ps ...string) {
	if r.prefetch == nil || len(ps) == 0 {
		return
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = fsName(p)
	}
	r.prefetch(names...)
}

// fsName turns a canonical image path ("/usr/lib") into an fs.FS name.
func fsName(p string) string {
	if p == "/" {
		return "."
	}
	return strings.TrimPrefix(p, "/")
}

func (r *rootFS) lstat(p string) (fs.FileInfo, error) {
	r.mu.Lock()
	res, ok := r.stats[p]
	r.mu.Unlock()
	if ok {
		return res.info, res.err
	}
	info, err := fs.Lstat(r.fsys, fsName(p))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", p, err) // not cached: may be transient
		}
		err = fs.ErrNotExist
	}
	r.mu.Lock()
	r.stats[p] = statResult{info, err}
	r.mu.Unlock()
	return info, err
}

func (r *rootFS) readlink(p string) (string, error) {
	r.mu.Lock()
	target, ok := r.links[p]
	r.mu.Unlock()
	if ok {
		return target, nil
	}
	target, err := fs.ReadLink(r.fsys, fsName(p))
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	r.mu.Lock()
	r.links[p] = target
	r.mu.Unlock()
	return target, nil
}

// linkStep is one symbolic link met while resolving a path.
type linkStep struct {
	Path   string // canonical location of the link
	Target string // its text
}

// located is the outcome of resolving a path inside the image.
type located struct {
	Path  string      // the path as asked
	File  string      // canonical path: no symbolic link, "." or ".." in it
	Info  fs.FileInfo // Lstat of File (never a symbolic link)
	Links []linkStep  // every link followed, in order
	Dirs  []string    // every directory passed through (canonical), root excluded
}

// locate resolves p (absolute, or relative to the root) as the kernel would
// inside a chroot, following a final symbolic link too. ".." is taken
// physically: after the links before it are followed, as the kernel does.
func (r *rootFS) locate(p string) (*located, error) {
	loc := &located{Path: p}
	fail := func(err error) (*located, error) { return loc, &fs.PathError{Op: "resolve", Path: p, Err: err} }
	w := fspath.PathWalker("/", func(dir, name string) string { return path.Join(dir, name) }, r.lstat, r.readlink)
	w.NotDir, w.Loop, w.EmptyLink = errNotDir, ErrSymlinkLoop, fs.ErrNotExist // EmptyLink: ENOENT, as the kernel
	w.OnLink = func(e fspath.Entry, target string) {
		loc.Links = append(loc.Links, linkStep{Path: e.Path, Target: target})
	}
	w.OnDir = func(e fspath.Entry) { loc.Dirs = append(loc.Dirs, e.Path) }
	end, err := w.Resolve(p, true)
	if err != nil {
		return fail(err)
	}
	loc.File, loc.Info = end.Path, end.Info
	if loc.Info == nil { // the root
		if loc.Info, err = r.lstat("/"); err != nil {
			return fail(err)
		}
	}
	if len(loc.Dirs) > 0 && loc.Dirs[len(loc.Dirs)-1] == end.Path {
		loc.Dirs = loc.Dirs[:len(loc.Dirs)-1] // the target itself is reported as File
	}
	return loc, nil
}

func splitPath(p string) []string { return strings.Split(p, "/") }

// isExecutable reports whether a regular file has an execute bit, which
// the kernel requires of a program (else EACCES).
func isExecutable(info fs.FileInfo) bool {
	return info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

// readerAt is an open image file that can be read at any offset.
type readerAt struct {
	io.ReaderAt
	size  int64
	close func() error
}

func (f *readerAt) Close() error { return f.close() }

// open opens the canonical path p for random access. Files that are not an
// io.ReaderAt are read through Seek when they can, else read whole into
// memory (the only way left to reach their end).
func (r *rootFS) open(p string, size int64) (*readerAt, error) {
	f, err := r.fsys.Open(fsName(p))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	switch v := f.(type) {
	case io.ReaderAt:
		return &readerAt{ReaderAt: v, size: size, close: f.Close}, nil
	case io.ReadSeeker:
		return &readerAt{ReaderAt: &fspath.SeekReaderAt{RS: v}, size: size, close: f.Close}, nil
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &readerAt{ReaderAt: bytes.NewReader(data), size: int64(len(data)), close: func() error { return nil }}, nil
}

// readHead reads up to n bytes from the start of the canonical file p.
func (r *rootFS) readHead(p string, n int) ([]byte, error) {
	f, err := r.fsys.Open(fsName(p))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return buf[:m], nil
}

// readFile reads a whole small file (a configuration file) at any path,
// following links inside the image.
func (r *rootFS) readFile(p string, limit int64) (*located, []byte, error) {
	loc, err := r.locate(p)
	if err != nil {
		return loc, nil, err
	}
	if !loc.Info.Mode().IsRegular() {
		return loc, nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("not a regular file")}
	}
	if loc.Info.Size() > limit {
		return loc, nil, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("larger than %d bytes", limit)}
	}
	f, err := r.fsys.Open(fsName(loc.File))
	if err != nil {
		return loc, nil, fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return loc, nil, fmt.Errorf("%s: %w", p, err)
	}
	if int64(len(data)) > limit {
		return loc, nil, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("larger than %d bytes", limit)}
	}
	return loc, data, nil
}

// readDir lists the canonical directory p, sorted by name.
func (r *rootFS) readDir(p string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(r.fsys, fsName(p))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return entries, nil
}

// glob returns the paths in the image matching pattern, an absolute path
// whose elements may hold path.Match wildcards; directories met on the way
// are looked up inside the image. Matches are returned as paths through
// the pattern (not canonicalised), sorted, and each exists.
func (r *rootFS) glob(pattern string) ([]string, error) {
	if !strings.HasPrefix(pattern, "/") {
		return nil, fmt.Errorf("pattern %q: not an absolute path", pattern)
	}
	current := []string{""}
	for _, el := range splitPath(pattern)[1:] {
		if el == "" {
			continue
		}
		if _, err := path.Match(el, ""); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", pattern, err)
		}
		var next []string
		if !hasMeta(el) {
			for _, c := range current {
				next = append(next, c+"/"+el)
			}
			current = next
			continue
		}
		for _, c := range current {
			dir := c
			if dir == "" {
				dir = "/"
			}
			loc, err := r.locate(dir)
			if err != nil {
				if absent(err) {
					continue
				}
				return nil, err
			}
			if !loc.Info.IsDir() {
				continue
			}
			entries, err := r.readDir(loc.File)
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				if ok, _ := path.Match(el, e.Name()); ok {
					next = append(next, c+"/"+e.Name())
				}
			}
		}
		current = next
	}
	var out []string
	for _, c := range current {
		if c == "" {
			c = "/"
		}
		if _, err := r.locate(c); err != nil {
			if absent(err) {
				continue
			}
			return nil, err
		}
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }
