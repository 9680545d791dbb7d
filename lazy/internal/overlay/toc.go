package overlay

import (
	"archive/tar"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/opencontainers/go-digest"
)

// MaxChunkSize bounds the chunks a TOC may declare (estargz writes 4 MiB
// ones by default), and so what a hostile TOC can make a reader allocate.
const MaxChunkSize = 256 << 20

// Chunk is a piece of a regular file in an eStargz blob.
type Chunk struct {
	FileOffset int64  // where the chunk starts in the file
	Size       int64  // uncompressed bytes
	Offset     int64  // the gzip member holding it: its first byte in the blob
	Next       int64  // and the byte after its last
	Inner      int64  // where the chunk starts in the member's uncompressed stream
	Digest     string // "sha256:..." of the chunk's uncompressed bytes
	File       string // the file's path, for errors
}

// WithoutStargzMeta drops the files estargz adds to a layer when an
// eStargz layer is read as plain gzip (no TOC annotation, or a local
// tarball): the image shows the same files however its layers are read.
func WithoutStargzMeta(entries []Entry) []Entry {
	if !slices.ContainsFunc(entries, func(e Entry) bool { return e.Path == estargz.TOCTarName }) {
		return entries
	}
	return slices.DeleteFunc(entries, func(e Entry) bool { return StargzHidden[e.Path] })
}

// StargzHidden are the files estargz adds to every layer for itself.
var StargzHidden = map[string]bool{
	estargz.TOCTarName:         true,
	estargz.PrefetchLandmark:   true,
	estargz.NoPrefetchLandmark: true,
}

// FromTOC converts TOC entries into layer entries, checking that
// every regular file's chunks cover it exactly and can be verified.
// tocOffset ends the last gzip member.
func FromTOC(toc *estargz.JTOC, tocOffset int64) ([]Entry, error) {
	// The member of a chunk ends where the next member starts (estargz's
	// own rule: entries sharing a member carry an inner offset).
	next := make([]int64, len(toc.Entries))
	last := tocOffset
	for i := len(toc.Entries) - 1; i >= 0; i-- {
		te := toc.Entries[i]
		if te == nil {
			return nil, fmt.Errorf("TOC entry %d is null", i)
		}
		if te.Type == "reg" || te.Type == "chunk" {
			next[i] = last
		}
		if te.Offset != 0 && te.InnerOffset == 0 {
			last = te.Offset
		}
	}
	var entries []Entry
	cur := -1 // index in entries of the regular file whose chunks follow
	finish := func() error {
		if cur < 0 {
			return nil
		}
		e := &entries[cur]
		var covered int64
		for _, c := range e.Chunks {
			if c.FileOffset != covered {
				return &EntryError{Entry: e.Name, Err: fmt.Errorf("chunk at %d, want %d", c.FileOffset, covered)}
			}
			covered += c.Size
		}
		if covered != e.Size {
			return &EntryError{Entry: e.Name, Err: fmt.Errorf("chunks cover %d of %d bytes", covered, e.Size)}
		}
		cur = -1
		return nil
	}
	for i, te := range toc.Entries {
		if te.Type == "chunk" {
			if cur < 0 {
				return nil, &EntryError{Entry: te.Name, Err: errors.New("chunk without a regular file before it")}
			}
			e := &entries[cur]
			size := te.ChunkSize
			if size == 0 {
				size = e.Size - te.ChunkOffset
			}
			c, err := newChunk(te, size, next[i], tocOffset, e.Path)
			if err != nil {
				return nil, &EntryError{Entry: e.Name, Err: err}
			}
			e.Chunks = append(e.Chunks, c)
			continue
		}
		if err := finish(); err != nil {
			return nil, err
		}
		e := Entry{
			Name: te.Name, Mode: te.Mode, UID: te.UID, GID: te.GID, Size: te.Size,
			Linkname: te.LinkName, Devmajor: int64(te.DevMajor), Devminor: int64(te.DevMinor),
		}
		if te.ModTime3339 != "" {
			e.ModTime, _ = time.Parse(time.RFC3339, te.ModTime3339)
		}
		switch te.Type {
		case "dir":
			e.Type = tar.TypeDir
		case "reg":
			e.Type = tar.TypeReg
		case "symlink":
			e.Type = tar.TypeSymlink
		case "hardlink":
			e.Type = tar.TypeLink
		case "char":
			e.Type = tar.TypeChar
		case "block":
			e.Type = tar.TypeBlock
		case "fifo":
			e.Type = tar.TypeFifo
		default:
			return nil, &EntryError{Entry: te.Name, Err: fmt.Errorf("unknown TOC entry type %q", te.Type)}
		}
		if e.Type != tar.TypeReg {
			e.Size = 0
		}
		if e.Devmajor < 0 || e.Devminor < 0 || e.Devmajor > 1<<32-1 || e.Devminor > 1<<32-1 {
			return nil, &EntryError{Entry: te.Name, Err: fmt.Errorf("bad device number %d:%d", e.Devmajor, e.Devminor)}
		}
		if err := e.Check(); err != nil {
			return nil, &EntryError{Entry: te.Name, Err: err}
		}
		if StargzHidden[e.Path] {
			continue
		}
		entries = append(entries, e)
		if e.Type == tar.TypeReg && e.Size > 0 {
			cur = len(entries) - 1
			size := te.ChunkSize
			if size == 0 {
				size = e.Size
			}
			c, err := newChunk(te, size, next[i], tocOffset, e.Path)
			if err != nil {
				return nil, &EntryError{Entry: te.Name, Err: err}
			}
			entries[cur].Chunks = []Chunk{c}
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return entries, nil
}

func newChunk(te *estargz.TOCEntry, size, next, tocOffset int64, file string) (Chunk, error) {
	c := Chunk{FileOffset: te.ChunkOffset, Size: size, Offset: te.Offset, Next: next, Inner: te.InnerOffset, Digest: te.ChunkDigest, File: file}
	switch {
	case size <= 0 || size > MaxChunkSize:
		return c, fmt.Errorf("chunk of %d bytes", size)
	case c.Offset <= 0 || c.Offset >= c.Next || c.Next > tocOffset:
		return c, fmt.Errorf("chunk at blob offset %d (member ends at %d, TOC at %d)", c.Offset, c.Next, tocOffset)
	case c.Inner < 0 || c.Inner > MaxChunkSize:
		return c, fmt.Errorf("chunk at inner offset %d", c.Inner)
	}
	if d, err := digest.Parse(c.Digest); err != nil || d.Algorithm() != digest.SHA256 {
		return c, fmt.Errorf("chunk digest %q cannot be verified", c.Digest)
	}
	return c, nil
}
