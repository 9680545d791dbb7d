package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/disk"
)

// runWorkload runs every contender on one workload: the baseline cold and
// warm, the local copy of its plan, then for each encoding nanofs build
// cold and warm (each disk checked against the baseline's), the stage
// breakdown (warm; cold too for the encodings read lazily), and nanofs
// mount.
func (h *harness) runWorkload(w Workload) {
	var blobs []string
	for _, enc := range Encodings {
		blobs = append(blobs, enc+" "+fmtBytes(w.BlobBytes[enc]))
	}
	h.logf("=== %s (%s uncompressed; %s)", w.Name, fmtBytes(w.UncompressedBytes), strings.Join(blobs, ", "))
	dir := filepath.Join(h.work, w.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	defer os.RemoveAll(dir)

	layoutDir := filepath.Join(dir, "baseline-layout")
	cold := h.runBaseline(w, Cold, layoutDir, filepath.Join(dir, "baseline-cold"), "")
	os.RemoveAll(filepath.Join(dir, "baseline-cold"))
	planFile := filepath.Join(dir, "plan.json")
	root := filepath.Join(dir, "baseline-warm")
	warm := h.runBaseline(w, Warm, layoutDir, root, planFile)
	os.RemoveAll(layoutDir)
	refDisk := ""
	var plan *savedPlan
	switch {
	case warm.OK():
		refDisk = root + ".img"
		var err error
		if plan, err = loadPlan(planFile); err != nil {
			h.t.Errorf("%s: reading the baseline's plan: %v", w.Name, err)
		}
	case cold.OK():
		refDisk = filepath.Join(dir, "baseline-cold.img")
	}
	if plan != nil {
		h.localCopy(w, root, plan, filepath.Join(dir, "copy.bin"))
	}
	os.RemoveAll(root)

	for _, enc := range Encodings {
		cache := filepath.Join(dir, "cache-"+slug(enc))
		for _, state := range []string{Cold, Warm} {
			disk := h.runBuild(w, enc, state, cache, filepath.Join(dir, slug(enc)+"-"+state+".img"))
			if disk != "" && refDisk != "" {
				assert.NoError(h.t, sameTree(refDisk, disk), "%s %s %s build: the disk differs from the baseline's", w.Name, enc, state)
			}
			os.Remove(disk)
		}
		if w.Name == LargeImage {
			h.profile(w, enc, cache, filepath.Join(dir, "profiled.img"))
		}
		h.stages(w, enc, Warm, cache)
		if Lazy(enc) {
			fresh := filepath.Join(dir, "cache-stages")
			h.stages(w, enc, Cold, fresh)
			os.RemoveAll(fresh)
		}

		switch {
		case plan == nil:
			h.skip(w, enc, Mount, Cold, "no plan: the baseline failed")
			h.skip(w, enc, Mount, Warm, "no plan: the baseline failed")
		case enc == Gzip && w.Name == LargeImage:
			// A cold mount of a gzip image downloads every layer, as the
			// cold gzip build just did; the time budget has no room for
			// that again. Warm, it reuses the build's cache.
			h.skip(w, enc, Mount, Cold, "not run: a cold mount of a gzip image downloads every layer before it answers, as the cold gzip build does (see that row); the 30-minute budget has no room for a third full transfer")
			h.runMount(w, enc, Warm, cache, plan)
		default:
			mc := filepath.Join(dir, "cache-mount-"+slug(enc))
			h.runMount(w, enc, Cold, mc, plan)
			h.runMount(w, enc, Warm, mc, plan)
			os.RemoveAll(mc)
		}
		os.RemoveAll(cache)
	}
	os.Remove(refDisk)
}

func (h *harness) skip(w Workload, enc, contender, cache, why string) {
	h.res.Runs = append(h.res.Runs, Run{Image: w.Name, Encoding: enc, Contender: contender, Cache: cache, Skipped: why})
}

// clientRef is the reference contenders use: through the delay proxy and
// the counter.
func (h *harness) clientRef(w Workload, enc string) string {
	return h.delay.Addr + "/" + w.Refs[enc]
}

// proc is a finished subprocess and what it cost.
type proc struct {
	wall   time.Duration
	maxRSS int64
	cpu    time.Duration
	stdout []byte
	err    error
}

// execMeasured runs a contender as a child process and measures it: wall
// time here, peak RSS and CPU time by the kernel's accounting of that
// process alone, which the rusage wrapper reports (see bench/cmd/rusage
// for why a direct child of this process would not do).
func (h *harness) execMeasured(name string, args ...string) proc {
	usage := filepath.Join(h.work, "rusage.json")
	os.Remove(usage)
	cmd := exec.CommandContext(h.ctx, h.rusage, append([]string{"-o", usage, "--", name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Cancelled, the wrapper passes SIGTERM on and the contender stops
	// cleanly; Pdeathsig kills whatever is left.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout bytes.Buffer
	stderr := &capped{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	t0 := time.Now()
	err := cmd.Run()
	p := proc{wall: time.Since(t0), stdout: stdout.Bytes()}
	if err != nil {
		tail := stderr.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		p.err = fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(tail))
	}
	var u struct {
		MaxRSS int64   `json:"max_rss_bytes"`
		User   float64 `json:"user_seconds"`
		System float64 `json:"system_seconds"`
	}
	if data, rerr := os.ReadFile(usage); rerr != nil {
		p.err = errors.Join(p.err, fmt.Errorf("no usage from the rusage wrapper: %w", rerr))
	} else if rerr := json.Unmarshal(data, &u); rerr != nil {
		p.err = errors.Join(p.err, fmt.Errorf("usage %s: %w", data, rerr))
	}
	p.maxRSS, p.cpu = u.MaxRSS, time.Duration((u.User+u.System)*float64(time.Second))
	return p
}

// baselineSummary mirrors what bench/cmd/baseline prints.
type baselineSummary struct {
	Phases    map[string]float64 `json:"phases"`
	Program   string             `json:"program"`
	PlanFiles int                `json:"plan_files"`
	PlanBytes int64              `json:"plan_bytes"`
	Warnings  []string           `json:"warnings"`
}

// runBaseline pulls the gzip image into layoutDir (cold: it is empty;
// warm: it holds the image already), flattens it into root, resolves and
// writes root+".img".
func (h *harness) runBaseline(w Workload, state, layoutDir, root, planFile string) Run {
	run := Run{Image: w.Name, Encoding: Gzip, Contender: Baseline, Cache: state}
	quiesce()
	h.counter.Reset()
	h.logf("%s: baseline, %s", w.Name, state)
	args := []string{"-ref", h.clientRef(w, Gzip), "-layout", layoutDir, "-root", root, "-out", root + ".img", "-entry", w.Entry}
	if planFile != "" {
		args = append(args, "-plan", planFile)
	}
	p := h.execMeasured(h.baseline, args...)
	h.fill(&run, p)
	if p.err == nil {
		var s baselineSummary
		if err := json.Unmarshal(p.stdout, &s); err != nil {
			run.Error = fmt.Sprintf("reading the baseline's summary: %v", err)
		} else {
			run.Phases, run.Program, run.PlanFiles, run.PlanBytes = s.Phases, s.Program, s.PlanFiles, s.PlanBytes
			for _, warn := range s.Warnings {
				h.t.Logf("baseline %s: %s", w.Name, warn)
			}
		}
	}
	return h.record(run)
}

// buildSummary is the part of `nanofs build --json` the report uses.
type buildSummary struct {
	Program   string  `json:"program"`
	Files     int     `json:"files"`
	PlanBytes int64   `json:"plan_bytes"`
	MinFetch  int64   `json:"min_fetch_bytes"`
	Fetched   int64   `json:"fetched_bytes"`
	TOCBytes  int64   `json:"toc_bytes"`
	Requests  int64   `json:"requests"`
	Seconds   float64 `json:"seconds"`
}

// runBuild runs `nanofs build` (warm WarmRepeats times; cold once, or
// for a lazy encoding ColdRepeats times, each from an empty cache; the
// median recorded) and returns the disk it wrote ("" if none).
func (h *harness) runBuild(w Workload, enc, state, cache, out string) string {
	h.logf("%s: nanofs build %s, %s", w.Name, enc, state)
	n := 1
	switch {
	case state == Warm:
		n = WarmRepeats
	case Lazy(enc):
		n = ColdRepeats
	}
	var runs []Run
	for i := range n {
		if state == Cold && i > 0 {
			os.RemoveAll(cache) // cold again: what the last run fetched is gone
		}
		run := h.buildOnce(w, enc, state, cache, out)
		if !run.OK() {
			h.record(run)
			return ""
		}
		runs = append(runs, run)
	}
	slices.SortFunc(runs, func(a, b Run) int { return cmp.Compare(a.Wall, b.Wall) })
	run := runs[len(runs)/2]
	if n > 1 {
		run.Repeats, run.WallMin, run.WallMax = n, runs[0].Wall, runs[n-1].Wall
	}
	h.record(run)
	return out
}

func (h *harness) buildOnce(w Workload, enc, state, cache, out string) Run {
	run := Run{Image: w.Name, Encoding: enc, Contender: Build, Cache: state}
	quiesce()
	h.counter.Reset()
	p := h.execMeasured(h.nanofs, "build", "--json", "--quiet", "--no-bootloader", "--entry", w.Entry, "--cache-dir", cache, "-o", out, h.clientRef(w, enc))
	h.fill(&run, p)
	if p.err == nil {
		var s buildSummary
		if err := json.Unmarshal(p.stdout, &s); err != nil {
			run.Error = fmt.Sprintf("reading the build summary: %v", err)
		} else {
			run.Program, run.PlanFiles, run.PlanBytes = s.Program, s.Files, s.PlanBytes
			run.MinFetch, run.Fetched, run.TOCBytes = s.MinFetch, s.Fetched, s.TOCBytes
		}
	}
	return run
}

// quiesce writes back every dirty page before a measurement starts, so
// that no run pays for the writes of the one before it (a cold gzip build
// leaves gigabytes of cache to flush, and an fsync waits behind them).
// The page cache stays: warm means warm.
func quiesce() { syscall.Sync() }

// fill copies a subprocess's measurements and the counter's into run.
func (h *harness) fill(run *Run, p proc) {
	run.Wall, run.MaxRSS, run.CPU = p.wall.Seconds(), p.maxRSS, p.cpu.Seconds()
	st := h.counter.Stats()
	run.RegistryBytes, run.Requests = st.BlobBytes, st.Requests
	if p.err != nil {
		run.Error = errString(p.err)
	}
}

// record adds run to the results and reports it.
func (h *harness) record(run Run) Run {
	h.res.Runs = append(h.res.Runs, run)
	if run.Error != "" {
		h.t.Errorf("%s %s %s %s: %s", run.Image, run.Encoding, run.Contender, run.Cache, run.Error)
		return run
	}
	h.logf("  %s in %s: %s from the registry in %d requests, peak RSS %s, CPU %s",
		run.Contender, fmtSec(run.Wall), fmtBytes(run.RegistryBytes), run.Requests, fmtBytes(run.MaxRSS), fmtSec(run.CPU))
	return run
}

// savedPlan is the part of a plan's JSON the benchmark reads back.
type savedPlan struct {
	Program string `json:"program"`
	Objects []struct {
		File string `json:"file"`
		Role string `json:"role"`
	} `json:"objects"`
	Entries []struct {
		Path string `json:"path"`
		Kind string `json:"kind"`
		Size int64  `json:"size"`
	} `json:"entries"`
}

func loadPlan(file string) (*savedPlan, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var p savedPlan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// files are the image files the plan copies, as relative paths.
func (p *savedPlan) files() []string {
	var out []string
	for _, e := range p.Entries {
		if e.Kind == resolve.KindFile.String() {
			out = append(out, strings.TrimPrefix(e.Path, "/"))
		}
	}
	return out
}

// program is the canonical path of the executable the kernel starts.
func (p *savedPlan) program() string {
	for _, o := range p.Objects {
		if o.Role == string(resolve.RoleProgram) {
			return strings.TrimPrefix(o.File, "/")
		}
	}
	return strings.TrimPrefix(p.Program, "/")
}

// localCopy times the yardstick of a warm build: the plan's files read
// from the flattened tree (just written, so in the page cache, as a warm
// build's cache is) and written one after another into one file, fsynced,
// as the disk writer writes and syncs its disk.
func (h *harness) localCopy(w Workload, root string, plan *savedPlan, out string) {
	defer os.Remove(out)
	once := func() (time.Duration, error) {
		quiesce()
		t0 := time.Now()
		dst, err := os.Create(out)
		if err != nil {
			return 0, err
		}
		defer dst.Close()
		for _, name := range plan.files() {
			src, err := os.Open(filepath.Join(root, name))
			if err != nil {
				return 0, err
			}
			_, err = io.Copy(dst, src)
			src.Close()
			if err != nil {
				return 0, err
			}
		}
		if err := dst.Sync(); err != nil {
			return 0, err
		}
		if err := dst.Close(); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	}
	// The median of as many copies as warm builds, for the same reason.
	var times []time.Duration
	for range WarmRepeats {
		d, err := once()
		if err != nil {
			h.t.Errorf("%s: local copy of the plan: %v", w.Name, err)
			return
		}
		times = append(times, d)
	}
	slices.Sort(times)
	h.res.LocalCopy[w.Name] = times[len(times)/2].Seconds()
	h.logf("%s: local copy of the plan's %d files in %s (median of %d: %s to %s)", w.Name, len(plan.files()),
		fmtSec(h.res.LocalCopy[w.Name]), WarmRepeats, fmtSec(times[0].Seconds()), fmtSec(times[len(times)-1].Seconds()))
}

// stages makes the same library calls as `nanofs build` in this process,
// over cache, timing each: where a build's time goes.
func (h *harness) stages(w Workload, enc, state, cache string) {
	s := Stage{Image: w.Name, Encoding: enc, Cache: state}
	quiesce()
	h.counter.Reset()
	err := func() error {
		ctx, cancel := context.WithCancel(h.ctx)
		defer cancel()
		tr := &timedTransport{}
		t0 := time.Now()
		img, err := lazy.Open(ctx, h.clientRef(w, enc), lazy.WithCacheDir(cache), lazy.WithTransport(tr), lazy.WithTagCheckLater())
		if err != nil {
			return err
		}
		defer img.Close()
		t1 := time.Now()
		s.OpenWait, s.OpenRequests = tr.busy(t0, t1).Seconds(), tr.count(t1)
		c := img.Config()
		plan, err := resolve.Resolve(img, resolve.Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir},
			resolve.WithEntry(w.Entry))
		if err != nil {
			return err
		}
		tc := time.Now()
		if err := img.CheckTag(ctx); err != nil {
			return err
		}
		t2 := time.Now()
		s.TagWait = t2.Sub(tc).Seconds()
		out := filepath.Join(h.work, "stages.img")
		defer os.Remove(out)
		if _, err := disk.WriteDisk(ctx, out, img, plan, disk.WithoutBootloader(), disk.WithParallel(8)); err != nil {
			return err
		}
		t3 := time.Now()
		st := img.Stats()
		s.Open, s.Resolve, s.Write = t1.Sub(t0).Seconds(), tc.Sub(t1).Seconds(), t3.Sub(t2).Seconds()
		s.Requests, s.Bytes = st.Requests, st.Bytes
		return nil
	}()
	if err != nil {
		s.Error = err.Error()
		h.t.Errorf("%s %s %s stage breakdown: %v", w.Name, enc, state, err)
	} else {
		h.logf("  stages (%s): open %s, resolve %s, tag check %s, write %s", state, fmtSec(s.Open), fmtSec(s.Resolve), fmtSec(s.TagWait), fmtSec(s.Write))
	}
	h.res.Stages = append(h.res.Stages, s)
}

// profile runs one more warm build under perf and keeps the functions
// that took the most: the profile of the stage that is slow.
func (h *harness) profile(w Workload, enc, cache, out string) {
	pr := Profile{Image: w.Name, Encoding: enc}
	defer func() { h.res.Profiles = append(h.res.Profiles, pr) }()
	defer os.Remove(out)
	perf, err := exec.LookPath("perf")
	if err != nil {
		pr.Error = "perf not found (install linux-perf)"
		return
	}
	data := filepath.Join(h.work, "perf.data")
	defer os.Remove(data)
	args := []string{"build", "--json", "--quiet", "--no-bootloader", "--entry", w.Entry, "--cache-dir", cache, "-o", out, h.clientRef(w, enc)}
	pr.Command = "nanofs " + strings.Join(args, " ")
	rec := exec.CommandContext(h.ctx, perf, append([]string{"record", "-F", "999", "-g", "-o", data, "--", h.nanofs}, args...)...)
	if b, err := rec.CombinedOutput(); err != nil {
		pr.Error = fmt.Sprintf("perf record: %v: %s", err, lastLine(b))
		return
	}
	report := func(children bool, limit string) ([]ProfileLine, error) {
		mode := "--no-children"
		if children {
			mode = "--children"
		}
		b, err := exec.CommandContext(h.ctx, perf, "report", "-i", data, "--stdio", mode, "--sort", "symbol", "-g", "none", "--percent-limit", limit).Output()
		if err != nil {
			return nil, fmt.Errorf("perf report: %v", err)
		}
		return parsePerfReport(string(b), children), nil
	}
	incl, err1 := report(true, "3")
	self, err2 := report(false, "1")
	if err := errors.Join(err1, err2); err != nil {
		pr.Error = err.Error()
		return
	}
	pr.Inclusive = collapseOwn(incl, 10)
	pr.Self = self[:min(8, len(self))]
	h.logf("  profiled a warm %s build: %d functions", enc, len(pr.Inclusive))
}

// parsePerfReport reads the lines of `perf report --stdio -g none`:
// "  69.34%     0.00%  [.] symbol" with --children (the first column is
// the inclusive share), "  24.58%  [k] symbol" without.
func parsePerfReport(out string, children bool) []ProfileLine {
	var lines []ProfileLine
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || !strings.HasSuffix(f[0], "%") || strings.HasPrefix(l, "#") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		i := 1
		if children {
			i = 2
		}
		if len(f) < i+2 {
			continue
		}
		kind, sym := f[i], strings.TrimPrefix(f[i+1], "github.com/nanofs/nanofs/")
		if sym == "" {
			continue
		}
		if kind == "[k]" {
			sym += " [k]"
		}
		lines = append(lines, ProfileLine{Percent: pct, Symbol: sym})
	}
	return lines
}

// collapseOwn keeps nanofs's own functions (the module's packages; the
// CLI's are main.*), joins the ones with the same share (one call chain),
// and returns the first n.
func collapseOwn(lines []ProfileLine, n int) []ProfileLine {
	var out []ProfileLine
	for _, l := range lines {
		own := strings.HasPrefix(l.Symbol, "lazy") || strings.HasPrefix(l.Symbol, "resolve") || strings.HasPrefix(l.Symbol, "tfs") ||
			strings.HasPrefix(l.Symbol, "vm") || strings.HasPrefix(l.Symbol, "fusefs") || strings.HasPrefix(l.Symbol, "main.run")
		if !own {
			continue
		}
		if k := len(out) - 1; k >= 0 && out[k].Percent == l.Percent {
			out[k].Symbol += ", " + l.Symbol
			continue
		}
		out = append(out, l)
	}
	return out[:min(n, len(out))]
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// timedTransport records when each HTTP request was in flight.
type timedTransport struct {
	mu    sync.Mutex
	spans [][2]time.Time
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t0 := time.Now()
	resp, err := remote.DefaultTransport.RoundTrip(r)
	t.mu.Lock()
	t.spans = append(t.spans, [2]time.Time{t0, time.Now()})
	t.mu.Unlock()
	return resp, err
}

// busy is how long, between from and to, at least one request was in
// flight (the union of the spans; a response body still being read counts
// as done).
func (t *timedTransport) busy(from, to time.Time) time.Duration {
	t.mu.Lock()
	spans := slices.Clone(t.spans)
	t.mu.Unlock()
	slices.SortFunc(spans, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	var total time.Duration
	var cur [2]time.Time
	for _, s := range spans {
		if s[0].After(to) {
			break
		}
		s[1] = minTime(s[1], to)
		switch {
		case cur[1].IsZero():
			cur = s
		case s[0].After(cur[1]):
			total += cur[1].Sub(cur[0])
			cur = s
		case s[1].After(cur[1]):
			cur[1] = s[1]
		}
	}
	if !cur[1].IsZero() {
		total += cur[1].Sub(maxTime(cur[0], from))
	}
	return total
}

// count is how many requests started before t.
func (t *timedTransport) count(before time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.spans {
		if !s[0].After(before) {
			n++
		}
	}
	return n
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// runMount mounts the image with `nanofs mount --background` and reads
// the program through the mount (first byte, whole file), then every file
// of the plan; the server's peak RSS and CPU time come from /proc before
// it is unmounted.
func (h *harness) runMount(w Workload, enc, state, cache string, plan *savedPlan) {
	run := Run{Image: w.Name, Encoding: enc, Contender: Mount, Cache: state, Program: "/" + plan.program()}
	quiesce()
	h.counter.Reset()
	h.logf("%s: nanofs mount %s, %s", w.Name, enc, state)
	mnt, err := os.MkdirTemp(h.work, "mnt-")
	if err != nil {
		run.Error = err.Error()
		h.record(run)
		return
	}
	defer os.Remove(mnt)
	err = func() error {
		t0 := time.Now()
		cmd := exec.CommandContext(h.ctx, h.nanofs, "mount", "--background", "--quiet", "--cache-dir", cache, h.clientRef(w, enc), mnt)
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("nanofs mount: %s", errString(err))
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			fusermountU(mnt)
			return fmt.Errorf("nanofs mount printed %q, not a pid", out)
		}
		unmount := h.undo.push(func() { h.unmount(mnt, pid) })
		defer unmount()
		run.Ready = time.Since(t0).Seconds()

		f, err := os.Open(filepath.Join(mnt, plan.program()))
		if err != nil {
			return err
		}
		one := make([]byte, 1)
		if _, err := io.ReadFull(f, one); err != nil {
			f.Close()
			return err
		}
		run.FirstByte = time.Since(t0).Seconds()
		_, err = io.Copy(io.Discard, f)
		f.Close()
		if err != nil {
			return err
		}
		run.Wall = time.Since(t0).Seconds()
		for _, name := range plan.files() {
			if err := readAll(filepath.Join(mnt, name)); err != nil {
				return err
			}
		}
		run.ClosureRead = time.Since(t0).Seconds()
		run.MaxRSS, run.CPU, err = procUsage(pid)
		return err
	}()
	st := h.counter.Stats()
	run.RegistryBytes, run.Requests = st.BlobBytes, st.Requests
	if err != nil {
		run.Error = err.Error()
	}
	h.record(run)
}

// unmount ends a mount server: `nanofs umount`, then waiting for the
// server to exit (it does once unmounted), killing it after 10 s.
func (h *harness) unmount(mnt string, pid int) {
	if out, err := exec.Command(h.nanofs, "umount", mnt).CombinedOutput(); err != nil {
		h.t.Logf("nanofs umount %s: %v: %s", mnt, err, out)
		fusermountU(mnt)
	}
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			h.t.Logf("the mount server %d did not exit after the unmount: killing it", pid)
			syscall.Kill(pid, syscall.SIGKILL)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readAll(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procUsage reads a running process's peak RSS (VmHWM) and CPU time (user
// + system) from /proc: the mount server is not this process's child, so
// wait4's accounting does not reach it.
func procUsage(pid int) (int64, float64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	var rss int64
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			rss = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name in parentheses may hold spaces: count fields after
	// its closing parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("unreadable /proc/PID/stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	stt, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return rss, float64(ut+stt) / clockTicks, nil
}

// sameTree compares the root filesystems of two disks: the same paths,
// types, permissions, link targets and file contents. The baseline's disk
// is the oracle for nanofs's: its files came from go-containerregistry's
// flattening of the whole image, not from the lazy reader.
func sameTree(a, b string) error {
	ta, err := diskTree(a)
	if err != nil {
		return err
	}
	tb, err := diskTree(b)
	if err != nil {
		return err
	}
	var diffs []string
	for p, ea := range ta {
		if eb, ok := tb[p]; !ok {
			diffs = append(diffs, "only in "+filepath.Base(a)+": "+p)
		} else if ea != eb {
			diffs = append(diffs, fmt.Sprintf("%s: %s vs %s", p, ea, eb))
		}
	}
	for p := range tb {
		if _, ok := ta[p]; !ok {
			diffs = append(diffs, "only in "+filepath.Base(b)+": "+p)
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 10 {
			diffs = append(diffs[:10], fmt.Sprintf("and %d more", len(diffs)-10))
		}
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

// diskTree describes every entry of a disk's root filesystem in one line.
func diskTree(disk string) (map[string]string, error) {
	f, err := os.Open(disk)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fsys, err := tfs.Open(f, info.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", disk, err)
	}
	tree := map[string]string{}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := fs.Lstat(fsys, p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(fsys, p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case fi.Mode().IsRegular():
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %d %x", len(data), sha256.Sum256(data))
		}
		tree[p] = desc
		return nil
	})
	return tree, err
}
