package tfs

import "fmt"

// Log geometry (spec §1, §3).
const (
	SectorSize = 512

	extSectors = 1024                    // every log extension but sector 0
	extBytes   = extSectors * SectorSize // 512 KiB
	// extSlack is kept free at the end of each extension: the largest LINK
	// record (21 bytes) plus END_OF_LOG, so the kernel can always close it.
	extSlack = 22

	// maxExtentSectors is the kernel's largest extent (32 MiB); larger
	// files are split like mkfs does.
	maxExtentSectors = 65536

	// MaxLabelLen is the longest volume label in bytes (32 with its NUL).
	MaxLabelLen = 31

	logVersion = 5
)

// Log record codes (spec §3.3).
const (
	recEndOfLog       = 0x01
	recTupleAvailable = 0x02
	recTupleExtended  = 0x03
	recEndOfSegment   = 0x04
	recExtensionLink  = 0x05
)

var magic = []byte("NVMTFS")

// appendExtHeader appends a log extension header (spec §3.2) for an
// extension of the given size; sector 0 also carries the UUID and label.
func appendExtHeader(b []byte, sectors uint64) []byte {
	b = append(b, magic...)
	b = appendVarint(b, logVersion)
	return appendVarint(b, sectors)
}

// sector0 is the first log extension: header, UUID, label, a link to the
// first 1024-sector extension and END_OF_LOG (spec §9 item 2).
func sector0(uuid [16]byte, label string, firstExt int64) []byte {
	b := make([]byte, 0, SectorSize)
	b = appendExtHeader(b, 1)
	b = append(b, uuid[:]...)
	b = append(b, label...)
	b = append(b, 0)
	b = append(b, recExtensionLink)
	b = appendVarint(b, uint64(firstExt))
	b = appendVarint(b, extSectors)
	b = append(b, recEndOfLog)
	return b[:SectorSize]
}

// logWriter frames one encoded value into a chain of contiguous 1024-sector
// extensions: TUPLE_AVAILABLE with the exact total, TUPLE_EXTENDED pieces
// across extensions, LINK+END_OF_LOG closing every full extension and
// END_OF_LOG ending the log, always leaving extSlack bytes free.
type logWriter struct {
	emit      func(sector int64, ext []byte) error
	buf       []byte
	sector    int64 // first sector of the extension in buf
	pos       int
	total     uint64
	remaining uint64 // value bytes not yet placed
	chunk     int    // bytes left in the current frame
}

func newLogWriter(first int64, total uint64, emit func(int64, []byte) error) *logWriter {
	l := &logWriter{emit: emit, buf: make([]byte, extBytes), sector: first, total: total, remaining: total}
	l.pos = len(appendExtHeader(l.buf[:0], extSectors))
	return l
}

// link closes the current extension with a LINK to the next one (placed
// right after it) and starts that one.
func (l *logWriter) link() error {
	next := l.sector + extSectors
	b := l.buf[:l.pos]
	b = append(b, recExtensionLink)
	b = appendVarint(b, uint64(next))
	b = appendVarint(b, extSectors)
	b = append(b, recEndOfLog)
	if err := l.emit(l.sector, l.buf); err != nil {
		return err
	}
	clear(l.buf)
	l.sector = next
	l.pos = len(appendExtHeader(l.buf[:0], extSectors))
	return nil
}

// startFrame opens the next TUPLE_AVAILABLE or TUPLE_EXTENDED frame, moving
// to a new extension when this one has no room for a header and one byte.
func (l *logWriter) startFrame() error {
	limit := extBytes - extSlack
	first := l.remaining == l.total
	for {
		hdr := 1
		if first {
			hdr += varintLen(l.total)
		}
		room := limit - l.pos - hdr
		seg := 0
		if room >= 2 {
			seg = room - varintLen(uint64(room))
			if uint64(seg) > l.remaining {
				seg = int(l.remaining)
			}
		}
		if seg >= 1 {
			b := l.buf[:l.pos]
			if first {
				b = append(b, recTupleAvailable)
				b = appendVarint(b, l.total)
			} else {
				b = append(b, recTupleExtended)
			}
			b = appendVarint(b, uint64(seg))
			l.pos = len(b)
			l.chunk = seg
			return nil
		}
		if err := l.link(); err != nil {
			return err
		}
	}
}

// write places the next bytes of the value.
func (l *logWriter) write(p []byte) error {
	for len(p) > 0 {
		if uint64(len(p)) > l.remaining {
			return fmt.Errorf("tfs: internal error: value longer than its announced %d bytes", l.total)
		}
		if l.chunk == 0 {
			if err := l.startFrame(); err != nil {
				return err
			}
		}
		n := copy(l.buf[l.pos:l.pos+min(l.chunk, len(p))], p)
		l.pos += n
		l.chunk -= n
		l.remaining -= uint64(n)
		p = p[n:]
	}
	return nil
}

// finish ends the log and returns the sector after the last extension.
func (l *logWriter) finish() (int64, error) {
	if l.remaining != 0 || l.chunk != 0 {
		return 0, fmt.Errorf("tfs: internal error: value %d bytes short of its announced %d", l.remaining, l.total)
	}
	l.buf[l.pos] = recEndOfLog
	if err := l.emit(l.sector, l.buf); err != nil {
		return 0, err
	}
	return l.sector + extSectors, nil
}
