package testimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"time"
)

// Epoch is the modification time given to every entry whose time is not
// chosen explicitly, so that the same input always yields the same blob.
var Epoch = time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)

// Whiteout markers of the OCI image layer spec.
const (
	WhiteoutPrefix = ".wh."
	OpaqueMarker   = ".wh..wh..opq"
)

// Entry is one tar entry written exactly as given: no cleaning, no
// validation, so that hostile and malformed layers can be expressed too.
// For a regular file whose Header.Size is zero, Size is taken from Body.
type Entry struct {
	Header tar.Header
	Body   []byte
}

// Dir is a directory entry; name gets a trailing slash like docker writes it.
func Dir(name string, mode int64) Entry {
	if name != "" && name[len(name)-1] != '/' {
		name += "/"
	}
	return Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}}
}

// File is a regular file entry.
func File(name string, mode int64, body string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, Body: []byte(body)}
}

// Symlink is a symbolic link entry pointing at target (absolute or relative).
func Symlink(name, target string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

// Fifo is a named pipe entry.
func Fifo(name string, mode int64) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: mode}}
}

// Hardlink is a tar hard link: name becomes another name of target, an
// earlier entry of the same layer (root-relative, as tar hard links are).
func Hardlink(name, target string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

// Whiteout deletes name (and everything below it) from the layers beneath.
func Whiteout(name string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: path.Join(path.Dir(name), WhiteoutPrefix+path.Base(name))}}
}

// Opaque hides everything the layers beneath have inside dir; the layer's
// own entries in dir stay visible.
func Opaque(dir string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: path.Join(dir, OpaqueMarker)}}
}

// WithOwner returns e owned by uid:gid.
func (e Entry) WithOwner(uid, gid int) Entry {
	e.Header.Uid, e.Header.Gid = uid, gid
	return e
}

// header returns the header to write, with the defaults filled in.
func (e Entry) header() *tar.Header {
	h := e.Header
	if h.ModTime.IsZero() {
		h.ModTime = Epoch
	}
	if h.Typeflag == tar.TypeReg && h.Size == 0 {
		h.Size = int64(len(e.Body))
	}
	return &h
}

// WriteEntries writes entries as one tar stream, in the order given.
func WriteEntries(w io.Writer, entries []Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := e.header()
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar header %q: %w", h.Name, err)
		}
		if len(e.Body) > 0 {
			if _, err := tw.Write(e.Body); err != nil {
				return fmt.Errorf("tar body %q: %w", h.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("closing tar: %w", err)
	}
	return nil
}

// TarEntries returns the tar stream of entries (see WriteEntries).
func TarEntries(entries []Entry) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteEntries(&buf, entries); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
