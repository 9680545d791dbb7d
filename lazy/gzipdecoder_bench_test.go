package lazy

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// BenchmarkGzipMember decompresses one eStargz-sized gzip member (4 MiB of
// half-compressible data, as estargz.Build writes a chunk) with each
// well-kept decoder, to choose the one storeMember uses: klauspost's gzip
// against the standard library's (the baseline, in the same run).
// klauspost's pgzip is left out: its gain is reading ahead in one long
// stream, and a member is already decoded on a core of its own.
func BenchmarkGzipMember(b *testing.B) {
	raw := make([]byte, 4<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range raw {
		if i%2 == 0 {
			raw[i] = byte(r.IntN(256))
		} else {
			raw[i] = byte(i >> 10)
		}
	}
	var member bytes.Buffer
	zw := gzip.NewWriter(&member)
	zw.Write(raw)
	zw.Close()
	decoders := []struct {
		name string
		open func(io.Reader) (io.ReadCloser, error)
	}{
		{"stdlib", func(r io.Reader) (io.ReadCloser, error) { return stdgzip.NewReader(r) }},
		{"klauspost-gzip", func(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }},
	}
	for _, d := range decoders {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				zr, err := d.open(bytes.NewReader(member.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, zr); err != nil {
					b.Fatal(err)
				}
				zr.Close()
			}
		})
	}
}
