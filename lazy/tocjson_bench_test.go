package lazy

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
)

// BenchmarkDecodeTOC decodes the TOC of a layer of 20000 files (about the
// size of a Debian base layer's, 3 MB of JSON) with encoding/json and with
// decodeTOC: std-MB/s and toc-MB/s, and their ratio.
func BenchmarkDecodeTOC(b *testing.B) {
	toc := estargz.JTOC{Version: 1}
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for i := range 20000 {
		name := fmt.Sprintf("usr/lib/x86_64-linux-gnu/pkg%04d/file%05d.so", i/20, i)
		toc.Entries = append(toc.Entries, &estargz.TOCEntry{
			Name: name, Type: "reg", Size: int64(1000 + i), ModTime3339: mtime.Format(time.RFC3339), Mode: 0o644,
			Offset: int64(100 * i), Digest: fmt.Sprintf("sha256:%064x", i), ChunkDigest: fmt.Sprintf("sha256:%064x", i+1),
			ChunkSize: int64(1000 + i), NumLink: 1,
		})
	}
	data, err := json.Marshal(&toc)
	if err != nil {
		b.Fatal(err)
	}
	perSec := func(d time.Duration) float64 { return float64(len(data)) / 1e6 / d.Seconds() }
	var std, ours time.Duration
	const rounds = 5
	for b.Loop() {
		for range rounds {
			t0 := time.Now()
			var a estargz.JTOC
			if err := json.Unmarshal(data, &a); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			var c estargz.JTOC
			if err := decodeTOC(data, &c); err != nil {
				b.Fatal(err)
			}
			std += t1.Sub(t0)
			ours += time.Since(t1)
		}
	}
	b.ReportMetric(perSec(std/time.Duration(b.N*rounds)), "std-MB/s")
	b.ReportMetric(perSec(ours/time.Duration(b.N*rounds)), "toc-MB/s")
	b.ReportMetric(float64(std)/float64(ours), "speedup")
}
