package tfs

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// The examples of spec §3.1 and §4.1.
func TestVarintExamples(t *testing.T) {
	for _, tc := range []struct {
		v    uint64
		want string
	}{
		{0, "00"}, {5, "05"}, {1024, "8800"}, {3073, "9801"}, {70000, "84a270"},
		{1<<64 - 1, "81ffffffffffffffff7f"},
	} {
		got := appendVarint(nil, tc.v)
		assert.Equal(t, tc.want, hex.EncodeToString(got), "varint %d", tc.v)
		assert.Equal(t, len(got), varintLen(tc.v))
		back, minimal, err := readVarint(bytes.NewReader(got))
		require.NoError(t, err)
		assert.True(t, minimal)
		assert.Equal(t, tc.v, back)
	}
}

func TestVarintErrors(t *testing.T) {
	_, _, err := readVarint(bytes.NewReader(unhex(t, "82ffffffffffffffff7f")))
	assert.ErrorIs(t, err, errVarintOverflow)
	_, minimal, err := readVarint(bytes.NewReader(unhex(t, "8005")))
	require.NoError(t, err)
	assert.False(t, minimal, "leading zero group")
	_, _, err = readVarint(bytes.NewReader(unhex(t, "88")))
	assert.Error(t, err)
}

func TestHeaderExamples(t *testing.T) {
	for _, tc := range []struct {
		name      string
		immediate bool
		typ       byte
		n         uint64
		want      string
	}{
		{"immediate tuple with 10 entries", true, typeTuple, 10, "980a"},
		{"symbol reference #23", false, typeBuffer, 23, "0817"},
		{"immediate 1000-byte buffer", true, typeBuffer, 1000, "8f68"},
		{"integer", true, typeInteger, 0, "b0"},
		{"tuple of 2", true, typeTuple, 2, "92"},
		{"string of 3", true, typeString, 3, "c3"},
		{"huge", true, typeString, 1<<64 - 1, "c9" + "ffffffffffffffff7f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := appendHeader(nil, tc.immediate, tc.typ, tc.n)
			assert.Equal(t, tc.want, hex.EncodeToString(got))
			h, err := readHeader(bytes.NewReader(got), false)
			require.NoError(t, err)
			assert.Equal(t, header{immediate: tc.immediate, typ: tc.typ, n: tc.n, minimal: true}, h)
		})
	}
}

// workedExample is the 85-byte value of spec §4.6.
const workedExample = "92 88 08" + "6368696c6472656e" + // root #1, "children" #2
	"91 82 6877" + // #3, "hw" #4
	"92 88 0a 66696c656c656e677468 b0 0c" + // #5, "filelength" #6, 12
	"87 657874656e7473 91 81 30 93" + // "extents" #7, #8, "0" #9, #10
	"86 6f6666736574 b0 01" + // "offset" #11, 1
	"86 6c656e677468 b0 01" + // "length" #12, 1
	"88 09 616c6c6f6361746564 b0 01" + // "allocated" #13, 1
	"87 70726f6772616d c3 2f6877" // "program" #14, "/hw"

func TestWorkedExample(t *testing.T) {
	want := unhex(t, workedExample)
	require.Len(t, want, 85)

	img := build(t, func(w *Writer) {
		require.NoError(t, w.AddFile("hw", 12, strings.NewReader("hello world\n")))
		require.NoError(t, w.SetProgram("/hw"))
	})
	// Data at sector 1, the first log extension right after it.
	assert.Equal(t, "hello world\n", string(img.b[512:524]))
	assert.True(t, allZero(img.b[524:1024]), "tail padding")
	ext := img.b[2*SectorSize:]
	assert.Equal(t, "4e564d54465305"+"8800", hex.EncodeToString(ext[:9]), "extension header: magic, v5, 1024 sectors")
	framed := append(append(unhex(t, "025555"), want...), recEndOfLog)
	assert.Equal(t, hex.EncodeToString(framed), hex.EncodeToString(ext[9:9+len(framed)]))
	assert.True(t, allZero(ext[9+len(framed):extBytes]))

	// Sector 0: header, UUID, empty label, LINK(2, 1024), END_OF_LOG.
	s0 := img.b[:SectorSize]
	assert.Equal(t, "4e564d5446530501", hex.EncodeToString(s0[:8]))
	assert.Equal(t, "00"+"05028800"+"01", hex.EncodeToString(s0[24:30]))
	assert.True(t, allZero(s0[31:]))
}

// The hard-link update record of §4.6 applies to the example tree.
func TestWorkedExampleUpdate(t *testing.T) {
	update := unhex(t, "11 05 85 6e6c696e6b b0 02")
	require.Len(t, update, 10)
	d := &decoder{}
	_, err := d.value(&bytesSource{b: unhex(t, workedExample)})
	require.NoError(t, err)
	_, err = d.value(&bytesSource{b: update})
	require.NoError(t, err)
	hw := d.dict[4].(*tuple) // #5
	assert.Equal(t, Int(2), hw.attrs["nlink"])
	assert.Equal(t, Int(12), hw.attrs["filelength"])
}

func TestEncodeValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    Value
		want string
	}{
		{"flag", Flag{}, "8100"},
		{"string", String("t"), "c174"},
		{"zero", Int(0), "b000"},
		{"negative", Int(-3), "b103"},
		{"min int64", Int(-1 << 63), "b1" + "81808080808080808000"},
		{"uint", Uint(1 << 63), "b0" + "81808080808080808000"},
		{"vector", Strings("a", "b"), "a2c161c162"},
		{"tuple sorted", Tuple{"b": Int(1), "a": Int(2)}, "92" + "8161b002" + "8162b001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEncoder(nil)
			e.value(tc.v)
			assert.Equal(t, tc.want, hex.EncodeToString(e.buf))
			d := &decoder{}
			got, err := d.value(&bytesSource{b: e.buf})
			require.NoError(t, err)
			assert.Equal(t, tc.v, export(got, map[any]bool{}))
		})
	}
}
