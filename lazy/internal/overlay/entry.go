// Package overlay merges the entries of an image's layers into one tree
// with the overlay rules of the OCI image specification (whiteouts, opaque
// directories, later layers winning, hard links sharing an inode), after
// checking every entry: a path that climbs out of the root, an absolute
// name or a malformed header is an error naming the layer and the entry.
// Entries come from tar streams (ScanTar) or eStargz TOCs (FromTOC).
package overlay

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Whiteout markers of the OCI image layer specification.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh." // overlay's own files (".wh..wh..opq", AUFS ".wh..wh..plnk", ...)
	opaqueMarker   = ".wh..wh..opq"
)

// Entry is one file of one layer, from a tar header or an eStargz TOC
// entry, before the layers are merged.
type Entry struct {
	Name     string // as the layer spells it, for error messages
	Path     string // cleaned: "" for the root, else "a/b" (see CleanPath)
	Type     byte   // tar type flag: TypeReg, TypeDir, TypeSymlink, TypeLink, TypeChar, TypeBlock, TypeFifo
	Linkname string // symlink target (verbatim) or hard link target (cleaned)
	Mode     int64  // permission bits plus setuid, setgid and sticky (tar's c_IS* bits)
	UID, GID int
	Size     int64 // regular files
	ModTime  time.Time
	Devmajor int64
	Devminor int64
	Offset   int64   // stream layers: where the file's data starts in the layer's tar
	Chunks   []Chunk `json:",omitempty"` // eStargz layers: where the file's data is in the blob
}

// ErrBadPath is wrapped by every rejection of a layer path.
var ErrBadPath = errors.New("unsafe or malformed path")

// CleanPath turns a name from a layer (tar header name or hard link target)
// into a path relative to the image root: "./" prefixes, empty and "."
// elements and a trailing slash are dropped; "" is the root. A leading "/"
// is dropped too, as Docker and containerd do when they extract a layer
// (the name is still relative to the image root). ".." elements and NUL
// bytes are refused rather than clamped: a layer that names them was not
// made by a build and is not trusted further.
func CleanPath(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty name", ErrBadPath)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: %q contains a NUL byte", ErrBadPath, name)
	}
	if isClean(name) {
		// Most names (every one read back from the cache) are already
		// clean: no copy.
		return name, nil
	}
	return cleanElements(name)
}

// cleanElements is CleanPath element by element, for names that need it.
func cleanElements(name string) (string, error) {
	var b strings.Builder
	for _, el := range strings.Split(name, "/") {
		switch el {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: %q climbs out with ..", ErrBadPath, name)
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(el)
	}
	return b.String(), nil
}

// isClean reports whether name is a path CleanPath returns unchanged:
// elements joined by single slashes, none of them "." or "..".
func isClean(name string) bool {
	for len(name) > 0 {
		el, rest, more := strings.Cut(name, "/")
		if el == "" || el == "." || el == ".." || (more && rest == "") {
			return false
		}
		name = rest
	}
	return true
}

// FileMode is the io/fs mode of an entry: its type plus permission and
// special bits.
func (e *Entry) FileMode() fs.FileMode {
	m := fs.FileMode(e.Mode & 0o777)
	if e.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if e.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if e.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch e.Type {
	case tar.TypeDir:
		m |= fs.ModeDir
	case tar.TypeSymlink:
		m |= fs.ModeSymlink
	case tar.TypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case tar.TypeBlock:
		m |= fs.ModeDevice
	case tar.TypeFifo:
		m |= fs.ModeNamedPipe
	}
	return m
}

// maxFileSize bounds sizes read from layers, so that a hostile header
// cannot make offsets overflow.
const maxFileSize = 1 << 50

// FromTar converts and checks a tar header. offset is where the
// entry's data starts in the uncompressed tar stream.
func FromTar(h *tar.Header, offset int64) (Entry, error) {
	e := Entry{
		Name: h.Name, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid,
		ModTime: h.ModTime, Devmajor: h.Devmajor, Devminor: h.Devminor, Offset: offset,
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return e, errors.New("sparse files are not supported")
		}
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		e.Type = tar.TypeReg
		e.Size = h.Size
	case tar.TypeDir, tar.TypeFifo:
	case tar.TypeChar, tar.TypeBlock:
		if h.Devmajor < 0 || h.Devminor < 0 || h.Devmajor > 1<<32-1 || h.Devminor > 1<<32-1 {
			return e, fmt.Errorf("bad device number %d:%d", h.Devmajor, h.Devminor)
		}
	case tar.TypeSymlink, tar.TypeLink:
		e.Linkname = h.Linkname
	case tar.TypeGNUSparse:
		return e, errors.New("sparse files are not supported")
	default:
		return e, fmt.Errorf("unsupported tar entry type %q", h.Typeflag)
	}
	return e, e.Check()
}

// check validates what merging relies on and cleans the paths.
func (e *Entry) Check() error {
	p, err := CleanPath(e.Name)
	if err != nil {
		return err
	}
	e.Path = p
	if e.Size < 0 || e.Size > maxFileSize {
		return fmt.Errorf("bad size %d", e.Size)
	}
	if e.Mode < 0 {
		return fmt.Errorf("bad mode %#o", e.Mode)
	}
	switch e.Type {
	case tar.TypeLink:
		t, err := CleanPath(e.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		if t == "" {
			return errors.New("hard link to the root directory")
		}
		e.Linkname = t
	case tar.TypeSymlink:
		if e.Linkname == "" {
			return errors.New("symbolic link with an empty target")
		}
		if strings.IndexByte(e.Linkname, 0) >= 0 {
			return errors.New("symbolic link target contains a NUL byte")
		}
	}
	return nil
}

// EntryError names the layer and the entry a problem was found in.
type EntryError struct {
	Layer string // layer digest
	Entry string // the entry's name as the layer spells it
	Err   error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("layer %s: entry %q: %v", e.Layer, e.Entry, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// ScanTar reads a tar stream to its end-of-archive marker (not beyond) and
// returns its entries, each with the offset of its data in the stream.
func ScanTar(r io.Reader) ([]Entry, error) {
	pos := &countingReader{r: r}
	tr := tar.NewReader(pos)
	var entries []Entry
	last := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			// archive/tar accepts some streams cut short: every file's
			// data must be in the stream.
			for _, e := range entries {
				if e.Offset+e.Size > pos.n {
					return nil, &EntryError{Entry: e.Name, Err: fmt.Errorf("data (%d bytes at %d) runs past the end of the tar (%d bytes)", e.Size, e.Offset, pos.n)}
				}
			}
			return entries, nil
		}
		if err != nil {
			if last == "" {
				return nil, fmt.Errorf("reading the tar: %w", err)
			}
			return nil, fmt.Errorf("reading the tar after entry %q: %w", last, err)
		}
		e, err := FromTar(h, pos.n)
		if err != nil {
			return nil, &EntryError{Entry: h.Name, Err: err}
		}
		entries = append(entries, e)
		last = h.Name
	}
}

// countingReader counts the bytes read through it: right after
// tar.Reader.Next returns a header, where that entry's data starts
// (archive/tar reads no further ahead than the header blocks).
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
