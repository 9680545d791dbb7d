package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// Environment of the macro benchmark (see README.md).
const (
	envEnable  = "NANOFS_BENCH"         // "1" runs TestMacroBench
	envRate    = "NANOFS_BENCH_RATE"    // tc rate of the link, default 100mbit
	envDelay   = "NANOFS_BENCH_DELAY"   // round-trip time added by the delay proxy, default 20ms
	envShape   = "NANOFS_BENCH_SHAPE"   // "0": no rate limit, no delay
	envBallast = "NANOFS_BENCH_BALLAST" // ballast of the large image, default 4GiB
	envOnly    = "NANOFS_BENCH_ONLY"    // comma-separated workloads to run (default all)
	envOut     = "NANOFS_BENCH_OUT"     // where RESULTS.md, results.json and results.png go (default: this directory)
	envCache   = "NANOFS_BENCH_CACHE"   // workload cache (default os.UserCacheDir()/nanofs-test/bench)
	envReport  = "NANOFS_BENCH_REPORT"  // a results.json to render again, without running anything
	envBin     = "NANOFS_BIN"           // the nanofs binary (default: built here)
	envMicro   = "NANOFS_BENCH_MICRO"   // packages whose go test -bench benchmarks run too (default ./...; "none")
)

// workPrefix names the benchmark's scratch directory in os.TempDir(), with
// the pid after it, so a later run can remove what a crashed one left.
const workPrefix = "nanofs-bench-"

// config is the benchmark's setting, from the environment.
type config struct {
	shape    bool
	rate     string
	rateBits int64
	rtt      time.Duration
	ballast  int64
	only     map[string]bool
	out      string
	cache    string
	micro    []string // package patterns, relative to the module root
}

const (
	defaultRate    = "100mbit"
	defaultRTT     = 20 * time.Millisecond
	defaultBallast = 4 << 30
	// ballastLayers split the ballast: half below the program's layer,
	// half above it.
	ballastLayers = 4
	// smallFilesPerGiB is how many small files (up to 16 KiB) a GiB of
	// ballast holds besides its large ones.
	smallFilesPerGiB = 5000
)

func loadConfig(t *testing.T) config {
	c := config{shape: os.Getenv(envShape) != "0", rate: defaultRate, rtt: defaultRTT, ballast: defaultBallast, out: "."}
	if v := os.Getenv(envRate); v != "" {
		c.rate = v
	}
	var err error
	c.rateBits, err = ParseRate(c.rate)
	require.NoError(t, err, envRate)
	if v := os.Getenv(envDelay); v != "" {
		c.rtt, err = time.ParseDuration(v)
		require.NoError(t, err, envDelay)
	}
	if v := os.Getenv(envBallast); v != "" {
		c.ballast, err = parseSize(v)
		require.NoError(t, err, envBallast)
	}
	if v := os.Getenv(envOnly); v != "" {
		c.only = map[string]bool{}
		for _, w := range strings.Split(v, ",") {
			c.only[strings.TrimSpace(w)] = true
		}
	}
	if v := os.Getenv(envOut); v != "" {
		c.out = v
	}
	c.micro = []string{"./..."}
	if v, ok := os.LookupEnv(envMicro); ok {
		c.micro = strings.Fields(v)
		if v == "none" {
			c.micro = nil
		}
	}
	c.cache = os.Getenv(envCache)
	if c.cache == "" {
		d, err := os.UserCacheDir()
		require.NoError(t, err)
		c.cache = filepath.Join(d, "nanofs-test", "bench")
	}
	if !c.shape {
		c.rtt = 0
	}
	return c
}

// parseSize reads sizes like 4GiB, 512MiB, 1G or a byte count.
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}} {
		if v, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = v, u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !(v >= 1 && v*float64(mult) < 1<<50) { // NaN fails too
		return 0, fmt.Errorf("%q is not a size like 4GiB", s)
	}
	return int64(v * float64(mult)), nil
}

// TestMacroBench is the benchmark `make bench` runs: workloads, shaped
// link, every contender cold and warm, and the report. It takes up to 30
// minutes, so it runs only with NANOFS_BENCH=1.
func TestMacroBench(t *testing.T) {
	if os.Getenv(envEnable) != "1" {
		t.Skipf("the macro benchmark runs only with %s=1 (make bench): it takes up to 30 minutes", envEnable)
	}
	if os.Geteuid() != 0 {
		t.Skip("the macro benchmark needs root: network namespaces, tc, FUSE mounts, debootstrap")
	}
	for _, tool := range []string{"ip", "tc", "fusermount3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the macro benchmark needs %s (iproute2, fuse3)", tool)
		}
	}
	if _, err := os.Stat(testimage.DockerRegistryBinary); err != nil {
		t.Skipf("%s not found: install the docker-registry package", testimage.DockerRegistryBinary)
	}
	h := newHarness(t, loadConfig(t))
	h.run()
}

// TestRenderReport renders RESULTS.md and results.png again from a saved
// results.json (NANOFS_BENCH_REPORT=path), without running anything: for
// working on the report itself.
func TestRenderReport(t *testing.T) {
	file := os.Getenv(envReport)
	if file == "" {
		t.Skipf("set %s to a results.json to render it again", envReport)
	}
	res, err := LoadResults(file)
	require.NoError(t, err)
	out := filepath.Dir(file)
	require.NoError(t, writeReport(res, out))
	t.Logf("wrote %s", filepath.Join(out, "RESULTS.md"))
}

// harness holds what one benchmark run set up, and undoes it.
type harness struct {
	t     *testing.T
	cfg   config
	ctx   context.Context
	start time.Time
	work  string // scratch directory, removed at the end
	undo  *cleanups

	nanofs   string // binaries
	baseline string
	rusage   string

	link     *Link
	registry *Registry
	counter  *testimage.Counter
	delay    *DelayProxy

	res *Results
}

func newHarness(t *testing.T, cfg config) *harness {
	h := &harness{t: t, cfg: cfg, start: time.Now(), undo: &cleanups{}}
	h.res = &Results{Started: h.start, LocalCopy: map[string]float64{}, Host: hostInfo(),
		Link: LinkInfo{Shaped: cfg.shape}}
	if cfg.shape {
		h.res.Link.Rate, h.res.Link.RateBits, h.res.Link.RTT = cfg.rate, cfg.rateBits, cfg.rtt.Seconds()
	}

	// Everything started from here on is undone by the cleanups: when the
	// test ends, when it is interrupted, and shortly before go test's own
	// timeout would kill the process without running any of them.
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if d, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(ctx, d.Add(-90*time.Second))
		watchdog := time.AfterFunc(time.Until(d.Add(-30*time.Second)), func() {
			h.logf("the test deadline is near: cleaning up and exiting")
			h.undo.run()
			os.Exit(1)
		})
		h.undo.push(func() { watchdog.Stop() })
	}
	ctx, cancelAll := context.WithCancel(ctx)
	h.ctx = ctx
	h.undo.push(func() { cancelAll(); cancel() })
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	stopSignals := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			h.logf("%v: cleaning up", s)
			cancelAll()
			h.undo.run()
			os.Exit(130)
		case <-stopSignals:
		}
	}()
	h.undo.push(func() { signal.Stop(sigs); close(stopSignals) })
	t.Cleanup(h.undo.run)
	return h
}

func (h *harness) run() {
	h.removeStale()
	h.work = filepath.Join(os.TempDir(), workPrefix+strconv.Itoa(os.Getpid()))
	require.NoError(h.t, os.MkdirAll(h.work, 0o755))
	h.undo.push(func() { os.RemoveAll(h.work) })

	h.tools()
	workloads := h.setupWorkloads()
	h.res.SetupSeconds = time.Since(h.start).Seconds()
	h.shapeLink()
	if v := os.Getenv(envProbe); v != "" {
		h.probe(workloads, strings.Split(v, ","))
		return
	}
	for _, w := range workloads {
		h.runWorkload(w)
		h.save() // what is measured survives a later failure
	}
	h.microBenchmarks()
	h.res.Finished = time.Now()
	h.notes()
	h.save()
	require.NoError(h.t, writeReport(h.res, h.cfg.out))
	h.logf("wrote %s, results.json and results.png in %s", "RESULTS.md", h.cfg.out)
	for _, g := range h.res.Goals() {
		switch {
		case !g.Known:
			h.logf("goal not measured: %s", g.Text)
		case g.Met:
			h.logf("goal met: %s: %s", g.Text, g.Measured)
		default:
			h.logf("goal MISSED: %s: %s (%s)", g.Text, g.Measured, g.Why)
		}
	}
}

// writeReport writes RESULTS.md and results.png for res into dir.
func writeReport(res *Results, dir string) error {
	res.SortRuns()
	if err := writeAtomic(filepath.Join(dir, "RESULTS.md"), res.WriteMarkdown); err != nil {
		return err
	}
	return res.WriteChart(filepath.Join(dir, "results.png"))
}

func (h *harness) save() {
	h.res.SortRuns()
	if err := h.res.Save(filepath.Join(h.cfg.out, "results.json")); err != nil {
		h.t.Errorf("saving results: %v", err)
	}
}

// logf prints progress with the time since the start, straight to stderr
// so that it shows while the run goes on.
func (h *harness) logf(format string, a ...any) {
	d := time.Since(h.start).Round(time.Second)
	fmt.Fprintf(os.Stderr, "bench %02d:%02d %s\n", int(d.Minutes()), int(d.Seconds())%60, fmt.Sprintf(format, a...))
}

// removeStale undoes what crashed runs left: their namespaces (with the
// registries in them), their FUSE mounts and their scratch directories.
func (h *harness) removeStale() {
	if removed, err := RemoveStaleLinks(h.ctx); err != nil {
		h.t.Logf("removing stale namespaces: %v", err)
	} else if len(removed) > 0 {
		h.logf("removed namespaces left by earlier runs: %v", removed)
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), workPrefix+"*"))
	for _, d := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), workPrefix))
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		for _, m := range mountsUnder(d) {
			h.logf("unmounting %s, left by an earlier run", m)
			fusermountU(m)
		}
		h.logf("removing %s, left by an earlier run", d)
		os.RemoveAll(d)
	}
}

// mountsUnder lists the mount points below dir (from mountinfo), deepest
// first.
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if strings.HasPrefix(mp, dir+"/") {
			out = append([]string{mp}, out...)
		}
	}
	return out
}

// unescapeMountinfo decodes the octal escapes (\040 for a space) of
// mountinfo's fields.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fusermountU detaches a FUSE mount, also one whose server died.
func fusermountU(dir string) error {
	out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u -z %s: %w: %s", dir, err, bytes.TrimSpace(out))
	}
	return nil
}

// tools finds or builds the binaries the contenders run.
func (h *harness) tools() {
	h.nanofs = os.Getenv(envBin)
	if h.nanofs == "" {
		h.nanofs = filepath.Join(h.work, "nanofs")
		h.goBuild(h.nanofs, "github.com/nanofs/nanofs/cmd/nanofs")
	}
	abs, err := filepath.Abs(h.nanofs)
	require.NoError(h.t, err)
	h.nanofs = abs
	h.baseline = filepath.Join(h.work, "baseline")
	h.goBuild(h.baseline, "github.com/nanofs/nanofs/bench/cmd/baseline")
	h.rusage = filepath.Join(h.work, "rusage")
	h.goBuild(h.rusage, "github.com/nanofs/nanofs/bench/cmd/rusage")

	out, err := exec.CommandContext(h.ctx, h.nanofs, "--version").Output()
	require.NoError(h.t, err, "%s --version", h.nanofs)
	h.res.Nanofs = strings.TrimSpace(string(out))
	// The cost of starting the CLI at all, the floor of every run (best
	// of five, so a cold page cache does not count).
	best := time.Duration(1 << 62)
	for range 5 {
		t0 := time.Now()
		require.NoError(h.t, exec.CommandContext(h.ctx, h.nanofs, "--version").Run())
		best = min(best, time.Since(t0))
	}
	h.res.StartSeconds = best.Seconds()
	h.logf("using %s (%s); the baseline is %s", h.nanofs, h.res.Nanofs, h.baseline)
}

func (h *harness) goBuild(out, pkg string) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.CommandContext(h.ctx, goBin, "build", "-trimpath", "-o", out, pkg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(h.t, cmd.Run(), "go build %s: %s", pkg, stderr.String())
}

// shapeLink puts the rate limit on the veth and the delay proxy and the
// counter in front of the registry: contender -> delay proxy -> counter ->
// veth (tbf) -> registry. The counter sits at the registry's end, so it
// counts what the registry sent, whatever the client made of it.
func (h *harness) shapeLink() {
	if h.cfg.shape {
		require.NoError(h.t, h.link.Shape(h.ctx, h.cfg.rate))
	}
	h.counter = testimage.StartCounter(h.t, h.registry.Host)
	var err error
	h.delay, err = StartDelayProxy(h.counter.Host, h.cfg.rtt)
	require.NoError(h.t, err)
	h.undo.push(func() { h.delay.Close() })
	if h.cfg.shape {
		h.logf("link shaped: %s both ways, %v round trip; contenders reach the registry at %s", h.cfg.rate, h.cfg.rtt, h.delay.Addr)
	} else {
		h.logf("link NOT shaped (%s=0); contenders reach the registry at %s", envShape, h.delay.Addr)
	}
}

// microBenchmarks runs the packages' own go test benchmarks (the TFS
// writer against a plain copy, the resolver, and the rest) after the macro
// runs, so that one `make bench` reports both; their output goes into the
// report as it is.
func (h *harness) microBenchmarks() {
	if len(h.cfg.micro) == 0 {
		return
	}
	h.logf("micro-benchmarks: go test -run '^$' -bench . -benchmem %s", strings.Join(h.cfg.micro, " "))
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.CommandContext(h.ctx, goBin, append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem"}, h.cfg.micro...)...)
	cmd.Dir = ".." // the module root: this test runs in bench/
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	h.res.MicroSeconds = time.Since(t0).Seconds()
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "Benchmark"), strings.HasPrefix(line, "pkg:"), strings.HasPrefix(line, "ok"),
			strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "---"), strings.HasPrefix(line, "cpu:"),
			strings.Contains(line, "[build failed]"), strings.HasPrefix(line, "#"):
			keep = append(keep, line)
		}
	}
	h.res.Micro = strings.Join(keep, "\n")
	if err != nil {
		h.res.MicroError = errString(err)
		h.t.Errorf("micro-benchmarks: %v\n%s", err, out)
	}
	h.logf("micro-benchmarks done in %s", fmtSec(h.res.MicroSeconds))
}

// notes records the facts a reader of the report needs about this run.
func (h *harness) notes() {
	if h.cfg.ballast < defaultBallast {
		h.res.Notes = append(h.res.Notes, fmt.Sprintf("The large image's ballast was reduced to %s with %s (the issue asks for at least 4 GiB).", fmtBytes(h.cfg.ballast), envBallast))
	}
	if h.cfg.only != nil {
		h.res.Notes = append(h.res.Notes, fmt.Sprintf("Only some workloads ran (%s).", envOnly))
	}
}

// hostInfo describes the machine.
func hostInfo() Host {
	hi := Host{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		hi.MemBytes = int64(si.Totalram) * int64(si.Unit)
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b []byte
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		hi.Kernel = string(b)
	}
	return hi
}

// cleanups is a stack of undo functions, each run once, last first, from
// whichever comes first: the test's end, a signal, the deadline watchdog.
type cleanups struct {
	mu  sync.Mutex
	fns []*func()
}

// push adds fn and returns a function that runs it now (and drops it).
func (c *cleanups) push(fn func()) (runNow func()) {
	var once sync.Once
	f := func() { once.Do(fn) }
	c.mu.Lock()
	c.fns = append(c.fns, &f)
	c.mu.Unlock()
	return f
}

func (c *cleanups) run() {
	for {
		c.mu.Lock()
		if len(c.fns) == 0 {
			c.mu.Unlock()
			return
		}
		f := c.fns[len(c.fns)-1]
		c.fns = c.fns[:len(c.fns)-1]
		c.mu.Unlock()
		(*f)()
	}
}

// errString is err's text, "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Sprintf("%v: %s", err, bytes.TrimSpace(ee.Stderr))
	}
	return err.Error()
}
