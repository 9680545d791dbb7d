package tfs

import (
	"fmt"
	"strconv"
)

// Value type tags (spec §4.2).
const (
	typeBuffer  = 0
	typeTuple   = 1
	typeVector  = 2
	typeInteger = 3
	typeString  = 4
)

// encoder writes v5 values while keeping the dictionary exactly as a reader
// rebuilds it (spec §4.3): every immediate tuple, vector and key symbol takes
// the next index, and each key text is emitted immediate once per log.
// Output is buffered and handed to sink in pieces, so one encoder can count
// the bytes of a value (sink == nil) and a second, fresh one can stream the
// identical bytes into the log.
type encoder struct {
	buf  []byte
	sink func([]byte) error
	n    uint64            // bytes produced so far
	next uint64            // next dictionary index
	syms map[string]uint64 // key text -> dictionary index
	err  error
}

const encoderFlush = 64 << 10

func newEncoder(sink func([]byte) error) *encoder {
	return &encoder{sink: sink, next: 1, syms: make(map[string]uint64)}
}

func (e *encoder) grew() {
	if len(e.buf) >= encoderFlush {
		e.flush()
	}
}

func (e *encoder) flush() {
	e.n += uint64(len(e.buf))
	if e.sink != nil && e.err == nil && len(e.buf) > 0 {
		e.err = e.sink(e.buf)
	}
	e.buf = e.buf[:0]
}

// size is the number of bytes encoded so far.
func (e *encoder) size() uint64 { return e.n + uint64(len(e.buf)) }

// tuple starts an immediate tuple of n pairs and returns its index.
func (e *encoder) tuple(n int) uint64 {
	e.buf = appendHeader(e.buf, true, typeTuple, uint64(n))
	idx := e.next
	e.next++
	e.grew()
	return idx
}

// tupleRef emits a reference to tuple idx followed by n pairs to set on it
// (n == 0 for a hard link, spec §5.4).
func (e *encoder) tupleRef(idx uint64, n int) {
	e.buf = appendHeader(e.buf, false, typeTuple, uint64(n))
	e.buf = appendVarint(e.buf, idx)
	e.grew()
}

// vector starts an immediate vector of n elements.
func (e *encoder) vector(n int) {
	e.buf = appendHeader(e.buf, true, typeVector, uint64(n))
	e.next++
	e.grew()
}

// symbol emits a key: immediate the first time its text appears in the log,
// a reference to that index afterwards.
func (e *encoder) symbol(s string) {
	if idx, ok := e.syms[s]; ok {
		e.buf = appendHeader(e.buf, false, typeBuffer, idx)
	} else {
		e.buf = appendHeader(e.buf, true, typeBuffer, uint64(len(s)))
		e.buf = append(e.buf, s...)
		e.syms[s] = e.next
		e.next++
	}
	e.grew()
}

func (e *encoder) str(s string) {
	e.buf = appendHeader(e.buf, true, typeString, uint64(len(s)))
	e.buf = append(e.buf, s...)
	e.grew()
}

func (e *encoder) uint(v uint64) {
	e.buf = append(e.buf, 0xB0)
	e.buf = appendVarint(e.buf, v)
	e.grew()
}

func (e *encoder) int(v int64) {
	if v >= 0 {
		e.uint(uint64(v))
		return
	}
	e.buf = append(e.buf, 0xB1)
	e.buf = appendVarint(e.buf, uint64(-(v+1))+1)
	e.grew()
}

// flag emits the null value `81 00`.
func (e *encoder) flag() {
	e.buf = append(e.buf, 0x81, 0x00)
	e.grew()
}

// value emits a manifest value; callers validate it with checkWritable.
func (e *encoder) value(v Value) {
	switch v := v.(type) {
	case String:
		e.str(string(v))
	case Int:
		e.int(int64(v))
	case Uint:
		e.uint(uint64(v))
	case Flag:
		e.flag()
	case Vector:
		e.vector(len(v))
		for _, x := range v {
			e.value(x)
		}
	case Tuple:
		e.tuple(len(v))
		for _, k := range sortedKeys(v) {
			e.symbol(k)
			e.value(v[k])
		}
	default:
		// unreachable after checkWritable; keep the encoding well formed
		if e.err == nil {
			e.err = fmt.Errorf("cannot encode %T", v)
		}
		e.flag()
	}
}

// extentKey is the symbol naming an extent: its first file block in decimal.
func extentKey(block uint64) string { return strconv.FormatUint(block, 10) }
