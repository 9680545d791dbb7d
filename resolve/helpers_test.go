package resolve

import (
	"bytes"
	"debug/elf"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// hostCanonical resolves the image path p inside the host directory root
// the way the kernel does in a chroot (absolute links start at root, ".."
// stops there), using the operating system's own lstat and readlink.
func hostCanonical(t testing.TB, root, p string) string {
	t.Helper()
	pending := strings.Split(p, "/")
	cur := "/"
	for links := 0; len(pending) > 0; {
		el := pending[0]
		pending = pending[1:]
		if el == "" || el == "." {
			continue
		}
		if el == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, el)
		host := filepath.Join(root, filepath.FromSlash(next))
		info, err := os.Lstat(host)
		require.NoError(t, err, "canonical path of %s in %s", p, root)
		if info.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		links++
		require.Less(t, links, 40, "link loop at %s", p)
		target, err := os.Readlink(host)
		require.NoError(t, err)
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	return cur
}

// hostCanonicals maps hostCanonical over paths, sorted.
func hostCanonicals(t testing.TB, root string, paths []string) []string {
	t.Helper()
	out := []string{}
	for _, p := range paths {
		out = append(out, hostCanonical(t, root, p))
	}
	sort.Strings(out)
	return out
}

// libraryFiles is the canonical files of what the loader maps for the
// plan's program, sorted.
func libraryFiles(p *Plan) []string {
	out := []string{}
	for _, o := range p.Libraries() {
		out = append(out, o.File)
	}
	sort.Strings(out)
	return out
}

// libraryPaths is the plan's libraries as the loader opens them, cleaned
// (ldd prints "$ORIGIN/.." paths cleaned too).
func libraryPaths(p *Plan) []string {
	out := []string{}
	for _, o := range p.Libraries() {
		out = append(out, path.Clean(o.Path))
	}
	sort.Strings(out)
	return out
}

// entryPaths lists the plan's entries of the given kinds.
func entryPaths(p *Plan, kinds ...Kind) []string {
	var out []string
	for _, e := range p.Entries {
		for _, k := range kinds {
			if e.Kind == k {
				out = append(out, e.Path)
			}
		}
	}
	return out
}

// lddLine is one line of ldd / ld.so --list output.
type lddResult struct {
	Found   []string // absolute paths, as printed
	Missing []string // names printed as "not found"
	Static  bool     // "statically linked" / "not a dynamic executable"
	Errors  []string // anything else
}

// parseLdd reads ldd output: "name => /path (0x...)", "/path (0x...)",
// "name (0x...)" (the vDSO), "name => not found".
func parseLdd(out string) lddResult {
	var r lddResult
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.Contains(line, "statically linked"), strings.Contains(line, "not a dynamic executable"):
			r.Static = true
			continue
		case strings.HasPrefix(line, "ldd: warning: you do not have execution permission"):
			continue
		}
		name, target, arrow := strings.Cut(line, " => ")
		if !arrow {
			target = name
		}
		if strings.HasPrefix(target, "not found") {
			r.Missing = append(r.Missing, name)
			continue
		}
		if i := strings.LastIndex(target, " (0x"); i >= 0 {
			target = target[:i]
		} else {
			r.Errors = append(r.Errors, line)
			continue
		}
		target = strings.TrimSpace(target)
		switch {
		case strings.HasPrefix(target, "/"):
			r.Found = append(r.Found, target)
		case strings.HasPrefix(target, "linux-vdso") || strings.HasPrefix(target, "linux-gate"):
		case target == "" && arrow:
		default:
			r.Errors = append(r.Errors, line)
		}
	}
	r.Found = uniqueSorted(r.Found)
	r.Missing = uniqueSorted(r.Missing)
	return r
}

func uniqueSorted(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// missingNames is the names of the plan's missing libraries, sorted.
func missingNames(p *Plan) []string {
	out := []string{}
	for _, m := range p.Missing {
		out = append(out, m.Name)
	}
	sort.Strings(out)
	return out
}

// countingFS counts the bytes read from files opened through it.
type countingFS struct {
	fsys  fs.FS
	bytes atomic.Int64
	opens atomic.Int64
}

var (
	_ fs.FS         = (*countingFS)(nil)
	_ fs.ReadLinkFS = (*countingFS)(nil)
)

func (c *countingFS) Open(name string) (fs.File, error) {
	f, err := c.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	c.opens.Add(1)
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return f, nil // directory listings are not file content
	}
	return &countingFile{File: f, c: c}, nil
}

func (c *countingFS) ReadLink(name string) (string, error)   { return fs.ReadLink(c.fsys, name) }
func (c *countingFS) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(c.fsys, name) }

type countingFile struct {
	fs.File
	c *countingFS
}

func (f *countingFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.c.bytes.Add(int64(n))
	return n, err
}

func (f *countingFile) ReadAt(p []byte, off int64) (int, error) {
	ra, ok := f.File.(io.ReaderAt)
	if !ok {
		return 0, fs.ErrInvalid
	}
	n, err := ra.ReadAt(p, off)
	f.c.bytes.Add(int64(n))
	return n, err
}

// hidingFS hides some paths (and what is under them) of an fs.FS.
type hidingFS struct {
	fsys fs.FS
	hide []string // fs names
}

func (h hidingFS) hidden(name string) bool {
	for _, p := range h.hide {
		if name == p || strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}

func (h hidingFS) Open(name string) (fs.File, error) {
	if h.hidden(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return h.fsys.Open(name)
}

func (h hidingFS) ReadLink(name string) (string, error) {
	if h.hidden(name) {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrNotExist}
	}
	return fs.ReadLink(h.fsys, name)
}

func (h hidingFS) Lstat(name string) (fs.FileInfo, error) {
	if h.hidden(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrNotExist}
	}
	return fs.Lstat(h.fsys, name)
}

// copyTree copies the host tree src to dst (cp -a), for tests that change
// a fixture tree.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// patchDynString replaces the string old of an ELF file's .dynstr with
// new (no longer than old, NUL padded): a DT_NEEDED name or a run path
// of a real compiled fixture, changed in place.
func patchDynString(t testing.TB, file, old, new string) {
	t.Helper()
	require.LessOrEqual(t, len(new), len(old))
	f, err := elf.Open(file)
	require.NoError(t, err)
	sec := f.Section(".dynstr")
	require.NotNil(t, sec, "%s has no .dynstr", file)
	data, err := sec.Data()
	require.NoError(t, err)
	off := int64(sec.Offset)
	require.NoError(t, f.Close())
	i := bytes.Index(data, append(append([]byte{0}, old...), 0))
	require.GreaterOrEqual(t, i, 0, "%s: no string %q in .dynstr", file, old)
	repl := make([]byte, len(old))
	copy(repl, new)
	w, err := os.OpenFile(file, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = w.WriteAt(repl, off+int64(i)+1)
	require.NoError(t, err)
	require.NoError(t, w.Close())
}

// setDynFlags1 ORs flags into the DT_FLAGS_1 entry of an ELF file's
// dynamic section (which the fixture's linker wrote), in place.
func setDynFlags1(t testing.TB, file string, flags elf.DynFlag1) {
	t.Helper()
	f, err := elf.Open(file)
	require.NoError(t, err)
	sec := f.SectionByType(elf.SHT_DYNAMIC)
	require.NotNil(t, sec)
	data, err := sec.Data()
	require.NoError(t, err)
	off := int64(sec.Offset)
	require.Equal(t, elf.ELFCLASS64, f.Class)
	bo := f.ByteOrder
	require.NoError(t, f.Close())
	for i := 0; i+16 <= len(data); i += 16 {
		if elf.DynTag(bo.Uint64(data[i:])) != elf.DT_FLAGS_1 {
			continue
		}
		val := make([]byte, 8)
		bo.PutUint64(val, bo.Uint64(data[i+8:])|uint64(flags))
		w, err := os.OpenFile(file, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = w.WriteAt(val, off+int64(i)+8)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		return
	}
	t.Fatalf("%s has no DT_FLAGS_1", file)
}
