package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Goals, reported against the numbers, never enforced. Issue #18 ("close
// to the physical limit") sets the first three; the last two are the
// goals of the issue that made the benchmark, still held.
const (
	GoalColdVsLimit    = 1.25 // a cold eStargz build vs the physical limit, at most (both workloads)
	GoalWarmVsCopy     = 1.5  // a warm build vs copying the plan's bytes locally, at most
	GoalZstdBytes      = 1.2  // a cold zstd:chunked build's registry bytes vs the plan's compressed bytes, at most
	GoalEStargzSpeedup = 10.0 // eStargz cold build of the large image vs the baseline, at least
	GoalEStargzBytes   = 1.2  // its registry bytes vs the plan's compressed bytes, at most
)

// GoalIssue is the issue whose goals the report checks.
const GoalIssue = 18

// WarmRepeats is how many times a warm build, and the local copy it is
// held against, run; the median counts. They take well under a second, so
// one run would say more about the machine's hiccups (a disk flush, a
// page-cache eviction) than about the build.
const WarmRepeats = 3

// ColdRepeats is how many times a cold build of a lazy encoding (eStargz,
// zstd:chunked) runs, each from an empty cache, its median recorded: it
// takes seconds, and one run of it on a shared machine is as noisy as a
// warm one. Cold builds of gzip images and the baseline take minutes and
// run once.
const ColdRepeats = 3

// LargeImage and DebianNodeImage name the workloads.
const (
	DebianNodeImage = "debian-node"
	LargeImage      = "large"
)

// RoundTrips is the least number of round trips a cold build of an image
// in this encoding needs before its last byte can arrive: connect, the
// manifest, the config, and last the file contents (all requests of one
// step in parallel). The table of contents of an eStargz or zstd:chunked
// layer (the blob's end; where the layer's annotations say) needs no
// round trip of its own: the manifest names the layer, so it is asked for
// with the config. Part of the physical limit.
func RoundTrips(encoding string) int {
	return 4
}

// PhysicalLimit is the least time a cold build could take on the link:
// the plan's compressed bytes at the link's rate, plus the round trips.
// ok is false on an unshaped link, which has no rate to divide by.
func (r *Results) PhysicalLimit(run Run) (seconds float64, ok bool) {
	if !r.Link.Shaped || r.Link.RateBits <= 0 || run.MinFetch <= 0 {
		return 0, false
	}
	return float64(run.MinFetch)*8/float64(r.Link.RateBits) + float64(RoundTrips(run.Encoding))*r.Link.RTT, true
}

// Speedup is the baseline's wall time over the build's (same image, same
// cache state). The baseline always pulls the gzip image: the image that
// exists today, whatever the build reads.
func (r *Results) Speedup(image, encoding, cache string) (float64, bool) {
	b, ok1 := r.Find(image, Gzip, Baseline, cache)
	n, ok2 := r.Find(image, encoding, Build, cache)
	if !ok1 || !ok2 || n.Wall <= 0 {
		return 0, false
	}
	return b.Wall / n.Wall, true
}

// BytesRatio is what the registry sent for a cold build over the plan's
// compressed bytes (lazy.Image.MinTransfer).
func (r *Results) BytesRatio(image, encoding string) (float64, bool) {
	n, ok := r.Find(image, encoding, Build, Cold)
	if !ok || n.MinFetch <= 0 {
		return 0, false
	}
	return float64(n.RegistryBytes) / float64(n.MinFetch), true
}

// WarmVsCopy is a warm build's wall time over the local copy of the plan.
func (r *Results) WarmVsCopy(image, encoding string) (float64, bool) {
	n, ok := r.Find(image, encoding, Build, Warm)
	c := r.LocalCopy[image]
	if !ok || c <= 0 {
		return 0, false
	}
	return n.Wall / c, true
}

// GoalKind says where a goal comes from and whether it counts.
type GoalKind int

const (
	// GoalRequired: issue #18's "done when" names the check.
	GoalRequired GoalKind = iota
	// GoalReported: held against the same bar as a required check, and
	// reported beside it, but the issue does not ask for it (the
	// zstd:chunked warm builds: the issue names four warm rows, gzip and
	// eStargz on both workloads).
	GoalReported
	// GoalEarlier: a goal of the issue that made the benchmark, still held
	// so that a regression shows.
	GoalEarlier
)

func (k GoalKind) String() string {
	switch k {
	case GoalRequired:
		return fmt.Sprintf("#%d", GoalIssue)
	case GoalReported:
		return fmt.Sprintf("#%d, reported only", GoalIssue)
	}
	return "earlier"
}

// Goal is one of the issue's goals with its verdict.
type Goal struct {
	Text     string
	Kind     GoalKind
	Measured string
	Met      bool
	Known    bool // false: not measured (a run failed, was skipped, or its workload did not run)
	Why      string
}

// goalWorkloads are the workloads issue #18's goals name: each is checked
// (or reported as not measured) whichever workloads ran.
var goalWorkloads = []string{DebianNodeImage, LargeImage}

// Goals checks the goals against the numbers: issue #18's first, then
// the earlier ones.
func (r *Results) Goals() []Goal {
	var goals []Goal
	for _, w := range goalWorkloads {
		run, _ := r.Find(w, EStargz, Build, Cold)
		g := Goal{Text: fmt.Sprintf("cold eStargz build (%s) ≤ %g× the physical limit", w, GoalColdVsLimit)}
		if lim, ok := r.PhysicalLimit(run); ok && run.OK() {
			v := run.Wall / lim
			g.Known, g.Met = true, v <= GoalColdVsLimit
			g.Measured = fmt.Sprintf("%.2f× (build %s, limit %s)", v, fmtSec(run.Wall), fmtSec(lim))
			if !g.Met {
				g.Why = r.whyCold(run)
			}
		}
		goals = append(goals, g)
	}
	for _, w := range goalWorkloads {
		for _, enc := range Encodings {
			g := Goal{Text: fmt.Sprintf("warm build (%s, %s) ≤ %g× copying the plan's bytes locally", w, enc, GoalWarmVsCopy)}
			if enc == ZstdChunked {
				g.Kind = GoalReported
			}
			if v, ok := r.WarmVsCopy(w, enc); ok {
				run, _ := r.Find(w, enc, Build, Warm)
				g.Known, g.Met = true, v <= GoalWarmVsCopy
				g.Measured = fmt.Sprintf("%.2f× (build %s, local copy %s)", v, fmtSec(run.Wall), fmtSec(r.LocalCopy[w]))
				if !g.Met {
					g.Why = r.whyWarm(run)
				}
			}
			goals = append(goals, g)
		}
	}
	for _, w := range goalWorkloads {
		goals = append(goals, r.bytesGoal(w, ZstdChunked, GoalZstdBytes, GoalRequired,
			fmt.Sprintf("cold zstd:chunked build (%s) fetches ≤ %g× the plan's compressed bytes", w, GoalZstdBytes)))
	}

	base, _ := r.Find(LargeImage, Gzip, Baseline, Cold)
	esgz, _ := r.Find(LargeImage, EStargz, Build, Cold)
	g := Goal{Kind: GoalEarlier, Text: fmt.Sprintf("cold eStargz build (large) ≥ %g× faster than the baseline", GoalEStargzSpeedup)}
	if s, ok := r.Speedup(LargeImage, EStargz, Cold); ok {
		g.Known, g.Met = true, s >= GoalEStargzSpeedup
		g.Measured = fmt.Sprintf("%.1f× (baseline %s, nanofs %s)", s, fmtSec(base.Wall), fmtSec(esgz.Wall))
		if !g.Met {
			g.Why = r.whyCold(esgz)
		}
	}
	goals = append(goals, g)
	goals = append(goals, r.bytesGoal(LargeImage, EStargz, GoalEStargzBytes, GoalEarlier,
		fmt.Sprintf("cold eStargz build (large) fetches ≤ %g× the plan's compressed bytes", GoalEStargzBytes)))
	return goals
}

// bytesGoal holds a cold build's registry bytes against the plan's
// compressed bytes.
func (r *Results) bytesGoal(image, encoding string, limit float64, kind GoalKind, text string) Goal {
	g := Goal{Kind: kind, Text: text}
	if b, ok := r.BytesRatio(image, encoding); ok {
		run, _ := r.Find(image, encoding, Build, Cold)
		g.Known, g.Met = true, b <= limit
		g.Measured = fmt.Sprintf("%.2f× (%s from the registry, plan %s compressed)", b, fmtBytes(run.RegistryBytes), fmtBytes(run.MinFetch))
		if !g.Met {
			g.Why = r.whyBytes(run)
		}
	}
	return g
}

// whyCold explains a slow cold build from its numbers: how far it is from
// the link's limit, what its CPU did, and where the in-process breakdown
// of a cold build of the same image put the time.
func (r *Results) whyCold(run Run) string {
	var parts []string
	if lim, ok := r.PhysicalLimit(run); ok {
		parts = append(parts, fmt.Sprintf("the physical limit for its plan is %s, it took %.1f× that", fmtSec(lim), run.Wall/lim))
	}
	if run.RegistryBytes > 0 && r.Link.RateBits > 0 && r.Link.Shaped {
		parts = append(parts, fmt.Sprintf("moving its %s at the link rate alone takes %s", fmtBytes(run.RegistryBytes),
			fmtSec(float64(run.RegistryBytes)*8/float64(r.Link.RateBits))))
	}
	if perMB, ok := run.CPUSecondsPerMB(); ok && run.Wall > 0 {
		s := fmt.Sprintf("it used %s of CPU in its %s (%.1f of the %d cores busy on average), %.3f CPU s per MB fetched",
			fmtSec(run.CPU), fmtSec(run.Wall), run.CPU/run.Wall, r.Host.CPUs, perMB)
		if at, ok := r.linkSecondsPerMB(); ok {
			s += fmt.Sprintf(" where the link delivers a MB every %.3f s", at)
		}
		parts = append(parts, s)
	}
	for _, s := range r.Stages {
		if s.Image == run.Image && s.Encoding == run.Encoding && s.Cache == Cold && s.Error == "" {
			parts = append(parts, fmt.Sprintf("in-process and cold, opening the image took %s (%s of it waiting on %d registry requests), resolving %s, waiting for the tag check %s and writing the disk %s",
				fmtSec(s.Open), fmtSec(s.OpenWait), s.OpenRequests, fmtSec(s.Resolve), fmtSec(s.TagWait), fmtSec(s.Write)))
		}
	}
	if run.Encoding == Gzip {
		parts = append(parts, "a gzip layer has no index, so every layer is downloaded whole before any file is known")
	}
	return strings.Join(parts, "; ")
}

// linkSecondsPerMB is how long the shaped link takes to deliver a
// megabyte (10^6 bytes): a cold run whose CPU s per MB comes near it on
// one core, or near it times the cores on all of them, cannot keep up
// with the link.
func (r *Results) linkSecondsPerMB() (float64, bool) {
	if !r.Link.Shaped || r.Link.RateBits <= 0 {
		return 0, false
	}
	return 8e6 / float64(r.Link.RateBits), true
}

// tocName is what an encoding's index costs are called in the report.
func tocName(encoding string) string {
	if encoding == ZstdChunked {
		return "zstd:chunked TOCs"
	}
	return "eStargz footers and TOCs"
}

// whyBytes splits a cold build's transfer into TOCs and file data.
func (r *Results) whyBytes(run Run) string {
	data := run.Fetched - run.TOCBytes
	s := fmt.Sprintf("of the %s nanofs received, %s (%.0f%%) were %s, which it fetches whatever it reads (every layer's, ballast included); file data was %s against the %s minimum (%.2f×)",
		fmtBytes(run.Fetched), fmtBytes(run.TOCBytes), pct(run.TOCBytes, run.Fetched), tocName(run.Encoding), fmtBytes(data), fmtBytes(run.MinFetch), float64(data)/float64(max(run.MinFetch, 1)))
	if d := run.RegistryBytes - run.Fetched; d != 0 {
		s += fmt.Sprintf("; the registry sent %s more than nanofs counted (retries or responses cut short)", fmtBytes(d))
	}
	return s
}

// whyWarm uses the in-process stage breakdown of the same warm build.
func (r *Results) whyWarm(run Run) string {
	var parts []string
	if r.StartSeconds > 0 {
		parts = append(parts, fmt.Sprintf("starting the CLI costs %s", fmtSec(r.StartSeconds)))
	}
	for _, s := range r.Stages {
		if s.Image == run.Image && s.Encoding == run.Encoding && s.Cache == Warm && s.Error == "" {
			parts = append(parts, fmt.Sprintf("in-process, opening the image took %s, %s of it waiting on %d registry requests (%s RTT), resolving took %s, waiting for the tag check after it %s and writing the disk %s",
				fmtSec(s.Open), fmtSec(s.OpenWait), s.OpenRequests, fmtSec(r.Link.RTT), fmtSec(s.Resolve), fmtSec(s.TagWait), fmtSec(s.Write)))
		}
	}
	if run.Requests > 0 {
		parts = append(parts, fmt.Sprintf("the registry answered %d requests", run.Requests))
	}
	for _, pr := range r.Profiles {
		if pr.Image == run.Image && pr.Encoding == run.Encoding && len(pr.Inclusive) > 0 {
			var top []string
			for _, l := range pr.Inclusive[:min(4, len(pr.Inclusive))] {
				top = append(top, fmt.Sprintf("%s %.0f%%", l.Symbol, l.Percent))
			}
			parts = append(parts, "its CPU profile (below) is led by "+strings.Join(top, ", "))
			parts = append(parts, pr.hotspots()...)
		}
	}
	parts = append(parts, "the local copy pays none of the registry round trips, the image open or the resolve")
	return strings.Join(parts, "; ")
}

// WriteMarkdown renders the report.
func (r *Results) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("# nanofs benchmark results\n\n")
	p("Generated by `make bench` (bench/TestMacroBench) on %s; the raw numbers are in `results.json`, the chart in `results.png`.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"))
	p("- Host: %d CPUs, %s RAM, Linux %s, %s; %s.\n", r.Host.CPUs, fmtBytes(r.Host.MemBytes), r.Host.Kernel, r.Host.Go, r.Nanofs)
	if r.Link.Shaped {
		p("- Network: Debian's docker-registry in a network namespace behind a veth pair shaped with `tc tbf` to %s in both directions, plus a delay proxy adding %s of round-trip time (and one round trip per new connection); a counting proxy measures what the registry sends.\n",
			r.Link.Rate, fmtSec(r.Link.RTT))
	} else {
		p("- Network: **not shaped** (NANOFS_BENCH_SHAPE=0): the registry in its namespace is reached over a plain veth, no rate limit, no added delay. The physical-limit ratio is not computed.\n")
	}
	p("- Every contender runs as its own process; peak RSS and CPU time (user + system) are that process's (for `nanofs mount`, the mount server's). Cold: an empty cache (cold eStargz and zstd:chunked builds: the median of %d runs, each from an empty cache); warm: the same cache again (warm builds and the local copy: the median of %d runs). Dirty pages are written back (sync) before every measurement, the page cache is kept.\n", ColdRepeats, WarmRepeats)
	p("- Wall time of this run (workloads, contenders, profiles, micro-benchmarks): %s, of which workload setup %s.\n\n", fmtSec(r.Finished.Sub(r.Started).Seconds()), fmtSec(r.SetupSeconds))
	r.writeHeadline(p)

	p("## Workloads\n\n")
	p("| image | layers | uncompressed | files | blobs (gzip / eStargz / zstd:chunked) | program | plan files | plan bytes | plan compressed (gzip / eStargz / zstd:chunked) |\n")
	p("|---|---:|---:|---:|---:|---|---:|---:|---:|\n")
	for _, w := range r.Workloads {
		gz, _ := r.Find(w.Name, Gzip, Build, Cold)
		program := ""
		if bl, ok := r.Find(w.Name, Gzip, Baseline, Cold); ok {
			program = bl.programNote()
		}
		var blobs, planCompressed []string
		for _, enc := range Encodings {
			blobs = append(blobs, orNA(w.BlobBytes[enc] > 0, fmtBytes(w.BlobBytes[enc])))
			run, _ := r.Find(w.Name, enc, Build, Cold)
			planCompressed = append(planCompressed, orNA(run.MinFetch > 0, fmtBytes(run.MinFetch)))
		}
		p("| %s | %d | %s | %d | %s | %s | %s | %s | %s |\n", w.Name, w.Layers, fmtBytes(w.UncompressedBytes), w.Files,
			strings.Join(blobs, " / "), program,
			orNA(gz.PlanFiles > 0, fmt.Sprint(gz.PlanFiles)), orNA(gz.PlanBytes > 0, fmtBytes(gz.PlanBytes)),
			strings.Join(planCompressed, " / "))
	}
	p("\n")
	for _, w := range r.Workloads {
		p("- **%s**: %s\n", w.Name, w.Description)
	}
	p("- *plan compressed*: `lazy.Image.MinTransfer` of the plan's files: the fewest blob bytes reading them costs from an empty cache (eStargz: the gzip members holding their chunks; zstd:chunked: the zstd frames holding them; gzip: every layer holding one of them, whole).\n\n")

	p("## Results\n\n")
	p("| image | encoding | contender | cache | wall | from registry | requests | peak RSS | CPU | CPU s/MB | detail |\n")
	p("|---|---|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, run := range r.Runs {
		if !run.OK() {
			why := run.Skipped
			if run.Error != "" {
				why = "**failed**: " + run.Error
			}
			p("| %s | %s | %s | %s | – | – | – | – | – | – | %s |\n", run.Image, run.Encoding, run.Contender, run.Cache, mdEscape(why))
			continue
		}
		perMB := "–"
		if v, ok := run.CPUSecondsPerMB(); ok {
			perMB = fmt.Sprintf("%.3f", v)
		}
		p("| %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |\n", run.Image, run.Encoding, run.Contender, run.Cache,
			fmtSec(run.Wall), fmtBytes(run.RegistryBytes), run.Requests, fmtBytes(run.MaxRSS), fmtSec(run.CPU), perMB, mdEscape(run.detail()))
	}
	for _, w := range r.Workloads {
		if c := r.LocalCopy[w.Name]; c > 0 {
			p("| %s | – | local copy of the plan | – | %s | – | – | – | – | – | the plan's files read from the flattened tree and written into one file, fsynced; median of %d |\n", w.Name, fmtSec(c), WarmRepeats)
		}
	}
	p("\nThe baseline pulls the gzip image (the image that exists today) for every comparison; an eStargz or zstd:chunked image of the same content is about as large (see the workloads' blobs), so its full pull would cost about the same.\n\n")
	p("*CPU s/MB*: the run's CPU time (user + system) over the megabytes (10^6 bytes) the registry sent it, for cold runs: what fetching and unpacking cost the machine per byte fetched.")
	if at, ok := r.linkSecondsPerMB(); ok {
		p(" At %s the link delivers a MB every %.3f s: a run whose work on the bytes is serial is bound by its CPU, not by the link, once it needs more than that per MB; one spread over all %d cores, past %.3f s per MB.", r.Link.Rate, at, r.Host.CPUs, at*float64(max(r.Host.CPUs, 1)))
	}
	p("\n\n")

	p("## Ratios\n\n")
	p("| image | encoding | cache | baseline ÷ nanofs build | registry bytes ÷ plan compressed | nanofs ÷ physical limit | nanofs ÷ local copy |\n")
	p("|---|---|---|---:|---:|---:|---:|\n")
	for _, w := range r.Workloads {
		for _, enc := range Encodings {
			for _, cache := range []string{Cold, Warm} {
				run, ok := r.Find(w.Name, enc, Build, cache)
				if !ok {
					continue
				}
				speed, ok1 := r.Speedup(w.Name, enc, cache)
				bytesR, limitR, copyR := "–", "–", "–"
				if cache == Cold {
					if v, ok := r.BytesRatio(w.Name, enc); ok {
						bytesR = fmt.Sprintf("%.2f×", v)
					}
					if lim, ok := r.PhysicalLimit(run); ok {
						limitR = fmt.Sprintf("%.2f× (limit %s)", run.Wall/lim, fmtSec(lim))
					}
				} else if v, ok := r.WarmVsCopy(w.Name, enc); ok {
					copyR = fmt.Sprintf("%.2f×", v)
				}
				p("| %s | %s | %s | %s | %s | %s | %s |\n", w.Name, enc, cache, orNA(ok1, fmt.Sprintf("%.1f×", speed)), bytesR, limitR, copyR)
			}
		}
	}
	p("\nPhysical limit: the plan's compressed bytes at the link rate plus the least round trips (gzip %d: connect, manifest, config, layers; eStargz %d and zstd:chunked %d: the same, the tables of contents asked for with the config). For gzip it counts only the layers that hold the plan's files, which a reader cannot know without reading every layer, so gzip stays far above it by nature.\n\n",
		RoundTrips(Gzip), RoundTrips(EStargz), RoundTrips(ZstdChunked))

	p("## Goals\n\n")
	p("Issue #%d's goals (*#%d*); the zstd:chunked warm builds held against the same bar, reported beside the four warm rows the issue names but not required by it (*#%d, reported only*); and the goals of the issue that made this benchmark, still held (*earlier*).\n\n", GoalIssue, GoalIssue, GoalIssue)
	p("| goal | set by | measured | verdict |\n|---|---|---|---|\n")
	goals := r.Goals()
	for _, g := range goals {
		verdict := "not measured"
		switch {
		case g.Known && g.Met:
			verdict = "**met**"
		case g.Known:
			verdict = "**missed**"
		}
		p("| %s | %s | %s | %s |\n", mdEscape(g.Text), g.Kind, mdEscape(orNA(g.Known, g.Measured)), verdict)
	}
	var missed []Goal
	for _, g := range goals {
		if g.Known && !g.Met {
			missed = append(missed, g)
		}
	}
	if len(missed) > 0 {
		p("\nWhy the missed goals were missed, from the measurements:\n\n")
		for _, g := range missed {
			p("- %s (%s) — %s. %s.\n", g.Text, g.Kind, g.Measured, capitalize(g.Why))
		}
	}
	p("\n")

	if len(r.Stages) > 0 {
		p("## Where a build's time goes\n\n")
		p("The same library calls as `nanofs build` (lazy.Open with the tag checked in the background, resolve.Resolve, lazy.Image.CheckTag, disk.WriteDisk), made in the benchmark's process over the same cache right after the CLI's warm run, timed stage by stage. A bare `nanofs --version` takes %s.\n\n", fmtSec(r.StartSeconds))
		p("| image | encoding | cache | open | of which waiting on the registry | resolve | tag check wait | write disk | requests | blob bytes |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Stages {
			if s.Error != "" {
				p("| %s | %s | %s | **failed**: %s | | | | | | |\n", s.Image, s.Encoding, s.Cache, mdEscape(s.Error))
				continue
			}
			p("| %s | %s | %s | %s | %s (%d requests) | %s | %s | %s | %d | %s |\n", s.Image, s.Encoding, s.Cache, fmtSec(s.Open), fmtSec(s.OpenWait), s.OpenRequests,
				fmtSec(s.Resolve), fmtSec(s.TagWait), fmtSec(s.Write), s.Requests, fmtBytes(s.Bytes))
		}
		p("\n*Waiting on the registry*: the time during which at least one HTTP request was in flight while the image opened (the background tag check's included while it overlaps). *Tag check wait*: how long the build then waited for the registry's answer about the tag, the part open and resolve did not hide. *Requests*, *blob bytes*: the whole build's, from the lazy image's own counters.\n")
		p("\n")
	}
	if len(r.Profiles) > 0 {
		p("## CPU profiles of warm builds\n\n")
		p("One more warm `nanofs build` of the image, under `perf record -g` (not timed): the share of samples in nanofs's functions with their callees (inclusive), and the functions that took the most themselves (kernel functions marked [k]).\n\n")
		for _, pr := range r.Profiles {
			p("**%s, %s**", pr.Image, pr.Encoding)
			if pr.Error != "" {
				p(": not profiled (%s)\n\n", mdEscape(pr.Error))
				continue
			}
			p("\n\n| inclusive | function | | self | function |\n|---:|---|---|---:|---|\n")
			for i := range max(len(pr.Inclusive), len(pr.Self)) {
				var a, b ProfileLine
				if i < len(pr.Inclusive) {
					a = pr.Inclusive[i]
				}
				if i < len(pr.Self) {
					b = pr.Self[i]
				}
				p("| %s | %s | | %s | %s |\n", pctOrBlank(a.Percent), mdCode(a.Symbol), pctOrBlank(b.Percent), mdCode(b.Symbol))
			}
			p("\n")
		}
	}
	if r.Micro != "" || r.MicroError != "" {
		p("## Micro-benchmarks\n\n")
		p("`go test -run '^$' -bench . -benchmem` over the packages, run after the macro benchmark in the same `make bench` (%s). Among them: tfs `BenchmarkWriteTree` (the TFS writer against a plain copy of the same tree: `ratio`), resolve `BenchmarkResolve` (the closure of real programs, bytes read against a full read).\n\n", fmtSec(r.MicroSeconds))
		if r.MicroError != "" {
			p("**The micro-benchmarks failed**: %s\n\n", mdEscape(r.MicroError))
		}
		p("```\n%s\n```\n\n", r.Micro)
	}
	if len(r.Notes) > 0 {
		p("## Notes\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
		p("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeHeadline sums the run up in a few lines, from the numbers below.
func (r *Results) writeHeadline(p func(string, ...any)) {
	p("## Summary\n\n")
	var lines []string
	for _, w := range r.Workloads {
		base, ok := r.Find(w.Name, Gzip, Baseline, Cold)
		if !ok {
			continue
		}
		var parts []string
		for _, enc := range []string{EStargz, ZstdChunked, Gzip} {
			if n, ok := r.Find(w.Name, enc, Build, Cold); ok {
				parts = append(parts, fmt.Sprintf("%s build %s (%.1f× faster, %s from the registry)", enc, fmtSec(n.Wall), base.Wall/n.Wall, fmtBytes(n.RegistryBytes)))
			}
		}
		if len(parts) > 0 {
			lines = append(lines, fmt.Sprintf("**%s, cold**: baseline %s (%s from the registry); nanofs %s.", w.Name, fmtSec(base.Wall), fmtBytes(base.RegistryBytes), strings.Join(parts, ", ")))
		}
		parts = nil
		if bw, ok := r.Find(w.Name, Gzip, Baseline, Warm); ok {
			for _, enc := range []string{EStargz, ZstdChunked, Gzip} {
				if n, ok := r.Find(w.Name, enc, Build, Warm); ok {
					parts = append(parts, fmt.Sprintf("%s build %s", enc, fmtSec(n.Wall)))
				}
			}
			if len(parts) > 0 {
				lines = append(lines, fmt.Sprintf("**%s, warm**: baseline %s; nanofs %s; copying the plan's bytes locally %s.", w.Name, fmtSec(bw.Wall), strings.Join(parts, ", "), fmtSec(r.LocalCopy[w.Name])))
			}
		}
	}
	var met, known, all [3]int
	for _, g := range r.Goals() {
		all[g.Kind]++
		if g.Known {
			known[g.Kind]++
			if g.Met {
				met[g.Kind]++
			}
		}
	}
	goalLine := fmt.Sprintf("**Goals**: issue #%d: %d of %d checks met", GoalIssue, met[GoalRequired], all[GoalRequired])
	if n := all[GoalRequired] - known[GoalRequired]; n > 0 {
		goalLine += fmt.Sprintf(" (%d not measured)", n)
	}
	goalLine += fmt.Sprintf("; zstd:chunked warm builds (reported, not required) %d of %d; earlier goals %d of %d (see Goals: each check is per image and encoding).",
		met[GoalReported], known[GoalReported], met[GoalEarlier], known[GoalEarlier])
	lines = append(lines, goalLine)
	for _, l := range lines {
		p("- %s\n", l)
	}
	p("\n")
}

// knownHotspots name functions of nanofs that, when a profile puts much of
// a build in them, explain where the time goes. The explanation is read
// from the profile; the symbol names tie it to the code as it is.
var knownHotspots = []struct{ symbol, why string }{
	{"cas.(*Store).ReadVerified", "likely cause: reading cached eStargz chunks, where every read loads a whole chunk file into freshly allocated memory and hashes it again (the sha256 and the page faults, pvm_irq_enable, of the self column); the hot-chunk memory (64 MiB) is smaller than the plan, so a chunk can be read and verified more than once (ELF headers while resolving, then the copy)"},
	{"lazy.(*streamLayer).readIndex", "likely cause: every open loads the cached index of every gzip layer (JSON, one entry per file: ballast included) before anything is read"},
}

// hotspots explains the profile's heavy functions that knownHotspots
// knows, those at 20% or more.
func (pr Profile) hotspots() []string {
	var out []string
	for _, k := range knownHotspots {
		for _, l := range pr.Inclusive {
			if l.Percent >= 20 && strings.Contains(l.Symbol, k.symbol) {
				out = append(out, fmt.Sprintf("%s (%.0f%% of the profile)", k.why, l.Percent))
				break
			}
		}
	}
	return out
}

// detail is the per-contender column of the results table.
func (run Run) detail() string {
	switch run.Contender {
	case Baseline:
		var parts []string
		for _, ph := range []string{"pull", "extract", "resolve", "write"} {
			if v, ok := run.Phases[ph]; ok {
				parts = append(parts, ph+" "+fmtSec(v))
			}
		}
		return strings.Join(parts, ", ")
	case Build:
		if run.Fetched == 0 {
			return fmt.Sprintf("nothing fetched; a %s plan in %d files", fmtBytes(run.PlanBytes), run.PlanFiles) + run.repeatNote()
		}
		s := fmt.Sprintf("fetched %s", fmtBytes(run.Fetched))
		if run.TOCBytes > 0 {
			s += fmt.Sprintf(" (of which TOCs %s)", fmtBytes(run.TOCBytes))
		}
		return s + fmt.Sprintf(" for a %s plan in %d files", fmtBytes(run.PlanBytes), run.PlanFiles) + run.repeatNote()
	case Mount:
		return fmt.Sprintf("mounted %s, program's first byte %s, program read %s, whole plan read %s",
			fmtSec(run.Ready), fmtSec(run.FirstByte), fmtSec(run.Wall), fmtSec(run.ClosureRead))
	}
	return ""
}

// repeatNote says that a run is the median of several.
func (run Run) repeatNote() string {
	if run.Repeats < 2 {
		return ""
	}
	return fmt.Sprintf("; median of %d runs (%s to %s)", run.Repeats, fmtSec(run.WallMin), fmtSec(run.WallMax))
}

// programNote is the program line of the workloads table, from the
// baseline's resolve.
func (run Run) programNote() string {
	if run.Program == "" {
		return ""
	}
	return "`" + run.Program + "`"
}

func pctOrBlank(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f%%", v)
}

func mdCode(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "`", "'") + "`"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func orNA(ok bool, s string) string {
	if !ok {
		return "n/a"
	}
	return s
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// fmtSec renders seconds with a precision that suits their size.
func fmtSec(s float64) string {
	switch {
	case s <= 0 || math.IsNaN(s):
		return "0 s"
	case s < 0.01:
		return fmt.Sprintf("%.1f ms", s*1000)
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	case s < 100:
		return fmt.Sprintf("%.2f s", s)
	case s < 600:
		return fmt.Sprintf("%.1f s", s)
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// fmtBytes renders n in binary units.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n), []string{"KiB", "MiB", "GiB", "TiB"}
	i := -1
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	if v < 10 {
		return fmt.Sprintf("%.2f %s", v, units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// SortRuns orders runs for the report: by image (workload order), then
// contender, encoding, cache.
func (r *Results) SortRuns() {
	order := func(list []string, s string) int {
		if i := slices.Index(list, s); i >= 0 {
			return i
		}
		return len(list)
	}
	var images []string
	for _, w := range r.Workloads {
		images = append(images, w.Name)
	}
	slices.SortStableFunc(r.Runs, func(a, b Run) int {
		for _, c := range [][2]int{
			{order(images, a.Image), order(images, b.Image)},
			{order([]string{Baseline, Build, Mount}, a.Contender), order([]string{Baseline, Build, Mount}, b.Contender)},
			{order(Encodings, a.Encoding), order(Encodings, b.Encoding)},
			{order([]string{Cold, Warm}, a.Cache), order([]string{Cold, Warm}, b.Cache)},
		} {
			if c[0] != c[1] {
				return c[0] - c[1]
			}
		}
		return 0
	})
}
