package disk

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nanofs/nanofs/resolve"
	"github.com/stretchr/testify/require"
)

// BenchmarkWriteDisk measures writing a whole bootable disk from a plan of
// 64 files (64 MiB) on the host, against a baseline measured in the same
// run: copying the same files back to back into one file with io.Copy.
func BenchmarkWriteDisk(b *testing.B) {
	k := testKernel(b, probeStage1, 96)
	src := b.TempDir()
	plan := &resolve.Plan{Program: "/f00"}
	plan.Entries = append(plan.Entries, resolve.Entry{Path: "/", Kind: resolve.KindDir})
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	var total int64
	for i := range 64 {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		name := fmt.Sprintf("f%02d", i)
		require.NoError(b, os.WriteFile(filepath.Join(src, name), buf, 0o644))
		plan.Entries = append(plan.Entries, resolve.Entry{Path: "/" + name, Kind: resolve.KindFile, Size: int64(len(buf))})
		total += int64(len(buf))
	}
	fsys := os.DirFS(src)
	out := b.TempDir()

	var disk, base time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		_, err := WriteDisk(context.Background(), filepath.Join(out, "d.img"), fsys, plan, WithKernel(k))
		require.NoError(b, err)
		disk += time.Since(start)

		start = time.Now()
		f, err := os.Create(filepath.Join(out, "copy"))
		require.NoError(b, err)
		for _, e := range plan.Entries[1:] {
			in, err := fsys.Open(e.Path[1:])
			require.NoError(b, err)
			_, err = io.Copy(f, in)
			require.NoError(b, err)
			in.Close()
		}
		require.NoError(b, f.Sync())
		require.NoError(b, f.Close())
		base += time.Since(start)
	}
	mb := float64(total) / 1e6 * float64(b.N)
	b.ReportMetric(mb/disk.Seconds(), "disk-MB/s")
	b.ReportMetric(mb/base.Seconds(), "copy-MB/s")
	b.ReportMetric(float64(disk)/float64(base), "x-copy")
}
