package lazy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/nanofs/nanofs/lazy/internal/overlay"
)

// A layer's entries are kept in the cache in a compact binary record
// written and read field by field: a warm open reads every layer's index,
// and decoding them (JSON first, then gob, which spent most of its time
// allocating and reflecting) was most of what a warm open cost. Every
// string of a record is a substring of one copy of the record, so that
// reading 27k entries makes a few allocations per entry rather than a
// dozen. The record starts with a line naming the format and the CRC-32C
// of the rest (computed by the CPU's own instruction: a SHA-256 of a
// large layer's record cost a sixth of reading it, and the record is
// derived from verified inputs, so only damage needs finding), so that a
// damaged or foreign file is refused (and the index built again) rather
// than decoded; the decoder still checks every length against what is
// left, so that no record can make it panic or allocate beyond its size.

// binIndexMagic names the format; a change to what is encoded changes it.
const binIndexMagic = "nanofs-bin-index-v2 "

// binIndexSuffix is the cache suffix of binary indexes.
const binIndexSuffix = ".idx"

// binRecord is a value kept as a binary index.
type binRecord interface {
	appendBin(w *binWriter)
	readBin(r *binReader)
}

// encodeBinIndex encodes v as a record.
func encodeBinIndex(v binRecord) ([]byte, error) {
	var w binWriter
	v.appendBin(&w)
	head := fmt.Sprintf("%s%08x\n", binIndexMagic, crc32.Checksum(w.buf, castagnoli))
	return append([]byte(head), w.buf...), nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBinIndex = errors.New("cached binary index is damaged or of another version")

// decodeBinIndex checks a record written by encodeBinIndex and decodes it
// into v.
func decodeBinIndex(raw []byte, v binRecord) error {
	line, body, ok := bytes.Cut(raw, []byte("\n"))
	if !ok {
		return errBinIndex
	}
	if string(line) != fmt.Sprintf("%s%08x", binIndexMagic, crc32.Checksum(body, castagnoli)) {
		return errBinIndex
	}
	r := binReader{s: string(body)}
	v.readBin(&r)
	if r.err == nil && r.s != "" {
		r.err = errors.New("bytes after the record")
	}
	if r.err != nil {
		return fmt.Errorf("%w: %w", errBinIndex, r.err)
	}
	return nil
}

type binWriter struct{ buf []byte }

func (w *binWriter) int(v int64)   { w.buf = binary.AppendVarint(w.buf, v) }
func (w *binWriter) uint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }
func (w *binWriter) byte(b byte)   { w.buf = append(w.buf, b) }
func (w *binWriter) str(s string) {
	w.uint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// Zones of a time, so that one reads back as it was written (tar headers
// give local times, TOCs UTC ones).
const (
	zoneZero  = iota // the zero time
	zoneUTC          // time.UTC
	zoneLocal        // time.Local
	zoneFixed        // any other: its name and offset
)

func (w *binWriter) time(t time.Time) {
	switch {
	case t.IsZero():
		w.byte(zoneZero)
		return
	case t.Location() == time.UTC:
		w.byte(zoneUTC)
	case t.Location() == time.Local:
		w.byte(zoneLocal)
	default:
		name, off := t.Zone()
		w.byte(zoneFixed)
		w.str(name)
		w.int(int64(off))
	}
	w.int(t.Unix())
	w.uint(uint64(t.Nanosecond()))
}

// binReader reads what binWriter wrote. The first error sticks: later
// reads return zero values, and the caller checks err once at the end.
type binReader struct {
	s   string
	err error
}

var errShortRecord = errors.New("record ends early")

func (r *binReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.s = ""
}

func (r *binReader) uint() uint64 {
	// binary.Uvarint's loop, on the string: no copy to bytes.
	var v uint64
	for i := 0; i < len(r.s) && i < binary.MaxVarintLen64; i++ {
		b := r.s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break // overflows 64 bits
			}
			r.s = r.s[i+1:]
			return v | uint64(b)<<(7*i)
		}
		v |= uint64(b&0x7f) << (7 * i)
	}
	r.fail(errShortRecord)
	return 0
}

func (r *binReader) int() int64 {
	u := r.uint()
	// Varint's zig-zag encoding, as binary.AppendVarint wrote it.
	return int64(u>>1) ^ -int64(u&1)
}

func (r *binReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.s == "" {
		r.fail(errShortRecord)
		return 0
	}
	b := r.s[0]
	r.s = r.s[1:]
	return b
}

func (r *binReader) str() string {
	n := r.uint()
	if n > uint64(len(r.s)) {
		r.fail(errShortRecord)
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// count reads a number of items that each take at least one byte, so
// that a damaged count cannot make the caller allocate beyond the record.
func (r *binReader) count() int {
	n := r.uint()
	if n > uint64(len(r.s)) {
		r.fail(errShortRecord)
		return 0
	}
	return int(n)
}

func (r *binReader) time() time.Time {
	var loc *time.Location
	switch zone := r.byte(); zone {
	case zoneZero:
		return time.Time{}
	case zoneUTC:
		loc = time.UTC
	case zoneLocal:
		loc = time.Local
	case zoneFixed:
		name := r.str()
		loc = time.FixedZone(name, int(r.int()))
	default:
		r.fail(fmt.Errorf("unknown time zone kind %d", zone))
		return time.Time{}
	}
	sec, nsec := r.int(), r.uint()
	if nsec >= 1e9 {
		r.fail(fmt.Errorf("bad nanoseconds %d", nsec))
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).In(loc)
}

// appendEntries writes a layer's entries. Paths are not written: the
// reader derives them from the names. A chunk's File is the entry's path
// and is written only when it differs.
func appendEntries(w *binWriter, entries []overlay.Entry) {
	w.uint(uint64(len(entries)))
	for i := range entries {
		e := &entries[i]
		w.str(e.Name)
		w.byte(e.Type)
		w.str(e.Linkname)
		w.int(e.Mode)
		w.int(int64(e.UID))
		w.int(int64(e.GID))
		w.int(e.Size)
		w.time(e.ModTime)
		w.int(e.Devmajor)
		w.int(e.Devminor)
		w.int(e.Offset)
		w.uint(uint64(len(e.Chunks)))
		for _, c := range e.Chunks {
			w.int(c.FileOffset)
			w.int(c.Size)
			w.int(c.Offset)
			w.int(c.Next)
			w.int(c.Inner)
			w.str(c.Digest)
			file := c.File
			if file == e.Path {
				file = ""
			}
			w.str(file)
		}
	}
}

// readEntries reads what appendEntries wrote, and checks every entry
// (overlay.Entry.Check, which sets its Path).
func readEntries(r *binReader) []overlay.Entry {
	n := r.count()
	entries := make([]overlay.Entry, n)
	for i := range entries {
		e := &entries[i]
		e.Name = r.str()
		e.Type = r.byte()
		e.Linkname = r.str()
		e.Mode = r.int()
		e.UID = int(r.int())
		e.GID = int(r.int())
		e.Size = r.int()
		e.ModTime = r.time()
		e.Devmajor = r.int()
		e.Devminor = r.int()
		e.Offset = r.int()
		if k := r.count(); k > 0 {
			e.Chunks = make([]overlay.Chunk, k)
			for j := range e.Chunks {
				c := &e.Chunks[j]
				c.FileOffset = r.int()
				c.Size = r.int()
				c.Offset = r.int()
				c.Next = r.int()
				c.Inner = r.int()
				c.Digest = r.str()
				c.File = r.str()
			}
		}
		if r.err != nil {
			return nil
		}
		// Entries were checked when the layer was read; their paths are
		// derived again rather than trusted from the record.
		if err := e.Check(); err != nil {
			r.fail(&overlay.EntryError{Entry: e.Name, Err: err})
			return nil
		}
		for j := range e.Chunks {
			if e.Chunks[j].File == "" {
				e.Chunks[j].File = e.Path
			}
		}
	}
	return entries
}

func (te *tocEntries) appendBin(w *binWriter) {
	w.str(te.TOCDigest)
	w.int(te.TOCOffset)
	w.int(te.BlobSize)
	appendEntries(w, te.Entries)
}

func (te *tocEntries) readBin(r *binReader) {
	te.TOCDigest = r.str()
	te.TOCOffset = r.int()
	te.BlobSize = r.int()
	te.Entries = readEntries(r)
}

func (idx *streamIndex) appendBin(w *binWriter) {
	w.int(int64(idx.Version))
	w.str(idx.Layer)
	w.int(idx.TarSize)
	w.int(idx.SegmentSize)
	w.uint(uint64(len(idx.Segments)))
	for _, s := range idx.Segments {
		w.str(s)
	}
	appendEntries(w, idx.Entries)
}

func (idx *streamIndex) readBin(r *binReader) {
	idx.Version = int(r.int())
	idx.Layer = r.str()
	idx.TarSize = r.int()
	idx.SegmentSize = r.int()
	idx.Segments = make([]string, r.count())
	for i := range idx.Segments {
		idx.Segments[i] = r.str()
	}
	idx.Entries = readEntries(r)
}
