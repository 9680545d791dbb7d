package tfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encode runs f on a fresh encoder and returns its bytes.
func encode(f func(e *encoder)) []byte {
	var out []byte
	e := newEncoder(func(b []byte) error { out = append(out, b...); return nil })
	f(e)
	e.flush()
	return out
}

// rec frames a complete value as one TUPLE_AVAILABLE record.
func rec(v []byte) []byte {
	b := []byte{recTupleAvailable}
	b = appendVarint(b, uint64(len(v)))
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

const rawData = 1 + extSectors // first data sector of rawImage

// rawImage lays out a volume by hand: sector 0 linking to one extension at
// sector 1 holding frames, data from sector rawData, 1 MiB free after it.
func rawImage(frames, data []byte) *image {
	img := &image{}
	img.WriteAt(sector0([16]byte{1}, "raw", 1), 0)
	ext := appendExtHeader(make([]byte, 0, extBytes), extSectors)
	ext = append(ext, frames...)
	img.WriteAt(ext[:extBytes], SectorSize)
	img.WriteAt(data, rawData*SectorSize)
	end := (rawData+DataSize(int64(len(data)))/SectorSize)*SectorSize + DefaultFreeSpace
	img.WriteAt(make([]byte, SectorSize), end-SectorSize)
	return img
}

// fileTuple encodes a one-extent regular file.
func fileTuple(e *encoder, length, offset, sectors uint64) {
	e.tuple(2)
	e.symbol("filelength")
	e.uint(length)
	e.symbol("extents")
	e.tuple(1)
	e.symbol("0")
	e.tuple(3)
	e.symbol("offset")
	e.uint(offset)
	e.symbol("length")
	e.uint(sectors)
	e.symbol("allocated")
	e.uint(sectors)
}

// rawSym emits an immediate key even if its text was used before.
func rawSym(e *encoder, s string) {
	e.buf = appendHeader(e.buf, true, typeBuffer, uint64(len(s)))
	e.buf = append(e.buf, s...)
	e.next++
}

// goodRoot is root {children:{f: 5-byte file at rawData}, program:"/f"}
// plus whatever extra pairs add.
func goodRoot(extra int, add func(e *encoder)) []byte {
	return encode(func(e *encoder) {
		e.tuple(2 + extra)
		e.symbol("children")
		e.tuple(1)
		e.symbol("f")
		fileTuple(e, 5, rawData, 1)
		e.symbol("program")
		e.str("/f")
		if add != nil {
			add(e)
		}
	})
}

func goodFrames() []byte { return append(rec(goodRoot(0, nil)), recEndOfLog) }

func TestRawImageIsClean(t *testing.T) {
	img := rawImage(goodFrames(), []byte("hello"))
	require.NoError(t, Verify(img, img.size()))
	f := open(t, img)
	got, err := f.ReadFile("f")
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))
	assert.Equal(t, "raw", f.Label())
}

func problemsOf(t *testing.T, img *image) []Problem {
	t.Helper()
	err := Verify(img, img.size())
	var ve *VerifyError
	require.ErrorAs(t, err, &ve, "expected problems, got %v", err)
	return ve.Problems
}

func TestVerifyCatches(t *testing.T) {
	data := []byte("hello")
	patched := func(patch func(b []byte)) func() *image {
		return func() *image {
			img := rawImage(goodFrames(), data)
			patch(img.b)
			return img
		}
	}
	raw := func(frames []byte) func() *image { return func() *image { return rawImage(frames, data) } }
	built := func(setup func(w *Writer), opts ...Option) func() *image {
		return func() *image {
			img := &image{}
			w, err := NewWriter(img, opts...)
			if err != nil {
				panic(err)
			}
			setup(w)
			if err := w.Close(); err != nil {
				panic(err)
			}
			return img
		}
	}
	cases := []struct {
		name string
		img  func() *image
		rule string
		what string
	}{
		// §9.1 big-endian base-128, minimal forms
		{"non-minimal framing varint", raw(func() []byte {
			v := goodRoot(0, nil)
			b := []byte{recTupleAvailable, 0x80, byte(len(v)), byte(len(v))}
			return append(append(b, v...), recEndOfLog)
		}()), "§9.1", "leading zero group"},
		{"non-minimal entry header", raw(func() []byte {
			v := goodRoot(0, nil)
			v = append([]byte{0x98, 0x02}, v[1:]...) // root tuple of 2 pairs, long form
			return append(rec(v), recEndOfLog)
		}()), "§9.1", "more continuation bytes"},
		{"little-endian (LEB128) varint", raw(func() []byte {
			v := goodRoot(1, func(e *encoder) { e.symbol("n"); e.buf = append(e.buf, 0xB0, 0x80, 0x01) }) // LEB128 of 128 reads as 1 with a leading zero group
			return append(rec(v), recEndOfLog)
		}()), "§9.1", "leading zero group"},

		// §9.2 sector 0
		{"sector 0 version 4", patched(func(b []byte) { b[6] = 4 }), "§9.2", "version 4"},
		{"sector 0 size", patched(func(b []byte) { b[7] = 2 }), "§9.2", "header size 2"},
		{"sector 0 link count", patched(func(b []byte) {
			s0 := sector0([16]byte{1}, "raw", 1)
			copy(b, s0[:len(s0)])
			i := 6 + 2 + 16 + 4                                               // magic, version, size, uuid, "raw\0"
			copy(b[i:], []byte{recExtensionLink, 1, 0x84, 0x00, recEndOfLog}) // 512 sectors
		}), "§9.2", "512-sector"},
		{"sector 0 without END_OF_LOG", patched(func(b []byte) { b[6+2+16+4+4] = 0 }), "§9.2", "not followed by END_OF_LOG"},
		{"tuple record in sector 0", func() *image {
			img := rawImage(append(rec(encode(func(e *encoder) { e.tuple(0) })), recEndOfLog), data)
			s0 := appendExtHeader(nil, 1)
			s0 = append(s0, make([]byte, 16)...)
			s0 = append(s0, 0)
			s0 = append(s0, rec(goodRoot(0, nil))...)
			s0 = append(s0, recExtensionLink, 1, 0x88, 0x00, recEndOfLog)
			copy(img.b, s0)
			return img
		}, "§9.2", "carries a tuple record"},

		// §9.3 extensions and overlaps
		{"extension header size", patched(func(b []byte) { b[SectorSize+7], b[SectorSize+8] = 0x87, 0x68 }), "§9.3", "header size 1000"},
		{"extension slack", raw(func() []byte {
			pad := extBytes - 9 - 10 // end the value 10 bytes before the extension end
			var v []byte
			for n := pad - 200; ; n++ {
				v = goodRoot(1, func(e *encoder) { e.symbol("pad"); e.str(strings.Repeat("p", n)) })
				if len(rec(v)) >= pad {
					break
				}
			}
			return append(rec(v), recEndOfLog)
		}()), "§9.3", "keep at least 22"},
		{"data overlaps the log", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("f")
			fileTuple(e, 5, 100, 1)
		})), recEndOfLog)), "§9.3", "overlap"},
		{"data in sector 0", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("f")
			fileTuple(e, 5, 0, 1)
		})), recEndOfLog)), "§9.3", "data in sector 0"},
		{"two files share sectors", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(2)
			e.symbol("a")
			fileTuple(e, 5, rawData, 1)
			e.symbol("b")
			fileTuple(e, 5, rawData, 1)
		})), recEndOfLog)), "§9.3", "overlap"},
		{"extension outside the image", raw([]byte{recExtensionLink, 0xFF, 0xFF, 0x7F, 0x88, 0x00, recEndOfLog}), "§9.3", "outside the"},
		{"overlapping extensions", raw([]byte{recExtensionLink, 0x81, 0x00, 0x88, 0x00, recEndOfLog}), "§9.3", "overlapping the log extension at sector 1"},
		{"zero-length extension", raw([]byte{recExtensionLink, 0x90, 0x00, 0x00, recEndOfLog}), "§3", "zero-length"},
		{"unknown frame", raw([]byte{0x07}), "§3", "unknown frame 0x07"},
		{"log without end", raw(nil), "§3", "unknown frame 0x00"},

		// §9.4 root
		{"program missing from the tree", raw(append(rec(encode(func(e *encoder) {
			e.tuple(2)
			e.symbol("children")
			e.tuple(0)
			e.symbol("program")
			e.str("/bin/none")
		})), recEndOfLog)), "§9.4", `program "/bin/none" does not resolve`},
		{"program not a string", raw(append(rec(encode(func(e *encoder) {
			e.tuple(2)
			e.symbol("children")
			e.tuple(0)
			e.symbol("program")
			e.uint(1)
		})), recEndOfLog)), "§9.4", "not a string"},
		{"root without children", raw(append(rec(encode(func(e *encoder) { e.tuple(0) })), recEndOfLog)), "§3", "no children"},
		{"first record not a tuple", raw(append(rec(encode(func(e *encoder) { e.vector(0) })), recEndOfLog)), "§9.6", "not a tuple"},

		// §9.5 keys and values
		{"key with a string tag", raw(append(rec(goodRoot(1, func(e *encoder) {
			e.buf = append(e.buf, 0xC3, 'k', 'e', 'y')
			e.next++
			e.str("v")
		})), recEndOfLog)), "§9.5", "key with type tag 4"},
		{"key immediate twice", raw(append(rec(goodRoot(1, func(e *encoder) { rawSym(e, "program"); e.str("/f") })), recEndOfLog)), "§9.5", `key "program" is immediate again`},
		{"key immediate again in a later record", raw(append(append(rec(goodRoot(0, nil)),
			rec(encode(func(e *encoder) {
				e.tupleRef(1, 1)
				e.next = 20
				rawSym(e, "children")
				e.tuple(0)
			}))...), recEndOfLog)), "§9.5", `key "children" is immediate again`},
		{"untyped buffer value", raw(append(rec(goodRoot(1, func(e *encoder) {
			e.symbol("klibs")
			e.buf = append(e.buf, 0x86)
			e.buf = append(e.buf, "bootfs"...)
		})), recEndOfLog)), "§9.5", "untyped buffer"},
		{"tag-4 reference", raw(append(rec(goodRoot(1, func(e *encoder) {
			e.symbol("cwd")
			e.buf = append(e.buf, 0x44) // string reference to #4 ("f")
		})), recEndOfLog)), "§9.5", "tag-4 reference"},

		// §9.6 record exactness
		{"total larger than the value", raw(func() []byte {
			v := goodRoot(0, nil)
			b := []byte{recTupleAvailable}
			b = appendVarint(b, uint64(len(v)+1))
			b = appendVarint(b, uint64(len(v)+1))
			return append(append(b, v...), recEndOfSegment, recEndOfLog)
		}()), "§9.6", "announces"},
		{"value cut short at end of log", raw(func() []byte {
			v := goodRoot(0, nil)
			b := []byte{recTupleAvailable}
			b = appendVarint(b, uint64(len(v)+100))
			b = appendVarint(b, uint64(len(v)))
			return append(append(b, v...), recEndOfLog)
		}()), "§9.6", "still due"},

		// §9.7 files
		{"file without extents", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("f")
			e.tuple(1)
			e.symbol("filelength")
			e.uint(5)
		})), recEndOfLog)), "§9.7", "without extents"},
		{"file without filelength", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("f")
			e.tuple(1)
			e.symbol("extents")
			e.tuple(0)
		})), recEndOfLog)), "§9.7", "filelength"},
		{"allocated below length", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("f")
			e.tuple(2)
			e.symbol("filelength")
			e.uint(5)
			e.symbol("extents")
			e.tuple(1)
			e.symbol("0")
			e.tuple(3)
			e.symbol("offset")
			e.uint(rawData)
			e.symbol("length")
			e.uint(2)
			e.symbol("allocated")
			e.uint(1)
		})), recEndOfLog)), "§9.7", "allocated 1 < length 2"},
		{"extent without allocated", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("f")
			e.tuple(2)
			e.symbol("filelength")
			e.uint(5)
			e.symbol("extents")
			e.tuple(1)
			e.symbol("0")
			e.tuple(2)
			e.symbol("offset")
			e.uint(rawData)
			e.symbol("length")
			e.uint(1)
		})), recEndOfLog)), "§9.7", "missing or non-numeric allocated"},
		{"extent key not canonical", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("f")
			e.tuple(2)
			e.symbol("filelength")
			e.uint(5)
			e.symbol("extents")
			e.tuple(1)
			e.symbol("00")
			e.tuple(3)
			e.symbol("offset")
			e.uint(rawData)
			e.symbol("length")
			e.uint(1)
			e.symbol("allocated")
			e.uint(1)
		})), recEndOfLog)), "§9.7", `"00" is not in canonical`},
		{"extents overlap inside a file", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("f")
			e.tuple(2)
			e.symbol("filelength")
			e.uint(1024)
			e.symbol("extents")
			e.tuple(2)
			for _, k := range []uint64{0, 1} {
				e.symbol(extentKey(k))
				e.tuple(3)
				e.symbol("offset")
				e.uint(rawData + 2*k)
				e.symbol("length")
				e.uint(2)
				e.symbol("allocated")
				e.uint(2)
			}
		})), recEndOfLog)), "§9.7", "overlap"},
		{"tail padding not zero", func() *image {
			return rawImage(goodFrames(), append([]byte("hello"), "garbage"...))
		}, "§9.7", "not zero"},

		// §9.8 environment and arguments
		{"environment value not a string", raw(append(rec(goodRoot(1, func(e *encoder) {
			e.symbol("environment")
			e.tuple(1)
			e.symbol("N")
			e.uint(1)
		})), recEndOfLog)), "§9.8", "N is an integer"},
		{"argument not a string", raw(append(rec(goodRoot(1, func(e *encoder) {
			e.symbol("arguments")
			e.vector(2)
			e.str("/f")
			e.uint(1)
		})), recEndOfLog)), "§9.8", "element 1"},

		// §9.11 free space
		{"no free space", built(func(w *Writer) { add(t, w, regular("f", "x")) }, WithFreeSpace(0)), "§9.11", "bytes free"},

		// §8 reserved kernel paths
		{"reserved path", built(func(w *Writer) { add(t, w, regular("proc/meminfo", "x")) }, AllowReservedPaths()), "§8", "/proc/meminfo"},
		{"reserved parent not a dir", built(func(w *Writer) { add(t, w, symlink("/tmp", "sys")) }, AllowReservedPaths()), "§8", "must be a directory"},

		// §5 schema
		{"nlink mismatch", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("f")
			e.tuple(3)
			e.symbol("filelength")
			e.uint(0)
			e.symbol("extents")
			e.tuple(0)
			e.symbol("nlink")
			e.uint(2)
		})), recEndOfLog)), "§5.4", "nlink is 2 but the entry has 1 names"},
		{"child not a tuple", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("f")
			e.str("oops")
		})), recEndOfLog)), "§5.1", "not a tuple"},
		{"dot-dot entry", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("..")
			e.tuple(1)
			e.symbol("children")
			e.tuple(0)
		})), recEndOfLog)), "§5.1", `".." is not a file name`},
		{"directory cycle", raw(append(rec(encode(func(e *encoder) {
			e.tuple(1)
			e.symbol("children")
			e.tuple(1)
			e.symbol("loop")
			e.tupleRef(1, 0) // the root itself
		})), recEndOfLog)), "§3", "also reachable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := problemsOf(t, tc.img())
			for _, p := range ps {
				if p.Rule == tc.rule && strings.Contains(p.String(), tc.what) {
					assert.NotEmpty(t, p.Where)
					return
				}
			}
			t.Errorf("no %s problem mentioning %q in:\n%s", tc.rule, tc.what, problemList(ps))
		})
	}
}

func problemList(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

// Problems carry locations precise enough to find the bytes.
func TestProblemLocations(t *testing.T) {
	img := rawImage(append(rec(goodRoot(1, func(e *encoder) { rawSym(e, "program"); e.str("/f") })), recEndOfLog), []byte("hello"))
	ps := problemsOf(t, img)
	require.NotEmpty(t, ps)
	assert.Equal(t, "volume: log extension at sector 1, byte 96", ps[0].Where)
	assert.Contains(t, ps[0].What, "first at log extension at sector 1, byte 85")

	img = rawImage(goodFrames(), append([]byte("hello"), "garbage"...))
	ps = problemsOf(t, img)
	assert.Equal(t, "volume: /f", ps[0].Where)
	var ve *VerifyError
	require.ErrorAs(t, Verify(img, img.size()), &ve)
	assert.Contains(t, ve.Error(), "/f")
}

type brokenReader struct{ io.ReaderAt }

func (brokenReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

func TestVerifyIOError(t *testing.T) {
	err := Verify(brokenReader{}, 1<<20)
	var ve *VerifyError
	assert.False(t, errors.As(err, &ve))
	assert.ErrorContains(t, err, "disk on fire")
}

// A value split over several records and extensions, mixed with EAV
// updates, replays like the kernel replays it.
func TestEAVUpdates(t *testing.T) {
	root := goodRoot(0, nil)
	// Split the root value in three pieces.
	frames := []byte{recTupleAvailable}
	frames = appendVarint(frames, uint64(len(root)))
	frames = appendVarint(frames, 10)
	frames = append(frames, root[:10]...)
	frames = append(frames, recEndOfSegment, recTupleExtended, 20)
	frames = append(frames, root[10:30]...)
	frames = append(frames, recTupleExtended)
	frames = appendVarint(frames, uint64(len(root)-30))
	frames = append(frames, root[30:]...)
	// Dictionary after the root: #1 root, #2 children, #3 dir, #4 "f",
	// #5 file, ... "program" is the last symbol.
	d := &decoder{}
	_, err := d.value(&bytesSource{b: root})
	require.NoError(t, err)
	next := uint64(len(d.dict) + 1)
	update := encode(func(e *encoder) {
		e.next = next
		e.syms = map[string]uint64{"program": next - 1, "children": 2}
		e.tupleRef(5, 2) // the file
		e.symbol("nlink")
		e.uint(1)
		e.symbol("mtime")
		e.uint(1700000000 << 32)
	})
	frames = append(frames, rec(update)...)
	remove := encode(func(e *encoder) {
		e.next = next + 2
		e.syms = map[string]uint64{"program": next - 1}
		e.tupleRef(1, 2) // the root: drop program, add a symlink
		e.symbol("program")
		e.buf = append(e.buf, 0x80) // no value
		e.symbol("cwd")
		e.str("/")
	})
	frames = append(frames, rec(remove)...)
	frames = append(frames, recEndOfLog)
	img := rawImage(frames, []byte("hello"))
	f := open(t, img)
	info, err := f.Stat("f")
	require.NoError(t, err)
	assert.Equal(t, int64(1700000000), info.ModTime().Unix())
	assert.Equal(t, Tuple{"cwd": String("/")}, f.Manifest())
}

// v4 volumes (legacy, read-only): one-bit types, every scalar a buffer,
// lists as tuples keyed "0", "1", ...
func TestReadV4(t *testing.T) {
	var dict uint64
	syms := map[string]uint64{}
	hdr := func(b []byte, imm bool, typ byte, n uint64) []byte {
		first := typ<<6 | byte(n&0x1f)
		if n > 0x1f {
			panic("test values are short")
		}
		if imm {
			first |= 0x80
		}
		return append(b, first)
	}
	var v []byte
	tup := func(n uint64) { v = hdr(v, true, 1, n); dict++ }
	sym := func(s string) {
		if i, ok := syms[s]; ok {
			v = hdr(v, false, 0, i)
			return
		}
		v = hdr(v, true, 0, uint64(len(s)))
		v = append(v, s...)
		dict++
		syms[s] = dict
	}
	buf := func(s string) { v = hdr(v, true, 0, uint64(len(s))); v = append(v, s...) }
	tup(3)
	sym("children")
	tup(2)
	sym("hw")
	tup(2)
	sym("filelength")
	buf("5")
	sym("extents")
	tup(1)
	sym("0")
	tup(3)
	sym("offset")
	buf("1025")
	sym("length")
	buf("1")
	sym("allocated")
	buf("1")
	sym("link")
	tup(1)
	sym("linktarget")
	buf("hw")
	sym("program")
	buf("/hw")
	sym("arguments")
	tup(2)
	sym("0")
	buf("/hw")
	sym("1")
	buf("x")

	img := rawImage(append(rec(v), recEndOfLog), []byte("hello"))
	img.b[6] = 4            // sector 0 version
	img.b[SectorSize+6] = 4 // extension version
	f := open(t, img)
	assert.Equal(t, 4, f.Version())
	got, err := f.ReadFile("link")
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))
	assert.Equal(t, Tuple{
		"program":   Buffer("/hw"),
		"arguments": Tuple{"0": Buffer("/hw"), "1": Buffer("x")},
	}, f.Manifest())
	ps := problemsOf(t, img)
	for _, p := range ps {
		assert.NotContains(t, p.What, "untyped buffer", "buffers are normal in v4")
	}
	assert.Contains(t, problemList(ps), "TFS version 4")
}

// ops writes numbers as decimal strings.
func TestStringNumbers(t *testing.T) {
	v := encode(func(e *encoder) {
		e.tuple(1)
		e.symbol("children")
		e.tuple(1)
		e.symbol("f")
		e.tuple(2)
		e.symbol("filelength")
		e.str("5")
		e.symbol("extents")
		e.tuple(1)
		e.symbol("0")
		e.tuple(3)
		for _, k := range []string{"offset", "length", "allocated"} {
			e.symbol(k)
			if k == "offset" {
				e.str("1025")
			} else {
				e.str("1")
			}
		}
	})
	img := rawImage(append(rec(v), recEndOfLog), []byte("hello"))
	require.NoError(t, Verify(img, img.size()))
	got, err := open(t, img).ReadFile("f")
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))
}

func TestSparseAndUninited(t *testing.T) {
	v := encode(func(e *encoder) {
		e.tuple(1)
		e.symbol("children")
		e.tuple(1)
		e.symbol("f")
		e.tuple(2)
		e.symbol("filelength")
		e.uint(4 * SectorSize)
		e.symbol("extents")
		e.tuple(2)
		e.symbol("1") // block 0 is a hole
		e.tuple(3)
		e.symbol("offset")
		e.uint(rawData)
		e.symbol("length")
		e.uint(1)
		e.symbol("allocated")
		e.uint(1)
		e.symbol("2")
		e.tuple(4)
		e.symbol("offset")
		e.uint(rawData + 1)
		e.symbol("length")
		e.uint(1)
		e.symbol("allocated")
		e.uint(1)
		e.symbol("uninited")
		e.flag()
	})
	data := append(make([]byte, 0, 1024), []byte(strings.Repeat("A", SectorSize)+strings.Repeat("B", SectorSize))...)
	img := rawImage(append(rec(v), recEndOfLog), data)
	got, err := open(t, img).ReadFile("f")
	require.NoError(t, err)
	want := strings.Repeat("\x00", SectorSize) + strings.Repeat("A", SectorSize) + strings.Repeat("\x00", 2*SectorSize)
	assert.Equal(t, want, string(got))
}

// makeDisk assembles a whole disk the way spec §2 describes (and the vm
// package will): stub MBR with a region record, klog gap, optional ESP,
// 12 MiB boot FS, root FS to the end.
func makeDisk(t *testing.T, uefi bool, boot, root func(w *Writer)) *image {
	t.Helper()
	img := &image{}
	var mbr [SectorSize]byte
	binary.LittleEndian.PutUint64(mbr[mbrRegion:], 0x8000)
	binary.LittleEndian.PutUint64(mbr[mbrRegion+8:], 0)
	binary.LittleEndian.PutUint32(mbr[mbrRegion+16:], regionTypeFS)
	off := int64(SectorSize + klogSize)
	type part struct {
		typ       byte
		off, size int64
	}
	var parts []part
	if uefi {
		parts = append(parts, part{partTypeEFI, off, espSize})
		off += espSize
	}
	w, err := NewWriter(io.NewOffsetWriter(img, off), WithSize(bootFSSize), WithFreeSpace(0))
	require.NoError(t, err)
	boot(w)
	require.NoError(t, w.Close())
	parts = append(parts, part{partTypeTFS, off, bootFSSize})
	off += bootFSSize
	w, err = NewWriter(io.NewOffsetWriter(img, off), WithSeed([]byte("root")))
	require.NoError(t, err)
	root(w)
	require.NoError(t, w.Close())
	parts = append(parts, part{partTypeTFS, off, w.Size()})
	for i, p := range parts {
		e := mbr[mbrEntries+16*i:]
		e[0] = 0x80
		c := chs(p.off)
		copy(e[1:4], c[:])
		e[4] = p.typ
		c = chs(p.off + p.size - SectorSize)
		copy(e[5:8], c[:])
		binary.LittleEndian.PutUint32(e[8:], uint32(p.off/SectorSize))
		binary.LittleEndian.PutUint32(e[12:], uint32(p.size/SectorSize))
	}
	mbr[510], mbr[511] = 0x55, 0xAA
	img.WriteAt(mbr[:], 0)
	return img
}

func kernelBoot(t *testing.T) func(w *Writer) {
	return func(w *Writer) { add(t, w, bigFile("kernel", pseudo(7, 100000)), regular("klib/test", "klib")) }
}

func appRoot(t *testing.T) func(w *Writer) {
	return func(w *Writer) {
		add(t, w, regular("bin/app", "app"))
		require.NoError(t, w.SetProgram("/bin/app"))
	}
}

func TestDisk(t *testing.T) {
	for _, uefi := range []bool{false, true} {
		img := makeDisk(t, uefi, kernelBoot(t), appRoot(t))
		require.NoError(t, Verify(img, img.size()), "uefi=%v", uefi)

		root, err := Open(img, img.size())
		require.NoError(t, err)
		got, err := root.ReadFile("bin/app")
		require.NoError(t, err)
		assert.Equal(t, "app", string(got))
		wantOff := int64(SectorSize+klogSize) + bootFSSize
		if uefi {
			wantOff += espSize
		}
		assert.Equal(t, wantOff, root.Offset())
		assert.Equal(t, img.size()-wantOff, root.Size())

		boot, err := Open(img, img.size(), WithPartition(BootPartition))
		require.NoError(t, err)
		got, err = boot.ReadFile("kernel")
		require.NoError(t, err)
		assert.Equal(t, pseudo(7, 100000), got)
		assert.Equal(t, int64(bootFSSize), boot.Size())
	}
}

func TestDiskProblems(t *testing.T) {
	entry := func(i int) int { return mbrEntries + 16*i }
	for _, tc := range []struct {
		name  string
		boot  func(w *Writer)
		root  func(w *Writer)
		patch func(b []byte)
		rule  string
		what  string
	}{
		{"wrong type", nil, nil, func(b []byte) { b[entry(1)+4] = 0x0C }, "§9.9", "type 0xc"},
		{"wrong LBA", nil, nil, func(b []byte) { binary.LittleEndian.PutUint32(b[entry(0)+8:], 8) }, "§9.9", "first LBA 8"},
		{"wrong root count", nil, nil, func(b []byte) { binary.LittleEndian.PutUint32(b[entry(1)+12:], 100) }, "§9.9", "100 sectors"},
		{"inactive entry", nil, nil, func(b []byte) { b[entry(0)] = 0 }, "§9.9", "status 0"},
		{"region record type", nil, nil, func(b []byte) { b[mbrRegion+16] = 7 }, "§9.9", "record type 7"},
		{"stray entry", nil, nil, func(b []byte) { b[entry(3)+4] = 0x83 }, "§9.9", "should be empty"},
		{"CHS", nil, nil, func(b []byte) { b[entry(0)+1] = 9 }, "§2.2", "CHS"},
		{"no kernel", func(w *Writer) { add(t, w, regular("vmlinuz", "x")) }, nil, nil, "§9.10", "no /kernel"},
		{"boot log too long", func(w *Writer) {
			add(t, w, regular("kernel", "k"))
			for i := range 6000 {
				add(t, w, regular(fmt.Sprintf("klib/%s-%05d", strings.Repeat("x", 100), i), ""))
			}
		}, nil, nil, "§9.10", "log has"},
		{"root without program", nil, func(w *Writer) { add(t, w, regular("a", "b")) }, nil, "§9.4", "no program"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot, root := tc.boot, tc.root
			if boot == nil {
				boot = kernelBoot(t)
			}
			if root == nil {
				root = appRoot(t)
			}
			img := makeDisk(t, false, boot, root)
			if tc.patch != nil {
				tc.patch(img.b)
			}
			ps := problemsOf(t, img)
			for _, p := range ps {
				if p.Rule == tc.rule && strings.Contains(p.String(), tc.what) {
					return
				}
			}
			t.Errorf("no %s problem mentioning %q in:\n%s", tc.rule, tc.what, problemList(ps))
		})
	}
}

func TestPartitionFallback(t *testing.T) {
	// An MBR whose chosen entry is empty: readers use a raw TFS at byte 0.
	img := build(t, func(w *Writer) { add(t, w, regular("f", "raw")) })
	img.b[510], img.b[511] = 0x55, 0xAA
	f, err := Open(img, img.size())
	require.NoError(t, err)
	assert.Equal(t, int64(0), f.Offset())
}

func TestCHS(t *testing.T) {
	assert.Equal(t, [3]byte{0, 10, 0}, chs(4608))
	assert.Equal(t, [3]byte{1, 1, 0}, chs(63*SectorSize))
	assert.Equal(t, [3]byte{0, 1, 1}, chs(63*255*SectorSize))
	// Cylinder 256: the spec's formula ORs cyl>>8 into the sector byte
	// (a conventional encoding would give 0x41).
	assert.Equal(t, [3]byte{0, 0x01, 0}, chs(63*255*256*SectorSize))
	assert.Equal(t, [3]byte{0, 0x03, 0xFF}, chs(63*255*1023*SectorSize))
	assert.Equal(t, [3]byte{254, 63, 0xFF}, chs(1<<40))
}

func TestOpenErrors(t *testing.T) {
	good := rawImage(goodFrames(), []byte("hello"))
	for _, tc := range []struct {
		name string
		b    []byte
		want string
		size int64
	}{
		{"empty", nil, "smaller than one sector", 0},
		{"zeros", make([]byte, 4096), "no TFS magic", 0},
		{"truncated", good.b[:SectorSize+100], "outside the 1-sector volume", 0},
		{"shorter than its size", good.b[:SectorSize+50], "image ends early", good.size()},
		{"bad version", func() []byte { b := append([]byte(nil), good.b...); b[6] = 6; return b }(), "unsupported TFS version 6", 0},
		{"bad label", func() []byte {
			b := append([]byte(nil), good.b...)
			copy(b[24:], strings.Repeat("x", 40))
			return b
		}(), "label is not NUL-terminated", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := &image{b: tc.b}
			size := img.size()
			if tc.size != 0 {
				size = tc.size
			}
			_, err := Open(img, size)
			assert.ErrorContains(t, err, tc.want)
			assert.Error(t, Verify(img, size))
		})
	}
}
