package testimage

import (
	"io"
	"os"
	"testing"
	"time"
)

// BenchmarkLayerEncodings measures building each encoding of the Debian
// base rootfs layer from its tar, against the baseline of writing the tar
// itself (scan excluded), and reports each as a multiple of the baseline.
func BenchmarkLayerEncodings(b *testing.B) {
	src, _, err := hostTreeSource(DebianRootfs(b))
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.CreateTemp(b.TempDir(), "tar")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var tarTook time.Duration
	took := map[Encoding]time.Duration{}
	size := map[Encoding]int64{}
	var tarSize int64
	for b.Loop() {
		start := time.Now()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		w := &byteCountingWriter{w: f}
		if err := src.write(w); err != nil {
			b.Fatal(err)
		}
		tarTook += time.Since(start)
		tarSize = w.n
		for _, enc := range Encodings {
			start := time.Now()
			out := &byteCountingWriter{w: io.Discard}
			if _, _, err := encodeLayer(out, io.NewSectionReader(f, 0, w.n), enc); err != nil {
				b.Fatal(err)
			}
			took[enc] += time.Since(start)
			size[enc] = out.n
		}
	}
	b.ReportMetric(float64(tarSize)/(1<<20), "tar-MB")
	for _, enc := range Encodings {
		b.ReportMetric(float64(took[enc])/float64(tarTook), enc.String()+"-time/tar-time")
		b.ReportMetric(float64(size[enc])/float64(tarSize), enc.String()+"-size/tar-size")
	}
}
