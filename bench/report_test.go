package bench

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleResults is a made-up run shaped like a real one: the large image's
// baseline takes 400 s, its eStargz build 8 s.
func sampleResults(esgzWall float64, esgzBytes int64, warmWall float64) *Results {
	r := &Results{
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Finished: time.Date(2026, 1, 2, 3, 24, 5, 0, time.UTC),
		Host: Host{CPUs: 2, MemBytes: 24 << 30, Kernel: "6.1", Go: "go1.26"}, Nanofs: "nanofs version dev",
		Link:         LinkInfo{Shaped: true, Rate: "100mbit", RateBits: 100e6, RTT: 0.02},
		StartSeconds: 0.01,
		Workloads: []Workload{{Name: LargeImage, Layers: 7, UncompressedBytes: 4400 << 20, Files: 30000,
			BlobBytes: map[string]int64{Gzip: 4200 << 20, EStargz: 4210 << 20}}},
		LocalCopy: map[string]float64{LargeImage: 0.4},
	}
	r.Runs = []Run{
		{Image: LargeImage, Encoding: Gzip, Contender: Baseline, Cache: Cold, Wall: 400, RegistryBytes: 4200 << 20, Phases: map[string]float64{"pull": 370, "extract": 29}, Program: "/usr/bin/node"},
		{Image: LargeImage, Encoding: Gzip, Contender: Baseline, Cache: Warm, Wall: 30},
		{Image: LargeImage, Encoding: Gzip, Contender: Build, Cache: Cold, Wall: 380, RegistryBytes: 4200 << 20, MinFetch: 100 << 20, PlanBytes: 96 << 20},
		{Image: LargeImage, Encoding: Gzip, Contender: Build, Cache: Warm, Wall: 0.6},
		{Image: LargeImage, Encoding: EStargz, Contender: Build, Cache: Cold, Wall: esgzWall, RegistryBytes: esgzBytes, Fetched: esgzBytes, TOCBytes: 6 << 20, MinFetch: 30 << 20, PlanBytes: 96 << 20},
		{Image: LargeImage, Encoding: EStargz, Contender: Build, Cache: Warm, Wall: warmWall},
		{Image: LargeImage, Encoding: EStargz, Contender: Mount, Cache: Cold, Wall: 3, FirstByte: 2, ClosureRead: 9},
		{Image: LargeImage, Encoding: Gzip, Contender: Mount, Cache: Cold, Skipped: "not run"},
	}
	r.Stages = []Stage{{Image: LargeImage, Encoding: EStargz, Cache: Warm, Open: 0.2, Resolve: 0.05, Write: 0.3, Requests: 2}}
	return r
}

func TestGoals(t *testing.T) {
	tests := []struct {
		name      string
		esgzWall  float64
		esgzBytes int64
		warmWall  float64
		met       []bool // in Goals order: speedup, bytes, gzip, warm gzip, warm eStargz
	}{
		{"all met", 8, 33 << 20, 0.7, []bool{true, true, true, true, true}},
		{"slow and heavy", 50, 40 << 20, 0.9, []bool{false, false, true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleResults(tt.esgzWall, tt.esgzBytes, tt.warmWall)
			goals := r.Goals()
			require.Len(t, goals, len(tt.met))
			for i, g := range goals {
				assert.True(t, g.Known, g.Text)
				assert.Equal(t, tt.met[i], g.Met, "%s: %s", g.Text, g.Measured)
				if !g.Met {
					assert.NotEmpty(t, g.Why, "a missed goal says why")
				}
			}
		})
	}
}

func TestRatios(t *testing.T) {
	r := sampleResults(8, 33<<20, 0.7)
	s, ok := r.Speedup(LargeImage, EStargz, Cold)
	require.True(t, ok)
	assert.InDelta(t, 50, s, 1e-9)
	b, ok := r.BytesRatio(LargeImage, EStargz)
	require.True(t, ok)
	assert.InDelta(t, 1.1, b, 1e-9)
	run, _ := r.Find(LargeImage, EStargz, Build, Cold)
	lim, ok := r.PhysicalLimit(run)
	require.True(t, ok)
	assert.InDelta(t, float64(30<<20)*8/100e6+6*0.02, lim, 1e-9)
	_, ok = r.Speedup(LargeImage, EStargz, "lukewarm")
	assert.False(t, ok)

	r.Link.Shaped = false
	_, ok = r.PhysicalLimit(run)
	assert.False(t, ok, "no limit without a rate")
}

func TestWriteReport(t *testing.T) {
	r := sampleResults(50, 40<<20, 0.9)
	dir := t.TempDir()
	require.NoError(t, writeReport(r, dir))

	md, err := os.ReadFile(filepath.Join(dir, "RESULTS.md"))
	require.NoError(t, err)
	for _, want := range []string{
		"| large | gzip | baseline | cold | 400.0 s |",
		"pull 370.0 s, extract 29.00 s",
		"**missed**", "**met**",
		"Why the missed goals were missed",
		"were eStargz footers and TOCs",
		"| large | gzip | nanofs mount | cold | – |",
		"local copy of the plan",
		"`/usr/bin/node`",
	} {
		assert.Contains(t, string(md), want)
	}

	f, err := os.Open(filepath.Join(dir, "results.png"))
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 1000)

	// Saved and loaded, the results render the same report.
	require.NoError(t, r.Save(filepath.Join(dir, "results.json")))
	back, err := LoadResults(filepath.Join(dir, "results.json"))
	require.NoError(t, err)
	var a, b bytes.Buffer
	require.NoError(t, r.WriteMarkdown(&a))
	require.NoError(t, back.WriteMarkdown(&b))
	assert.Equal(t, a.String(), b.String())
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		secs float64
		want string
	}{{0, "0 s"}, {0.0042, "4.2 ms"}, {0.25, "250 ms"}, {3.14159, "3.14 s"}, {400, "400.0 s"}, {1234, "20m34s"}} {
		assert.Equal(t, tt.want, fmtSec(tt.secs))
	}
	for _, tt := range []struct {
		n    int64
		want string
	}{{512, "512 B"}, {1536, "1.50 KiB"}, {100 << 20, "100.0 MiB"}, {4<<30 + 300<<20, "4.29 GiB"}} {
		assert.Equal(t, tt.want, fmtBytes(tt.n))
	}
}

func TestParseRate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"100mbit", 100e6, true}, {"1gbit", 1e9, true}, {"512kbit", 512e3, true}, {"2.5mbit", 2.5e6, true},
		{"8000", 8000, true}, {"fast", 0, false}, {"-1mbit", 0, false}, {"", 0, false},
	} {
		got, err := ParseRate(tt.in)
		if !tt.ok {
			assert.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

// Lines as `perf report --stdio -g none` prints them, with and without
// --children.
const perfChildren = `# Samples: 1K of event 'cpu-clock:ppp'
#
# Children      Self  Symbol
#
    94.76%     0.00%  [.] runtime.goexit.abi0                                        -      -
    69.34%     0.00%  [.] github.com/nanofs/nanofs/lazy.(*File).ReadAt               -      -
    69.34%     0.00%  [.] github.com/nanofs/nanofs/lazy.(*stargzLayer).readAt        -      -
    67.34%     0.00%  [.] github.com/nanofs/nanofs/lazy/internal/cas.(*Store).ReadVerified  -  -
    50.26%     0.06%  [.] github.com/nanofs/nanofs/vm.addPlanFile                    -      -
    46.57%    23.48%  [k] _copy_to_iter                                              -      -
    26.52%     0.00%  [.] main.runBuild                                              -      -
`

const perfSelf = `# Overhead  Symbol
    24.58%  [k] pvm_irq_enable                       -      -
    21.09%  [.] crypto/internal/fips140/sha256.blockSHANI.abi0   -      -
`

func TestParsePerfReport(t *testing.T) {
	incl := parsePerfReport(perfChildren, true)
	require.Len(t, incl, 7)
	assert.Equal(t, ProfileLine{Percent: 46.57, Symbol: "_copy_to_iter [k]"}, incl[5])
	own := collapseOwn(incl, 10)
	assert.Equal(t, []ProfileLine{
		{69.34, "lazy.(*File).ReadAt, lazy.(*stargzLayer).readAt"},
		{67.34, "lazy/internal/cas.(*Store).ReadVerified"},
		{50.26, "vm.addPlanFile"},
		{26.52, "main.runBuild"},
	}, own)
	assert.Len(t, collapseOwn(incl, 2), 2)

	self := parsePerfReport(perfSelf, false)
	assert.Equal(t, []ProfileLine{{24.58, "pvm_irq_enable [k]"}, {21.09, "crypto/internal/fips140/sha256.blockSHANI.abi0"}}, self)
}
