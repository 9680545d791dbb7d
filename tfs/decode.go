package tfs

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// Decoded values are String, Int, Uint, Flag, Buffer, *tuple or *vector;
// nil is the "no value" that deletes an attribute. Composite values stay
// pointers because the log may share them (hard links) and update them
// later (EAV records).

// symbol is a key text in the dictionary.
type symbol string

type tuple struct {
	id    uint64 // dictionary index: stable, equal for every name of a hard link
	attrs map[string]any
}

func (t *tuple) set(k string, v any) {
	if v == nil {
		delete(t.attrs, k)
		return
	}
	if t.attrs == nil {
		t.attrs = make(map[string]any)
	}
	t.attrs[k] = v
}

type vector struct {
	id    uint64
	elems []any
}

func (v *vector) set(i uint64, x any) {
	for uint64(len(v.elems)) <= i {
		v.elems = append(v.elems, nil)
	}
	v.elems[i] = x
}

// maxDepth bounds value nesting: a 4095-byte path nests at most ~4100
// tuples, and the bound keeps hostile input from exhausting the stack.
const maxDepth = 8192

// source is what the decoder reads: a log extension in place, or a value
// reassembled from several records.
type source interface {
	byteReader
	// next returns the next n bytes, valid until the next call.
	next(n uint64) ([]byte, error)
	// remaining is the number of bytes left; nothing larger is allocated.
	remaining() uint64
	// offset is the position for messages.
	offset() int64
}

// errTruncated means a value or frame runs past its extension or record.
var errTruncated = errors.New("truncated")

// bytesSource decodes from memory.
type bytesSource struct {
	b   []byte
	pos int
}

func (s *bytesSource) ReadByte() (byte, error) {
	if s.pos >= len(s.b) {
		return 0, errTruncated
	}
	c := s.b[s.pos]
	s.pos++
	return c, nil
}

func (s *bytesSource) next(n uint64) ([]byte, error) {
	if n > s.remaining() {
		return nil, errTruncated
	}
	b := s.b[s.pos : s.pos+int(n)]
	s.pos += int(n)
	return b, nil
}

func (s *bytesSource) remaining() uint64 { return uint64(len(s.b) - s.pos) }
func (s *bytesSource) offset() int64     { return int64(s.pos) }

// decoder rebuilds the dictionary of one log across all its records.
type decoder struct {
	dict  []any // index i+1: *tuple, *vector or symbol
	v4    bool  // encoding of the value being decoded
	depth int

	// Set by Verify only: the decoder then also reports what the kernel
	// accepts but the writer rules forbid.
	chk   *checker
	where func(off int64) string
	syms  map[string]string // key text -> where it was first immediate
}

// decodeError carries the position of a decoding failure.
type decodeError struct {
	off int64
	err error
}

func (e *decodeError) Error() string { return fmt.Sprintf("byte %d: %v", e.off, e.err) }
func (e *decodeError) Unwrap() error { return e.err }

func (d *decoder) fail(off int64, format string, a ...any) error {
	return &decodeError{off: off, err: fmt.Errorf(format, a...)}
}

func (d *decoder) failErr(off int64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errTruncated
	}
	var de *decodeError
	if errors.As(err, &de) {
		return err
	}
	return &decodeError{off: off, err: err}
}

func (d *decoder) note(off int64, rule, format string, a ...any) {
	if d.chk != nil {
		d.chk.add(rule, d.where(off), format, a...)
	}
}

func (d *decoder) lookup(idx uint64) (any, bool) {
	if idx == 0 || idx > uint64(len(d.dict)) {
		return nil, false
	}
	return d.dict[idx-1], true
}

func (d *decoder) varint(src source) (uint64, error) {
	at := src.offset()
	v, minimal, err := readVarint(src)
	if err != nil {
		return 0, d.failErr(at, err)
	}
	if !minimal {
		d.note(at, "§9.1", "varint %d has a leading zero group", v)
	}
	return v, nil
}

// value decodes one value, applying tuple and vector references (EAV
// updates) to the objects they name.
func (d *decoder) value(src source) (any, error) {
	if d.depth >= maxDepth {
		return nil, d.fail(src.offset(), "values nested deeper than %d", maxDepth)
	}
	d.depth++
	defer func() { d.depth-- }()

	at := src.offset()
	h, err := readHeader(src, d.v4)
	if err != nil {
		return nil, d.failErr(at, err)
	}
	if !h.minimal {
		d.note(at, "§9.1", "entry header carries its length %d in more continuation bytes than needed", h.n)
	}
	switch h.typ {
	case typeTuple:
		var t *tuple
		if h.immediate {
			t = &tuple{id: uint64(len(d.dict) + 1)}
			d.dict = append(d.dict, t)
		} else {
			idx, err := d.varint(src)
			if err != nil {
				return nil, err
			}
			e, _ := d.lookup(idx)
			var ok bool
			if t, ok = e.(*tuple); !ok {
				return nil, d.fail(at, "reference to dictionary entry #%d, which is not a tuple", idx)
			}
		}
		if h.n > src.remaining()/2 {
			return nil, d.fail(at, "tuple of %d pairs cannot fit in the %d bytes left", h.n, src.remaining())
		}
		for i := uint64(0); i < h.n; i++ {
			k, err := d.key(src)
			if err != nil {
				return nil, err
			}
			v, err := d.value(src)
			if err != nil {
				return nil, err
			}
			t.set(k, v)
		}
		return t, nil

	case typeVector:
		var v *vector
		if h.immediate {
			v = &vector{id: uint64(len(d.dict) + 1)}
			d.dict = append(d.dict, v)
		} else {
			idx, err := d.varint(src)
			if err != nil {
				return nil, err
			}
			e, _ := d.lookup(idx)
			var ok bool
			if v, ok = e.(*vector); !ok {
				return nil, d.fail(at, "reference to dictionary entry #%d, which is not a vector", idx)
			}
		}
		if h.n > src.remaining() {
			return nil, d.fail(at, "vector of %d elements cannot fit in the %d bytes left", h.n, src.remaining())
		}
		for i := uint64(0); i < h.n; i++ {
			x, err := d.value(src)
			if err != nil {
				return nil, err
			}
			v.set(i, x)
		}
		return v, nil

	case typeInteger:
		if !h.immediate {
			return nil, d.fail(at, "integer reference")
		}
		m, err := d.varint(src)
		if err != nil {
			return nil, err
		}
		if h.n > 1 {
			d.note(at, "§4.2", "integer sign field %d (0 or 1 expected)", h.n)
		}
		if h.n > 0 {
			if m > 1<<63 {
				return nil, d.fail(at, "integer -%d out of range", m)
			}
			return Int(-int64(m)), nil
		}
		if m > math.MaxInt64 {
			return Uint(m), nil
		}
		return Int(m), nil

	case typeString:
		if !h.immediate {
			d.note(at, "§9.5", "string reference (tag-4 reference) to #%d", h.n)
			return d.referenced(at, h.n)
		}
		b, err := src.next(h.n)
		if err != nil {
			return nil, d.failErr(at, err)
		}
		return String(b), nil

	case typeBuffer:
		if h.n == 0 {
			return nil, nil // "no value": removes the attribute
		}
		if !h.immediate {
			d.note(at, "§9.5", "untyped buffer reference to #%d", h.n)
			return d.referenced(at, h.n)
		}
		b, err := src.next(h.n)
		if err != nil {
			return nil, d.failErr(at, err)
		}
		if h.n == 1 && b[0] == 0 {
			return Flag{}, nil
		}
		if !d.v4 {
			d.note(at, "§9.5", "untyped buffer value %q (write a string)", truncate(b))
		}
		return Buffer(slices.Clone(b)), nil
	}
	return nil, d.fail(at, "invalid type tag %d", h.typ)
}

// referenced resolves the reference forms no writer should produce: the
// kernel returns whatever the dictionary holds.
func (d *decoder) referenced(at int64, idx uint64) (any, error) {
	e, ok := d.lookup(idx)
	if !ok {
		return nil, d.fail(at, "reference to undefined dictionary entry #%d", idx)
	}
	if s, ok := e.(symbol); ok {
		return Buffer(s), nil
	}
	return e, nil
}

// key decodes an attribute name. The kernel ignores the key's type tag.
func (d *decoder) key(src source) (string, error) {
	at := src.offset()
	h, err := readHeader(src, d.v4)
	if err != nil {
		return "", d.failErr(at, err)
	}
	if !h.minimal {
		d.note(at, "§9.1", "key header carries its length %d in more continuation bytes than needed", h.n)
	}
	if h.typ != typeBuffer {
		d.note(at, "§9.5", "key with type tag %d (keys are tag-0 buffers)", h.typ)
	}
	if !h.immediate {
		e, _ := d.lookup(h.n)
		s, ok := e.(symbol)
		if !ok {
			return "", d.fail(at, "key reference to dictionary entry #%d, which is not a symbol", h.n)
		}
		return string(s), nil
	}
	b, err := src.next(h.n)
	if err != nil {
		return "", d.failErr(at, err)
	}
	s := string(b)
	d.dict = append(d.dict, symbol(s))
	if d.chk != nil {
		if first, dup := d.syms[s]; dup {
			d.note(at, "§9.5", "key %q is immediate again (first at %s); later uses must be references", truncate(b), first)
		} else {
			d.syms[s] = d.where(at)
		}
	}
	return s, nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
