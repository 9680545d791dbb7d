package tfs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"io/fs"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// zeroTail reads b followed by zeros: small fuzz inputs can then describe
// volumes whose log extensions lie far out.
type zeroTail []byte

func (z zeroTail) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	if off < int64(len(z)) {
		copy(p, z[off:])
	}
	return len(p), nil
}

// trimmed drops trailing zeros: the compact form of an image for a seed.
func trimmed(b []byte) []byte { return bytes.TrimRight(b, "\x00") }

func smallImages(t testing.TB) [][]byte {
	var out [][]byte
	img := build(t, func(w *Writer) {
		add(t, w, regular("bin/app", "app"), symlink("bin/app", "a"), hardlink("bin/app", "h"), dirEntry("d/e"))
		require.NoError(t, w.SetProgram("/a"))
		require.NoError(t, w.SetArguments("/a", "x"))
		require.NoError(t, w.SetEnvironment(map[string]string{"K": "V"}))
		require.NoError(t, w.SetRoot("flag", Flag{}))
	}, WithFreeSpace(0), WithLabel("seed"))
	vol := trimmed(img.b)
	out = append(out, vol)
	// A disk: MBR whose root entry points at a copy of the volume.
	disk := make([]byte, SectorSize+len(vol))
	copy(disk[SectorSize:], vol)
	binary.LittleEndian.PutUint32(disk[mbrRegion+16:], regionTypeFS)
	disk[mbrEntries+4], disk[mbrEntries+16+4] = partTypeTFS, partTypeTFS
	binary.LittleEndian.PutUint32(disk[mbrEntries+8:], 1)
	binary.LittleEndian.PutUint32(disk[mbrEntries+12:], 1)
	binary.LittleEndian.PutUint32(disk[mbrEntries+16+8:], 1)
	binary.LittleEndian.PutUint32(disk[mbrEntries+16+12:], 1<<16)
	disk[510], disk[511] = 0x55, 0xAA
	return append(out, disk)
}

// expand turns a compact fuzz input into an image: its first 64 bytes are
// the start of sector 0, the rest starts at sector 1 (where the log
// extension of a small volume lies), zeros elsewhere. Compact inputs keep
// the fuzzer's mutation and minimization fast.
func expand(b []byte) []byte {
	head := b[:min(len(b), 64)]
	img := make([]byte, SectorSize+len(b)-len(head))
	copy(img, head)
	copy(img[SectorSize:], b[len(head):])
	return img
}

// compact is the inverse of expand for images whose sector 0 fits in 64
// bytes.
func compact(img []byte) []byte {
	return append(append([]byte(nil), img[:64]...), trimmed(img[SectorSize:])...)
}

// FuzzOpen: no input makes Open, the FS, Manifest or Verify panic, loop or
// allocate without bound. Each input is tried as an image and expanded.
func FuzzOpen(f *testing.F) {
	for _, b := range smallImages(f) {
		f.Add(b)
	}
	f.Add(compact(rawImage(goodFrames(), nil).b))
	f.Add(compact(rawImage(append(rec(goodRoot(2, func(e *encoder) {
		e.symbol("arguments")
		e.vector(1)
		e.str("/f")
		e.symbol("environment")
		e.tuple(1)
		e.symbol("K")
		e.str("V")
	})), recEndOfLog), nil).b))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, img := range [][]byte{b, expand(b)} {
			for _, size := range []int64{int64(len(img)), max(int64(len(img)), 4<<20)} {
				r := zeroTail(img)
				_ = Verify(r, size)
				for _, p := range []Partition{RootPartition, BootPartition} {
					fsys, err := Open(r, size, WithPartition(p))
					if err != nil {
						continue
					}
					exercise(t, fsys)
				}
			}
		}
	})
}

// exercise reads everything an FS offers, bounded.
func exercise(t *testing.T, fsys *FS) {
	if _, err := json.Marshal(fsys.Manifest()); err != nil {
		t.Fatalf("manifest does not marshal: %v", err)
	}
	n := 0
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if n++; n > 10000 {
			return fs.SkipAll
		}
		if d.Type()&fs.ModeSymlink != 0 {
			_, _ = fsys.ReadLink(p)
		}
		_, _ = fsys.Stat(p)
		if d.Type().IsRegular() {
			if fl, err := fsys.Open(p); err == nil {
				_, _ = io.CopyN(io.Discard, fl, 1<<16)
				fl.Close()
			}
		}
		return nil
	})
}

// FuzzDecodeValue: the varint and value decoders never panic, and the
// dictionary never holds more entries than input bytes.
func FuzzDecodeValue(f *testing.F) {
	for _, s := range []string{workedExample, "980a", "0817", "8f68", "b0ffffffffffffffffff7f", "b1818080808080808080800", "a3c161c162c163", "11058a6e6c696e6bb002"} {
		b, _ := hexBytes(s)
		f.Add(false, b)
	}
	f.Add(true, []byte{0xC3, 0x81, 'a', 0x81, 'b', 0x81, 'c', 0x81, 'd'})
	f.Add(false, goodRoot(0, nil))
	f.Fuzz(func(t *testing.T, v4 bool, b []byte) {
		_, _, _ = readVarint(bytes.NewReader(b))
		_, _ = readHeader(bytes.NewReader(b), v4)
		var problems []Problem
		d := &decoder{v4: v4, chk: &checker{problems: &problems}, where: func(int64) string { return "" }, syms: map[string]string{}}
		src := &bytesSource{b: b}
		for src.remaining() > 0 {
			v, err := d.value(src)
			if err != nil {
				break
			}
			_ = export(v, map[any]bool{})
		}
		if len(d.dict) > len(b) {
			t.Fatalf("%d dictionary entries from %d bytes", len(d.dict), len(b))
		}
	})
}

func hexBytes(s string) ([]byte, error) {
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			}
		}
		b[i] = v
	}
	return b, nil
}

// Hostile lengths and counts are refused before anything is allocated.
func TestHostileAllocation(t *testing.T) {
	huge := func(prefix ...byte) []byte {
		return append(prefix, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)
	}
	values := map[string][]byte{
		"tuple of 2^64 pairs":     huge(0x98),
		"vector of 2^64 elements": huge(0xA8),
		"string of 2^64 bytes":    huge(0xC8),
		"buffer of 2^64 bytes":    huge(0x88),
		"key of 2^64 bytes":       append([]byte{0x91}, huge(0x88)...),
		"deep nesting":            bytes.Repeat([]byte{0x91, 0x81, 'a'}, 20000),
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			alloc := allocated(func() {
				_, err := (&decoder{}).value(&bytesSource{b: v})
				assert.Error(t, err)
			})
			assert.Less(t, alloc, uint64(4<<20), "bytes allocated")
		})
	}
	frames := map[string][]byte{
		"value of 2^62 bytes in pieces": func() []byte {
			b := []byte{recTupleAvailable}
			b = appendVarint(b, 1<<62)
			b = appendVarint(b, 3)
			b = append(b, 0x91, 0x81, 'a')
			return append(b, recTupleExtended, 0x82, 0x00, 0, recEndOfLog)
		}(),
		"link to 2^40 sectors": append([]byte{recExtensionLink, 0x81, 0x00}, appendVarint(nil, 1<<40)...),
		"one huge string":      rec(append([]byte{0x91, 0x81, 'a', 0xCF}, appendVarint(nil, 1<<40)...)),
	}
	for name, fr := range frames {
		t.Run(name, func(t *testing.T) {
			img := rawImage(fr, nil)
			alloc := allocated(func() {
				_, err := Open(img, img.size())
				assert.Error(t, err)
			})
			assert.Less(t, alloc, uint64(8<<20), "bytes allocated")
		})
	}
}

func allocated(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// A shared tuple referenced 2^n ways does not make Manifest exponential.
func TestManifestDAG(t *testing.T) {
	v := encode(func(e *encoder) {
		e.tuple(2)
		e.symbol("children")
		e.tuple(0)
		e.symbol("dag")
		// level i: {a: level i+1, b: level i+1}, written once, referenced after
		const depth = 60
		idx := []uint64{e.tuple(2)}
		for range depth {
			e.symbol("a")
			idx = append(idx, e.tuple(2))
		}
		e.symbol("a")
		e.flag()
		e.symbol("b")
		e.flag()
		for i := depth; i > 0; i-- {
			e.symbol("b")
			e.tupleRef(idx[i], 0)
		}
	})
	img := rawImage(append(rec(v), recEndOfLog), nil)
	f, err := Open(img, img.size())
	require.NoError(t, err)
	alloc := allocated(func() { _, _ = json.Marshal(f.Manifest()) })
	assert.Less(t, alloc, uint64(64<<20))
}
