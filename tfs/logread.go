package tfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// logExt is one log extension: sector 0 (1 sector) or a linked one.
type logExt struct {
	start, count int64 // in sectors
	v4           bool
	// terminator is the offset of the LINK or END_OF_LOG closing it.
	terminator int64
}

// volumeLog is everything the log says.
type volumeLog struct {
	version int // of sector 0
	uuid    [16]byte
	label   string
	exts    []logExt // chain order; exts[0] is sector 0
	dict    []any
	root    *tuple
}

// extSource reads a log extension through a small buffer, so that a
// (possibly hostile) extension length never turns into an allocation.
type extSource struct {
	r   *bufio.Reader
	ext logExt
	n   int64
	pos int64
}

func newExtSource(vol io.ReaderAt, e logExt) *extSource {
	n := e.count * SectorSize
	return &extSource{r: bufio.NewReaderSize(io.NewSectionReader(vol, e.start*SectorSize, n), int(min(n, 8<<10))), ext: e, n: n}
}

func (s *extSource) ReadByte() (byte, error) {
	if s.pos >= s.n {
		return 0, errTruncated
	}
	c, err := s.r.ReadByte()
	if err != nil {
		return 0, ioErr(err)
	}
	s.pos++
	return c, nil
}

func (s *extSource) next(n uint64) ([]byte, error) {
	if n > s.remaining() {
		return nil, errTruncated
	}
	var b []byte
	var err error
	if n <= uint64(s.r.Size()) {
		b, err = s.r.Peek(int(n))
		if err == nil {
			_, err = s.r.Discard(int(n))
		}
	} else {
		// Grow with the bytes actually read, not with the claimed length.
		for left := n; left > 0 && err == nil; {
			k := min(left, 64<<10)
			b = append(b, make([]byte, k)...)
			_, err = io.ReadFull(s.r, b[len(b)-int(k):])
			left -= k
		}
	}
	if err != nil {
		return nil, ioErr(err)
	}
	s.pos += int64(n)
	return b, nil
}

func (s *extSource) remaining() uint64 { return uint64(s.n - s.pos) }
func (s *extSource) offset() int64     { return s.pos }

// errShortImage: the image ends before data it references.
var errShortImage = errors.New("image ends early")

func ioErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errShortImage
	}
	return err
}

// logError locates a failure to read the log; rule is the spec item it
// breaks when one applies.
type logError struct {
	where string
	rule  string
	err   error
}

func (e *logError) Error() string { return e.where + ": " + e.err.Error() }
func (e *logError) Unwrap() error { return e.err }

func extWhere(e logExt, off int64) string {
	if e.start == 0 {
		return fmt.Sprintf("sector 0, byte %d", off)
	}
	return fmt.Sprintf("log extension at sector %d, byte %d", e.start, off)
}

// readLog follows the log chain of the volume and replays its records the
// way the kernel does (spec §3). With chk set it also reports every
// departure from the writer rules of §9; a fatal error still ends it.
func readLog(vol io.ReaderAt, size int64, chk *checker) (*volumeLog, error) {
	if size < SectorSize {
		return nil, fmt.Errorf("volume of %d bytes is smaller than one sector", size)
	}
	sectors := size / SectorSize
	lg := &volumeLog{}
	d := &decoder{chk: chk}
	if chk != nil {
		d.syms = make(map[string]string)
	}
	cur := logExt{start: 0, count: 1}
	var (
		pending      []byte // a value arriving in pieces
		pendingTotal uint64
		pendingOpen  bool
		pendingWhere string
		records      int
		ended        bool
	)
	for !ended {
		src := newExtSource(vol, cur)
		fail := func(off int64, format string, a ...any) error {
			return &logError{where: extWhere(cur, off), err: fmt.Errorf(format, a...)}
		}
		failErr := func(off int64, err error) error {
			return &logError{where: extWhere(cur, off), err: err}
		}
		if err := readExtHeader(src, lg, &cur, chk); err != nil {
			return nil, err
		}
		lg.exts = append(lg.exts, cur)
		e := &lg.exts[len(lg.exts)-1]
		frames := 0
	frames:
		for {
			at := src.offset()
			c, err := src.ReadByte()
			if err != nil {
				return nil, fail(at, "log runs past the end of its extension without LINK or END_OF_LOG")
			}
			frames++
			switch c {
			case recEndOfLog:
				e.terminator = at
				if cur.start == 0 && chk != nil {
					chk.add("§9.2", extWhere(cur, at), "sector 0 ends the log instead of linking to a 1024-sector extension")
				}
				ended = true
				break frames
			case recEndOfSegment:
				continue
			case recExtensionLink:
				start, err := d.varintPlain(src)
				if err != nil {
					return nil, failErr(at, err)
				}
				count, err := d.varintPlain(src)
				if err != nil {
					return nil, failErr(at, err)
				}
				e.terminator = at
				if count == 0 {
					return nil, fail(at, "link to a zero-length extension")
				}
				if start >= uint64(sectors) || count > uint64(sectors)-start {
					return nil, &logError{where: extWhere(cur, at), rule: "§9.3", err: fmt.Errorf("link to sectors %d+%d, outside the %d-sector volume", start, count, sectors)}
				}
				next := logExt{start: int64(start), count: int64(count)}
				for _, o := range lg.exts {
					if next.start < o.start+o.count && o.start < next.start+next.count {
						return nil, &logError{where: extWhere(cur, at), rule: "§9.3", err: fmt.Errorf("link to sectors %d+%d, overlapping the log extension at sector %d", start, count, o.start)}
					}
				}
				if chk != nil {
					checkLinkPlacement(chk, cur, src, at, frames, count)
				}
				cur = next
				break frames
			case recTupleAvailable:
				if pendingOpen {
					return nil, fail(at, "TUPLE_AVAILABLE while %d bytes of the previous value are still due", pendingTotal-uint64(len(pending)))
				}
				total, err := d.varintPlain(src)
				if err != nil {
					return nil, failErr(at, err)
				}
				seg, err := d.varintPlain(src)
				if err != nil {
					return nil, failErr(at, err)
				}
				if seg > total || seg >= src.remaining() {
					return nil, fail(at, "TUPLE_AVAILABLE of %d bytes (value %d bytes) does not fit the %d bytes left in the extension", seg, total, src.remaining())
				}
				if cur.start == 0 && chk != nil {
					chk.add("§9.2", extWhere(cur, at), "sector 0 carries a tuple record (it should hold only LINK and END_OF_LOG)")
				}
				if seg < total {
					b, err := src.next(seg)
					if err != nil {
						return nil, failErr(at, err)
					}
					pending = append(pending[:0], b...)
					pendingTotal, pendingOpen, pendingWhere = total, true, extWhere(cur, at)
					continue
				}
				// The kernel decodes a complete value in place and resumes
				// framing wherever the decoder stopped.
				start := src.offset()
				d.v4 = cur.v4
				d.where = func(off int64) string { return extWhere(cur, off) }
				v, err := d.value(src)
				if err != nil {
					return nil, valueErr(d.where, err)
				}
				if chk != nil {
					checkRecord(chk, extWhere(cur, at), records, v, uint64(src.offset()-start), total)
				}
				records++
			case recTupleExtended:
				seg, err := d.varintPlain(src)
				if err != nil {
					return nil, failErr(at, err)
				}
				if !pendingOpen || seg > pendingTotal-uint64(len(pending)) {
					return nil, fail(at, "TUPLE_EXTENDED of %d bytes exceeds the %d bytes still due", seg, pendingTotal-uint64(len(pending)))
				}
				b, err := src.next(seg)
				if err != nil {
					return nil, failErr(at, err)
				}
				pending = append(pending, b...)
				if uint64(len(pending)) < pendingTotal {
					continue
				}
				pendingOpen = false
				where := pendingWhere
				bs := &bytesSource{b: pending}
				d.v4 = cur.v4
				d.where = func(off int64) string { return fmt.Sprintf("value of the record at %s, value byte %d", where, off) }
				v, err := d.value(bs)
				if err != nil {
					return nil, valueErr(d.where, err)
				}
				if chk != nil {
					checkRecord(chk, where, records, v, uint64(bs.pos), pendingTotal)
				}
				records++
			default:
				return nil, fail(at, "unknown frame 0x%02x", c)
			}
		}
		if chk != nil {
			checkSlack(chk, lg.exts[len(lg.exts)-1])
		}
	}
	if chk != nil {
		if pendingOpen {
			chk.add("§9.6", pendingWhere, "log ends while %d bytes of this value are still due", pendingTotal-uint64(len(pending)))
		}
	}
	lg.dict = d.dict
	if len(d.dict) == 0 {
		return nil, errors.New("the log holds no root tuple")
	}
	root, ok := d.dict[0].(*tuple)
	if !ok {
		return nil, errors.New("dictionary entry #1 (the root) is not a tuple")
	}
	lg.root = root
	return lg, nil
}

// valueErr locates a decoding failure inside the value.
func valueErr(where func(int64) string, err error) error {
	var de *decodeError
	if errors.As(err, &de) {
		return &logError{where: where(de.off), rule: "§4", err: de.err}
	}
	return &logError{where: where(0), rule: "§4", err: err}
}

// varintPlain reads a framing varint, reporting non-minimal forms.
func (d *decoder) varintPlain(src *extSource) (uint64, error) {
	at := src.offset()
	v, minimal, err := readVarint(src)
	if err != nil {
		if errors.Is(err, errShortImage) {
			return 0, err
		}
		return 0, fmt.Errorf("framing varint: %w", err)
	}
	if !minimal && d.chk != nil {
		d.chk.add("§9.1", extWhere(src.ext, at), "framing varint %d has a leading zero group", v)
	}
	return v, nil
}

// readExtHeader parses an extension header (spec §3.2).
func readExtHeader(src *extSource, lg *volumeLog, cur *logExt, chk *checker) error {
	where := extWhere(*cur, 0)
	m, err := src.next(uint64(len(magic)))
	if err != nil {
		return &logError{where: where, err: fmt.Errorf("reading header: %w", err)}
	}
	if !bytes.Equal(m, magic) {
		return &logError{where: where, err: fmt.Errorf("no TFS magic (found % x)", m)}
	}
	version, _, err := readVarint(src)
	if err != nil {
		return &logError{where: where, err: fmt.Errorf("reading version: %w", err)}
	}
	switch version {
	case 4:
		cur.v4 = true
	case logVersion:
	default:
		return &logError{where: where, err: fmt.Errorf("unsupported TFS version %d", version)}
	}
	size, _, err := readVarint(src)
	if err != nil {
		return &logError{where: where, err: fmt.Errorf("reading size: %w", err)}
	}
	rule := "§9.3"
	if cur.start == 0 {
		rule = "§9.2"
		lg.version = int(version)
	}
	if chk != nil {
		if version != logVersion {
			chk.add(rule, where, "TFS version %d (writers must emit version 5)", version)
		}
		if cur.start == 0 && size != 1 {
			chk.add(rule, where, "header size %d (sector 0 has size 1)", size)
		}
		if cur.start != 0 && (size != extSectors || uint64(cur.count) != size) {
			chk.add(rule, where, "header size %d for an extension linked with %d sectors (both must be %d)", size, cur.count, extSectors)
		}
	}
	if cur.start != 0 {
		return nil
	}
	uuid, err := src.next(16)
	if err != nil {
		return &logError{where: where, err: fmt.Errorf("reading UUID: %w", err)}
	}
	copy(lg.uuid[:], uuid)
	label := make([]byte, 0, MaxLabelLen+1)
	for {
		c, err := src.ReadByte()
		if err != nil {
			return &logError{where: where, err: fmt.Errorf("reading label: %w", err)}
		}
		if c == 0 {
			break
		}
		if len(label) == MaxLabelLen {
			return &logError{where: where, err: fmt.Errorf("label is not NUL-terminated within %d bytes", MaxLabelLen+1)}
		}
		label = append(label, c)
	}
	lg.label = string(label)
	return nil
}
