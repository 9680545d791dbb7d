package tfs

import (
	"errors"
	"math/bits"
)

// The log frames and the value headers share one variable-length integer
// form: big-endian base-128, most significant 7-bit group first, bit 7 set on
// every byte but the last (spec §3.1). It is deliberately not LEB128, so
// encoding/binary's Uvarint cannot be used.

const maxVarintLen = 10 // 64 significant bits

var errVarintOverflow = errors.New("varint overflows 64 bits")

// varintLen is the number of bytes appendVarint emits for v.
func varintLen(v uint64) int {
	if v == 0 {
		return 1
	}
	return (bits.Len64(v) + 6) / 7
}

// appendVarint appends the minimal encoding of v.
func appendVarint(b []byte, v uint64) []byte {
	for i := varintLen(v) - 1; i >= 0; i-- {
		c := byte(v>>(7*uint(i))) & 0x7f
		if i > 0 {
			c |= 0x80
		}
		b = append(b, c)
	}
	return b
}

// byteReader is the minimal input the varint and value decoders need.
type byteReader interface {
	ReadByte() (byte, error)
}

// readVarint decodes one varint. minimal is false when the encoding carries a
// leading zero group (a valid but non-canonical form the verifier reports).
func readVarint(r byteReader) (v uint64, minimal bool, err error) {
	minimal = true
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, false, err
		}
		if i == 0 && c == 0x80 {
			minimal = false
		}
		if v>>57 != 0 {
			return 0, false, errVarintOverflow
		}
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 == 0 {
			return v, minimal, nil
		}
	}
}

// headerWords is the number of continuation bytes a v5 entry header needs
// for length n: the first byte holds 3 bits of it.
func headerWords(n uint64) int {
	b := bits.Len64(n)
	if b <= 3 {
		return 0
	}
	return (b - 3 + 6) / 7
}

// appendHeader appends a v5 entry header (spec §4.1).
func appendHeader(b []byte, immediate bool, typ byte, n uint64) []byte {
	words := headerWords(n)
	first := typ<<4 | byte(n>>(7*uint(words)))&0x7
	if immediate {
		first |= 0x80
	}
	if words > 0 {
		first |= 0x08
	}
	b = append(b, first)
	for i := words - 1; i >= 0; i-- {
		c := byte(n>>(7*uint(i))) & 0x7f
		if i > 0 {
			c |= 0x80
		}
		b = append(b, c)
	}
	return b
}

// header is a decoded entry header.
type header struct {
	immediate bool
	typ       byte
	n         uint64
	minimal   bool
}

// readHeader decodes an entry header of the given encoding version (v4 has a
// 1-bit type and 5 length bits, v5 a 3-bit type and 3 length bits).
func readHeader(r byteReader, v4 bool) (header, error) {
	a, err := r.ReadByte()
	if err != nil {
		return header{}, err
	}
	h := header{immediate: a&0x80 != 0, minimal: true}
	var cont bool
	var lenBits int
	if v4 {
		h.typ = (a >> 6) & 1
		h.n = uint64(a & 0x1f)
		cont = a&0x20 != 0
		lenBits = 5
	} else {
		h.typ = (a >> 4) & 7
		h.n = uint64(a & 0x7)
		cont = a&0x08 != 0
		lenBits = 3
	}
	if !cont {
		return h, nil
	}
	words := 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			return header{}, err
		}
		if h.n>>57 != 0 {
			return header{}, errVarintOverflow
		}
		h.n = h.n<<7 | uint64(c&0x7f)
		words++
		if c&0x80 == 0 {
			break
		}
	}
	want := 0
	if b := bits.Len64(h.n); b > lenBits {
		want = (b - lenBits + 6) / 7
	}
	h.minimal = words == want
	return h, nil
}
