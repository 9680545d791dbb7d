package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// TestQuickCompare is a short side-by-side of two nanofs binaries (the one
// under test, NANOFS_BIN, and a baseline, NANOFS_BASE_BIN: the same tool
// built from an earlier commit) building the debian-node eStargz image
// cold and warm, through the delay proxy (NANOFS_QUICK_RTT, default 20ms)
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
	img := testimage.CatalogImage(t, testimage.CatalogDebianNode, testimage.EStargz)
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "node", img)
	c := testimage.StartCounter(t, reg.Host)
	p, err := StartDelayProxy(c.Host, rtt)
	require.NoError(t, err)
	defer p.Close()
	ref := p.Addr + "/node"

	build := func(bin, cache string) (wall, cpu time.Duration, bytes int64) {
		t.Helper()
		c.Reset()
		out := filepath.Join(t.TempDir(), "disk.img")
		cmd := exec.Command(bin, "build", ref, "--entry", "node", "-o", out, "--cache-dir", cache)
		var stderr bytesBuffer
		cmd.Stderr = &stderr
		start := time.Now()
		require.NoError(t, cmd.Run(), stderr.String())
		wall = time.Since(start)
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return wall, cpu, c.Stats().BlobBytes
	}
	const rounds = 3
	type row struct{ wall, cpu time.Duration }
	res := map[string]map[string][]row{}
	var fetched = map[string]int64{}
	for i := 0; i < rounds; i++ {
		for _, which := range []string{"base", "new"} {
			if res[which] == nil {
				res[which] = map[string][]row{}
			}
			cache := t.TempDir()
			w, cpu, n := build(bins[which], cache)
			res[which]["cold"] = append(res[which]["cold"], row{w, cpu})
			fetched[which] = n
			w, cpu, _ = build(bins[which], cache)
			res[which]["warm"] = append(res[which]["warm"], row{w, cpu})
		}
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
	for _, phase := range []string{"cold", "warm"} {
		b, n := best(res["base"][phase]), best(res["new"][phase])
		mb := func(which string) float64 { return float64(fetched[which]) / 1e6 }
		t.Logf("%s (best of %d, rtt %v): base %v (cpu %v, %.3f cpu-s/MB fetched), new %v (cpu %v, %.3f cpu-s/MB): ratio %.2f",
			phase, rounds, rtt, b.wall.Round(time.Millisecond), b.cpu.Round(time.Millisecond), b.cpu.Seconds()/mb("base"),
			n.wall.Round(time.Millisecond), n.cpu.Round(time.Millisecond), n.cpu.Seconds()/mb("new"),
			n.wall.Seconds()/b.wall.Seconds())
	}
	t.Logf("cold fetched: base %s, new %s", strconv.FormatInt(fetched["base"], 10), fmt.Sprint(fetched["new"]))
}

type bytesBuffer = bytes.Buffer
