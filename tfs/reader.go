package tfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FS is a TFS volume opened for reading. It implements fs.FS, fs.StatFS,
// fs.ReadDirFS, fs.ReadFileFS and fs.ReadLinkFS; regular files also
// implement io.ReaderAt and io.Seeker. Symbolic links are followed the way
// the Nanos kernel follows them (absolute targets from the volume root).
// An FS is safe for concurrent use once opened.
type FS struct {
	vol     io.ReaderAt // the volume, at offset 0
	off     int64
	size    int64
	log     *volumeLog
	root    *tuple
	sectors uint64
}

var (
	_ fs.FS          = (*FS)(nil)
	_ fs.StatFS      = (*FS)(nil)
	_ fs.ReadDirFS   = (*FS)(nil)
	_ fs.ReadFileFS  = (*FS)(nil)
	_ fs.ReadLinkFS  = (*FS)(nil)
	_ io.ReaderAt    = (*file)(nil)
	_ io.Seeker      = (*file)(nil)
	_ fs.ReadDirFile = (*dir)(nil)
)

// OpenOption configures Open.
type OpenOption func(*openConfig)

type openConfig struct{ part Partition }

// WithPartition selects which volume of a whole disk image Open reads
// (default RootPartition). It has no effect on a raw volume.
func WithPartition(p Partition) OpenOption { return func(c *openConfig) { c.part = p } }

// Open reads the TFS in r, an image of size bytes: either a raw volume or a
// whole disk whose partition table is interpreted exactly as the kernel and
// dump do (spec §2.2). It replays the whole log (v5, or v4 read-only),
// applying later records over earlier ones; file contents are read from r
// on demand.
func Open(r io.ReaderAt, size int64, opts ...OpenOption) (*FS, error) {
	var cfg openConfig
	for _, o := range opts {
		o(&cfg)
	}
	off, vsize, err := locate(r, size, cfg.part)
	if err != nil {
		return nil, fmt.Errorf("tfs: %w", err)
	}
	return openVolume(r, off, vsize, nil)
}

func openVolume(r io.ReaderAt, off, size int64, chk *checker) (*FS, error) {
	vol := io.NewSectionReader(r, off, size)
	lg, err := readLog(vol, size, chk)
	if err != nil {
		return nil, fmt.Errorf("tfs: reading log: %w", err)
	}
	f := &FS{vol: vol, off: off, size: size, log: lg, root: lg.root, sectors: uint64(size / SectorSize)}
	if _, ok := f.root.attrs["children"].(*tuple); !ok {
		return nil, errors.New("tfs: the root tuple has no children tuple")
	}
	if err := f.checkTree(); err != nil {
		return nil, fmt.Errorf("tfs: %w", err)
	}
	return f, nil
}

// checkTree makes sure directories form a tree: a directory (or children
// tuple) reachable twice would make walks loop or explode.
func (f *FS) checkTree() error {
	seen := make(map[*tuple]string)
	var walk func(d *tuple, p string, depth int) error
	walk = func(d *tuple, p string, depth int) error {
		if depth > maxPathLen {
			return fmt.Errorf("directories nested deeper than %d at %s", maxPathLen, p)
		}
		c := d.children()
		for _, t := range []*tuple{d, c} {
			if other, ok := seen[t]; ok {
				return fmt.Errorf("directory %s is also reachable as %s (tuple #%d)", p, other, t.id)
			}
			seen[t] = p
		}
		for _, name := range sortedKeys(c.attrs) {
			ct, ok := c.attrs[name].(*tuple)
			if !ok || !validName(name) || ct.children() == nil {
				continue
			}
			if err := walk(ct, path.Join(p, name), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(f.root, "/", 0)
}

// validName reports whether a directory entry is a file name at all.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/")
}

// children returns the directory tuple, or nil if t is not a directory.
func (t *tuple) children() *tuple {
	c, _ := t.attrs["children"].(*tuple)
	return c
}

// linkTarget returns the symlink target, if t is a symlink (the kernel
// classifies: children → directory, else linktarget → symlink).
func (t *tuple) linkTarget() (string, bool) {
	if t.children() != nil {
		return "", false
	}
	switch v := t.attrs["linktarget"].(type) {
	case String:
		return string(v), true
	case Buffer:
		return string(v), true
	}
	return "", false
}

func (f *FS) ops() pathOps[*tuple] {
	return pathOps[*tuple]{
		root:  f.root,
		isDir: func(t *tuple) bool { return t.children() != nil },
		child: func(d *tuple, name string) (*tuple, bool) {
			t, ok := d.children().attrs[name].(*tuple)
			return t, ok
		},
		target: (*tuple).linkTarget,
	}
}

func (f *FS) lookup(op, name string, follow bool) (*tuple, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	t, err := resolve(f.ops(), name, follow)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return t, nil
}

// Open opens the named file or directory, following symlinks.
func (f *FS) Open(name string) (fs.File, error) {
	t, err := f.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	if t.children() != nil {
		return &dir{fsys: f, name: name, t: t}, nil
	}
	fl, err := f.newFile(name, t)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return fl, nil
}

// Stat describes the named file, following symlinks.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	t, err := f.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return f.info(path.Base(name), t), nil
}

// Lstat describes the named file without following a final symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	t, err := f.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return f.info(path.Base(name), t), nil
}

// ReadLink returns the target of the named symlink.
func (f *FS) ReadLink(name string) (string, error) {
	t, err := f.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	target, ok := t.linkTarget()
	if !ok {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return target, nil
}

// ReadDir lists the named directory in name order. Entries whose names
// cannot appear in an io/fs path ("", ".", "..", names holding "/" and,
// though valid in TFS, names that are not UTF-8) or whose value is not a
// tuple are left out; Verify reports all but the UTF-8 case.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	t, err := f.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if t.children() == nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return f.entries(t), nil
}

// ReadFile returns the contents of the named file.
func (f *FS) ReadFile(name string) ([]byte, error) {
	fl, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer fl.Close()
	r, ok := fl.(*file)
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	b := make([]byte, r.size)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return b, nil
}

func (f *FS) entries(t *tuple) []fs.DirEntry {
	c := t.children()
	names := sortedKeys(c.attrs)
	out := make([]fs.DirEntry, 0, len(names))
	for _, n := range names {
		ct, ok := c.attrs[n].(*tuple)
		if !ok || !validName(n) || !utf8.ValidString(n) {
			continue // io/fs cannot name it
		}
		out = append(out, fs.FileInfoToDirEntry(f.info(n, ct)))
	}
	return out
}

// UUID returns the volume UUID.
func (f *FS) UUID() [16]byte { return f.log.uuid }

// Label returns the volume label.
func (f *FS) Label() string { return f.log.label }

// Version returns the TFS version of the volume (5, or legacy 4).
func (f *FS) Version() int { return f.log.version }

// Offset returns the byte offset of the volume inside the image.
func (f *FS) Offset() int64 { return f.off }

// Size returns the volume size in bytes.
func (f *FS) Size() int64 { return f.size }

// Manifest returns the root tuple without its children: program,
// arguments, environment and every other key of spec §7. Values shared with
// the tree or with each other are copied; a cycle is cut (empty Tuple).
func (f *FS) Manifest() Tuple {
	m := Tuple{}
	x := exporter{onPath: map[any]bool{f.root: true}, budget: 4*len(f.log.dict) + 1024}
	for _, k := range sortedKeys(f.root.attrs) {
		if k != "children" {
			m[k] = x.export(f.root.attrs[k])
		}
	}
	return m
}

// exporter copies decoded values into Values. Shared tuples are copied once
// per use, so a budget proportional to the log keeps a hostile DAG from
// exploding; cycles are cut.
type exporter struct {
	onPath map[any]bool
	budget int
}

func export(v any, onPath map[any]bool) Value {
	x := exporter{onPath: onPath, budget: 1 << 16}
	return x.export(v)
}

func (x *exporter) export(v any) Value {
	switch v := v.(type) {
	case *tuple:
		x.budget--
		if x.onPath[v] || x.budget < 0 {
			return Tuple{}
		}
		x.onPath[v] = true
		defer delete(x.onPath, v)
		t := make(Tuple, len(v.attrs))
		for _, k := range sortedKeys(v.attrs) {
			t[k] = x.export(v.attrs[k])
		}
		return t
	case *vector:
		x.budget--
		if x.onPath[v] || x.budget < 0 {
			return Vector{}
		}
		x.onPath[v] = true
		defer delete(x.onPath, v)
		out := make(Vector, len(v.elems))
		for i, e := range v.elems {
			out[i] = x.export(e)
		}
		return out
	case nil:
		return nil
	}
	return v.(Value)
}

// FormatUUID prints a UUID the way Nanos does: 8-4-4-4-12 hex digits in
// byte order.
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// FileStat is FileInfo.Sys() of entries read from an FS.
type FileStat struct {
	// Inode is the dictionary index of the entry's tuple: stable for an
	// image, and equal for all names of a hard-linked file.
	Inode uint64
	// Nlink is the entry's hard-link count (the nlink attribute, default 1).
	Nlink uint64
}

type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
	stat  *FileStat
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.size }
func (i *fileInfo) Mode() fs.FileMode  { return i.mode }
func (i *fileInfo) ModTime() time.Time { return i.mtime }
func (i *fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i *fileInfo) Sys() any           { return i.stat }

// info synthesizes what stat would say inside Nanos: no owners, permissions
// 0777, or 0555 for readonly entries (spec §5.3).
func (f *FS) info(name string, t *tuple) *fileInfo {
	if name == "." || name == "/" {
		name = "."
	}
	i := &fileInfo{name: name, mode: 0o777, stat: &FileStat{Inode: t.id, Nlink: 1}}
	if _, ok := t.attrs["readonly"]; ok {
		i.mode = 0o555
	}
	if n, ok := asUint(t.attrs["nlink"]); ok {
		i.stat.Nlink = n
	}
	if m, ok := asUint(t.attrs["mtime"]); ok {
		i.mtime = time.Unix(int64(m>>32), int64((m&0xffffffff)*1e9>>32)).UTC()
	}
	switch target, isLink := t.linkTarget(); {
	case t.children() != nil:
		i.mode |= fs.ModeDir
	case isLink:
		i.mode |= fs.ModeSymlink
		i.size = int64(len(target))
	default:
		i.size = fileLength(t)
	}
	return i
}

// fileLength is the size of a regular file: filelength, or 0 when the
// tuple has no extents (it is then not a TFS file and reads nothing).
func fileLength(t *tuple) int64 {
	if _, ok := t.attrs["extents"].(*tuple); !ok {
		return 0
	}
	n, ok := asUint(t.attrs["filelength"])
	if !ok || n > 1<<62 {
		return 0
	}
	return int64(n)
}

// asUint reads a number the way the kernel accepts it: an integer or a
// decimal string (ops writes strings, v4 writes buffers).
func asUint(v any) (uint64, bool) {
	switch v := v.(type) {
	case Int:
		return uint64(v), v >= 0
	case Uint:
		return uint64(v), true
	case String:
		n, err := strconv.ParseUint(string(v), 10, 64)
		return n, err == nil
	case Buffer:
		n, err := strconv.ParseUint(string(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// Extent is one run of a file's data (spec §5.2), in 512-byte sectors.
type Extent struct {
	FileBlock uint64 // first file block it holds
	Offset    uint64 // first volume sector of its data
	Length    uint64 // sectors of data
	Allocated uint64 // sectors reserved (≥ Length)
	Uninited  bool   // reads as zeros
}

// Extents returns where the named regular file's data lies in the volume,
// in file-block order (symlinks are followed).
func (f *FS) Extents(name string) ([]Extent, error) {
	t, err := f.lookup("extents", name, true)
	if err != nil {
		return nil, err
	}
	if t.children() != nil {
		return nil, &fs.PathError{Op: "extents", Path: name, Err: errors.New("is a directory")}
	}
	exts, err := f.extents(t)
	if err != nil {
		return nil, &fs.PathError{Op: "extents", Path: name, Err: err}
	}
	return exts, nil
}

// maxFileBlock keeps block arithmetic far from overflow (2^54 sectors is
// 8 EiB).
const maxFileBlock = 1 << 54

// extents parses and checks a file's extents against the volume.
func (f *FS) extents(t *tuple) ([]Extent, error) {
	et, ok := t.attrs["extents"].(*tuple)
	if !ok {
		return nil, nil
	}
	out := make([]Extent, 0, len(et.attrs))
	for k, v := range et.attrs {
		blk, err := strconv.ParseUint(k, 10, 64)
		if err != nil || blk >= maxFileBlock {
			return nil, fmt.Errorf("extent key %q is not a file block number", k)
		}
		x, ok := v.(*tuple)
		if !ok {
			return nil, fmt.Errorf("extent %s is not a tuple", k)
		}
		e := Extent{FileBlock: blk}
		for _, a := range []struct {
			name string
			dst  *uint64
		}{{"offset", &e.Offset}, {"length", &e.Length}, {"allocated", &e.Allocated}} {
			n, ok := asUint(x.attrs[a.name])
			if !ok {
				return nil, fmt.Errorf("extent %s: missing or non-numeric %s", k, a.name)
			}
			*a.dst = n
		}
		_, e.Uninited = x.attrs["uninited"]
		if e.Offset >= f.sectors || e.Length > f.sectors-e.Offset || e.Length >= maxFileBlock {
			return nil, fmt.Errorf("extent %s: sectors %d+%d lie outside the %d-sector volume", k, e.Offset, e.Length, f.sectors)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Extent) int {
		switch {
		case a.FileBlock < b.FileBlock:
			return -1
		case a.FileBlock > b.FileBlock:
			return 1
		}
		return 0
	})
	for i := 1; i < len(out); i++ {
		if out[i-1].FileBlock+out[i-1].Length > out[i].FileBlock {
			return nil, fmt.Errorf("extents %d and %d overlap", out[i-1].FileBlock, out[i].FileBlock)
		}
	}
	return out, nil
}

type file struct {
	fsys *FS
	name string
	t    *tuple
	size int64
	exts []Extent
	off  int64
}

func (f *FS) newFile(name string, t *tuple) (*file, error) {
	exts, err := f.extents(t)
	if err != nil {
		return nil, err
	}
	return &file{fsys: f, name: name, t: t, size: fileLength(t), exts: exts}, nil
}

func (fl *file) Stat() (fs.FileInfo, error) { return fl.fsys.info(path.Base(fl.name), fl.t), nil }
func (fl *file) Close() error               { return nil }

func (fl *file) Read(p []byte) (int, error) {
	n, err := fl.ReadAt(p, fl.off)
	fl.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (fl *file) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += fl.off
	case io.SeekEnd:
		offset += fl.size
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: fl.name, Err: fs.ErrInvalid}
	}
	fl.off = offset
	return offset, nil
}

// ReadAt reads file bytes: extent data from the volume, zeros for gaps and
// uninited extents.
func (fl *file) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: fl.name, Err: fs.ErrInvalid}
	}
	if off >= fl.size {
		return 0, io.EOF
	}
	want := int(min(int64(len(p)), fl.size-off))
	n := 0
	for n < want {
		pos := off + int64(n)
		blk := uint64(pos / SectorSize)
		i := sort.Search(len(fl.exts), func(i int) bool { return fl.exts[i].FileBlock+fl.exts[i].Length > blk })
		var chunk int
		if i < len(fl.exts) && fl.exts[i].FileBlock <= blk {
			e := fl.exts[i]
			end := int64(e.FileBlock+e.Length) * SectorSize
			chunk = int(min(int64(want-n), end-pos))
			if e.Uninited {
				clear(p[n : n+chunk])
			} else {
				at := int64(e.Offset+blk-e.FileBlock)*SectorSize + pos%SectorSize
				if _, err := fl.fsys.vol.ReadAt(p[n:n+chunk], at); err != nil {
					return n, &fs.PathError{Op: "read", Path: fl.name, Err: ioErr(err)}
				}
			}
		} else {
			next := int64(want - n)
			if i < len(fl.exts) {
				next = min(next, int64(fl.exts[i].FileBlock)*SectorSize-pos)
			}
			chunk = int(next)
			clear(p[n : n+chunk])
		}
		n += chunk
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

type dir struct {
	fsys    *FS
	name    string
	t       *tuple
	entries []fs.DirEntry
	read    bool
}

func (d *dir) Stat() (fs.FileInfo, error) { return d.fsys.info(path.Base(d.name), d.t), nil }
func (d *dir) Close() error               { return nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}

func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		d.entries, d.read = d.fsys.entries(d.t), true
	}
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	out := d.entries[:n:n]
	d.entries = d.entries[n:]
	return out, nil
}
