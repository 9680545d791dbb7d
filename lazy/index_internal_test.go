package lazy

import (
	"archive/tar"
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/lazy/internal/cas"
	"github.com/nanofs/nanofs/lazy/internal/overlay"
)

// manyEntries is a layer of n files in directories of 20, like a large
// image's layer: mostly regular files of one chunk, some symlinks.
func manyEntries(n int) []overlay.Entry {
	mtime := time.Unix(1700000000, 0).UTC()
	var entries []overlay.Entry
	for i := 0; len(entries) < n; i++ {
		dir := fmt.Sprintf("usr/lib/pkg%04d", i)
		entries = append(entries, overlay.Entry{Name: dir + "/", Path: dir, Type: tar.TypeDir, Mode: 0o755, ModTime: mtime})
		for j := 0; j < 20 && len(entries) < n; j++ {
			p := fmt.Sprintf("%s/file-%02d.so", dir, j)
			e := overlay.Entry{Name: p, Path: p, Type: tar.TypeReg, Mode: 0o644, Size: int64(1000 + j), ModTime: mtime, UID: 1, GID: 2}
			if j%7 == 6 {
				e.Type, e.Size, e.Linkname = tar.TypeSymlink, 0, "file-00.so"
			} else {
				off := int64(i*100000 + j*1000 + 10)
				e.Chunks = []overlay.Chunk{{Size: e.Size, Offset: off, Next: off + 900, Digest: cas.SHA256([]byte(p)), File: p}}
			}
			entries = append(entries, e)
		}
	}
	return entries
}

// BenchmarkLayerIndexDecode measures what a warm open pays per layer of
// 27k files: reading its cached index back into entries.
func BenchmarkLayerIndexDecode(b *testing.B) {
	entries := manyEntries(27000)
	rec, err := encodeBinIndex(&tocEntries{TOCDigest: cas.SHA256(nil), TOCOffset: 1 << 40, BlobSize: 1<<40 + 100, Entries: entries})
	require.NoError(b, err)
	b.SetBytes(int64(len(rec)))
	for b.Loop() {
		var te tocEntries
		if err := decodeBinIndex(rec, &te); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLayerMerge measures merging 7 layers of 4k files each into the
// image's tree, without reading them.
func BenchmarkLayerMerge(b *testing.B) {
	layers := make([][]overlay.Entry, 7)
	for i := range layers {
		layers[i] = manyEntries(4000)
	}
	l := &layer{}
	for b.Loop() {
		t := overlay.New()
		for i, es := range layers {
			if err := t.Apply(i, "layer", es, l.dataFor); err != nil {
				b.Fatal(err)
			}
		}
		t.Finish()
	}
}

func TestBinIndexRoundTrip(t *testing.T) {
	mtime := time.Unix(1700000000, 123).UTC()
	entries := []overlay.Entry{
		{Name: "./", Type: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1, 0)},
		{Name: "etc/zone", Type: tar.TypeReg, Mode: 0o4644, Size: 5, ModTime: time.Unix(2, 5).In(time.FixedZone("X", 3600)), UID: 7, GID: 8, Offset: 512},
		{Name: "etc/link", Type: tar.TypeLink, Linkname: "etc/zone"},
		{Name: "etc/sym", Type: tar.TypeSymlink, Linkname: "../x"},
		{Name: "dev/null", Type: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
		{Name: "big", Type: tar.TypeReg, Size: 10, ModTime: mtime, Chunks: []overlay.Chunk{
			{Size: 6, Offset: 10, Next: 20, Digest: cas.SHA256([]byte("a")), File: "big"},
			{FileOffset: 6, Size: 4, Offset: 10, Next: 20, Inner: 6, Digest: cas.SHA256([]byte("b")), File: "elsewhere"},
		}},
	}
	for i := range entries {
		require.NoError(t, entries[i].Check())
	}
	tests := []struct {
		name string
		in   binRecord
		out  binRecord
	}{
		{"eStargz TOC", &tocEntries{TOCDigest: cas.SHA256(nil), TOCOffset: 30, BlobSize: 40, Entries: entries}, &tocEntries{}},
		{"stream layer", &streamIndex{Version: 1, Layer: "sha256:x", TarSize: 3 << 20, SegmentSize: 1 << 20, Segments: []string{"a", "b", "c"}, Entries: entries}, &streamIndex{}},
		{"no entries", &tocEntries{TOCDigest: "d"}, &tocEntries{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := encodeBinIndex(tt.in)
			require.NoError(t, err)
			require.NoError(t, decodeBinIndex(rec, tt.out))
			switch in := tt.in.(type) {
			case *tocEntries:
				out := tt.out.(*tocEntries)
				if len(in.Entries) == 0 {
					out.Entries, in.Entries = nil, nil
				}
				require.Equal(t, in, out)
			case *streamIndex:
				require.Equal(t, in, tt.out)
			}
			// Every cut of the body is refused: its checksum no longer
			// fits, and without the checksum the decoder still stops.
			head, body, _ := bytes.Cut(rec, []byte("\n"))
			for n := range len(body) {
				require.Error(t, decodeBinIndex(rec[:len(head)+1+n], tt.out))
				r := binReader{s: string(body[:n])}
				tt.out.readBin(&r)
				require.Error(t, r.err, "body cut at %d of %d", n, len(body))
			}
		})
	}
}
