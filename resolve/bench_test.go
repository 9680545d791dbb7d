package resolve

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/stretchr/testify/require"
)

// BenchmarkResolve measures what resolving costs against the baseline of
// reading the files it finds (what copying the closure, or running ldd on
// it, has to read), both in the same run:
//
//	read-%        bytes read from the fs during resolution / total size of the plan's files
//	read-B        bytes read during resolution
//	closure-B     total size of the plan's files
//	x-vs-full-read  time to read the whole closure / time to resolve it
func BenchmarkResolve(b *testing.B) {
	type benchCase struct {
		name string
		root func(b *testing.B) string
		cfg  Config
	}
	fixtures := func(b *testing.B) string { return testimage.CFixtures(b).Root }
	debian := func(b *testing.B) string { return testimage.DebianRootfsWith(b, "nodejs", "python3", "redis-server") }
	path := []string{"PATH=" + DefaultPath}
	cases := []benchCase{
		{"fixture-dyn", fixtures, Config{Entrypoint: []string{"/usr/local/bin/dyn"}}},
		{"debian-node", debian, Config{Entrypoint: []string{"node"}, Env: path}},
		{"debian-python3", debian, Config{Entrypoint: []string{"python3"}, Env: path}},
		{"debian-redis", debian, Config{Entrypoint: []string{"redis-server"}, Env: path}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			root := bc.root(b)
			var plan *Plan
			var read int64
			for b.Loop() {
				cfs := &countingFS{fsys: os.DirFS(root)}
				p, err := Resolve(cfs, bc.cfg)
				require.NoError(b, err)
				plan, read = p, cfs.bytes.Load()
			}
			perOp := b.Elapsed() / time.Duration(b.N)

			// The baseline: read every file of the plan whole.
			fsys := os.DirFS(root)
			start := time.Now()
			var closure int64
			for _, e := range plan.Entries {
				if e.Kind != KindFile {
					continue
				}
				f, err := e.Open(fsys)
				require.NoError(b, err)
				n, err := io.Copy(io.Discard, f)
				require.NoError(b, err)
				require.NoError(b, f.Close())
				closure += n
			}
			full := time.Since(start)
			b.ReportMetric(float64(read), "read-B")
			b.ReportMetric(float64(closure), "closure-B")
			b.ReportMetric(100*float64(read)/float64(closure), "read-%")
			b.ReportMetric(float64(full)/float64(perOp), "x-vs-full-read")
		})
	}
}
