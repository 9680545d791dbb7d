package bench

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// TestQuickCompare is a short side-by-side of two nanofs binaries (the one
// under test, NANOFS_BIN, and a baseline, NANOFS_BASE_BIN: the same tool
// built from an earlier commit) building the debian-node image, eStargz
// and zstd:chunked, cold and warm, through the delay proxy (NANOFS_QUICK_RTT, default 20ms)
// without a rate limit: it shows what round trips and CPU cost without the
// minutes of `make bench`. It runs only with NANOFS_QUICK=1, and reports
// wall time, registry bytes and CPU seconds per MB fetched of each build.
func TestQuickCompare(t *testing.T) {
	if os.Getenv("NANOFS_QUICK") != "1" {
		t.Skip("set NANOFS_QUICK=1 (and NANOFS_BIN, NANOFS_BASE_BIN) to run the quick comparison")
	}
	bins := map[string]string{"new": os.Getenv("NANOFS_BIN"), "base": os.Getenv("NANOFS_BASE_BIN")}
	for k, v := range bins {
		if v == "" {
			t.Skipf("NANOFS_BIN and NANOFS_BASE_BIN name the binaries to compare (%s missing)", k)
		}
	}
	if os.Getenv("NANOFS_KERNEL") == "" {
		t.Skip("needs NANOFS_KERNEL and NANOFS_BOOT (a Nanos kernel) to write a bootable disk")
	}
	rtt := 20 * time.Millisecond
	if s := os.Getenv("NANOFS_QUICK_RTT"); s != "" {
		var err error
		rtt, err = time.ParseDuration(s)
		require.NoError(t, err)
	}
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "node-estargz", testimage.CatalogImage(t, testimage.CatalogDebianNode, testimage.EStargz))
	gz := testimage.CatalogImage(t, testimage.CatalogDebianNode, testimage.Gzip)
	reg.Push(t, "node-zstd-chunked", testimage.ZstdChunkedImage(t, gz, testimage.ZstdChunkedOptions{}))
	c := testimage.StartCounter(t, reg.Host)
	p, err := StartDelayProxy(c.Host, rtt)
	require.NoError(t, err)
	defer p.Close()

	type row struct {
		wall, cpu time.Duration
		bytes     int64
	}
	build := func(bin, ref, cache string) row {
		t.Helper()
		c.Reset()
		out := filepath.Join(t.TempDir(), "disk.img")
		cmd := exec.Command(bin, "build", ref, "--entry", "node", "-o", out, "--cache-dir", cache)
		var stderr bytesBuffer
		cmd.Stderr = &stderr
		start := time.Now()
		require.NoError(t, cmd.Run(), stderr.String())
		return row{wall: time.Since(start), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), bytes: c.Stats().BlobBytes}
	}
	best := func(rs []row) row {
		b := rs[0]
		for _, r := range rs[1:] {
			if r.wall < b.wall {
				b = r
			}
		}
		return b
	}
	const rounds = 3
	for _, enc := range []string{"estargz", "zstd-chunked"} {
		ref := p.Addr + "/node-" + enc
		res := map[string]map[string][]row{"base": {}, "new": {}}
		for range rounds {
			for _, which := range []string{"base", "new"} {
				cache := t.TempDir()
				res[which]["cold"] = append(res[which]["cold"], build(bins[which], ref, cache))
				res[which]["warm"] = append(res[which]["warm"], build(bins[which], ref, cache))
			}
		}
		for _, phase := range []string{"cold", "warm"} {
			b, n := best(res["base"][phase]), best(res["new"][phase])
			perMB := func(r row, cold row) float64 { return r.cpu.Seconds() / (float64(cold.bytes) / 1e6) }
			bc, nc := best(res["base"]["cold"]), best(res["new"]["cold"])
			t.Logf("%s %s (best of %d, rtt %v): base %v (cpu %v, %.3f cpu-s/MB fetched cold, %s from the registry), new %v (cpu %v, %.3f cpu-s/MB, %s): time ratio %.2f",
				enc, phase, rounds, rtt,
				b.wall.Round(time.Millisecond), b.cpu.Round(time.Millisecond), perMB(b, bc), fmtBytes(b.bytes),
				n.wall.Round(time.Millisecond), n.cpu.Round(time.Millisecond), perMB(n, nc), fmtBytes(n.bytes),
				n.wall.Seconds()/b.wall.Seconds())
		}
	}
}

type bytesBuffer = bytes.Buffer
