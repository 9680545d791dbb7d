package bench

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm/disk"
)

// envProbe names encodings (comma-separated) whose cold build alone the
// run measures, with a timeline of every request, instead of the whole
// benchmark: for finding where a cold build waits, in a minute.
const envProbe = "NANOFS_BENCH_PROBE"

// envProbeBase names other nanofs binaries (comma-separated: earlier
// builds) whose cold and warm builds the probe runs alternately with
// NANOFS_BIN's, for a side-by-side on the same link; envProbeRounds says how many of each
// (default 3); envProbeTrace=1 adds the in-process timeline.
const (
	envProbeBase   = "NANOFS_BENCH_PROBE_BASE"
	envProbeRounds = "NANOFS_BENCH_PROBE_ROUNDS"
	envProbeTrace  = "NANOFS_BENCH_PROBE_TRACE"
)

// probe runs, for each workload and each encoding of NANOFS_BENCH_PROBE,
// cold and warm CLI builds (alternating with the base binary's, if any),
// and reports their medians; with NANOFS_BENCH_PROBE_TRACE=1 then the
// in-process stages with every request on a timeline.
func (h *harness) probe(ws []Workload, encs []string) {
	bins := map[string]string{"new": h.nanofs}
	order := []string{"new"}
	if b := os.Getenv(envProbeBase); b != "" {
		order = nil
		for i, p := range strings.Split(b, ",") {
			name := fmt.Sprintf("base%d", i)
			bins[name] = p
			order = append(order, name)
		}
		order = append(order, "new")
	}
	rounds := 3
	if v, err := strconv.Atoi(os.Getenv(envProbeRounds)); err == nil && v > 0 {
		rounds = v
	}
	defer func() { h.nanofs = bins["new"] }()
	for _, which := range order {
		h.logf("probe: %s is %s", which, bins[which])
	}
	for _, w := range ws {
		for _, enc := range encs {
			dir := filepath.Join(h.work, "probe")
			cold, warm := map[string][]float64{}, map[string][]float64{}
			var lim float64
			for range rounds {
				for _, which := range order {
					h.nanofs = bins[which]
					os.RemoveAll(dir)
					cache := filepath.Join(dir, "cache-"+which)
					run := h.buildOnce(w, enc, Cold, cache, filepath.Join(dir, "cli.img"))
					if !run.OK() {
						h.t.Errorf("probe %s %s %s: %s", w.Name, enc, which, run.Error)
						return
					}
					lim, _ = h.res.PhysicalLimit(run)
					cold[which] = append(cold[which], run.Wall)
					for range 3 {
						r := h.buildOnce(w, enc, Warm, cache, filepath.Join(dir, "cli.img"))
						warm[which] = append(warm[which], r.Wall)
					}
				}
			}
			for _, which := range order {
				c, wm := median(cold[which]), median(warm[which])
				h.logf("probe %s %s %s: cold %s (%.3fx the limit %s; %v), warm %s (%v)", w.Name, enc, which,
					fmtSec(c), c/lim, fmtSec(lim), fmtSecs(cold[which]), fmtSec(wm), fmtSecs(warm[which]))
			}
			if os.Getenv(envProbeTrace) == "1" {
				cache := filepath.Join(dir, "cache-stages")
				h.probeStages(w, enc, Cold, cache)
				h.probeStages(w, enc, Warm, cache)
			}
			os.RemoveAll(dir)
		}
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtSecs(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.3f", x))
	}
	return strings.Join(parts, " ")
}

func (h *harness) probeStages(w Workload, enc, state, cache string) {
	quiesce()
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	var marks []string
	t0 := time.Now()
	tr := &tracingTransport{t0: t0}
	mark := func(what string) { marks = append(marks, fmt.Sprintf("%7.3f %s", time.Since(t0).Seconds(), what)) }
	err := func() error {
		img, err := lazy.Open(ctx, h.clientRef(w, enc), lazy.WithCacheDir(cache), lazy.WithTransport(tr), lazy.WithTagCheckLater())
		if err != nil {
			return err
		}
		defer img.Close()
		mark("opened")
		c := img.Config()
		tfs := &tracedFS{img: img, t0: t0}
		defer func() { h.logf("probe %s %s resolve's reads:\n%s", w.Name, enc, strings.Join(tfs.log, "\n")) }()
		plan, err := resolve.Resolve(tfs, resolve.Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir},
			resolve.WithEntry(w.Entry))
		if err != nil {
			return err
		}
		mark("resolved")
		if err := img.CheckTag(ctx); err != nil {
			return err
		}
		mark("tag checked")
		out := filepath.Join(h.work, "probe.img")
		defer os.Remove(out)
		if _, err := disk.WriteDisk(ctx, out, img, plan, disk.WithoutBootloader(), disk.WithParallel(disk.DefaultParallel),
			disk.WithFileWritten(func(p string, size int64) { mark(fmt.Sprintf("file %s (%s) in", p, fmtBytes(size))) })); err != nil {
			return err
		}
		mark("written")
		return nil
	}()
	if err != nil {
		h.t.Errorf("probe %s %s: %v", w.Name, enc, err)
	}
	h.logf("probe %s %s %s in-process:\n%s\n%s", w.Name, enc, state, strings.Join(marks, "\n"), tr.timeline(t0))
}

// tracingTransport records every request: what it asked for, when its
// headers and its last byte came, and how many bytes its body held.
type tracingTransport struct {
	mu   sync.Mutex
	reqs []*tracedRequest
	t0   time.Time
	recv map[int]int64 // body bytes by the 100 ms since t0 in which they came
}

// recvSlot is the width of tracingTransport's histogram of bytes received.
const recvSlot = 100 * time.Millisecond

type tracedRequest struct {
	method, path, rng string
	start, head, end  time.Time
	bytes             int64
}

func (t *tracingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tr := &tracedRequest{method: r.Method, path: r.URL.Path, rng: r.Header.Get("Range"), start: time.Now()}
	t.mu.Lock()
	t.reqs = append(t.reqs, tr)
	t.mu.Unlock()
	resp, err := remote.DefaultTransport.RoundTrip(r)
	t.mu.Lock()
	tr.head = time.Now()
	t.mu.Unlock()
	if err != nil {
		return nil, err
	}
	resp.Body = &tracedBody{rc: resp.Body, t: t, r: tr}
	return resp, nil
}

type tracedBody struct {
	rc io.ReadCloser
	t  *tracingTransport
	r  *tracedRequest
}

func (b *tracedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.t.mu.Lock()
	b.r.bytes += int64(n)
	if n > 0 {
		if b.t.recv == nil {
			b.t.recv = map[int]int64{}
		}
		b.t.recv[int(time.Since(b.t.t0)/recvSlot)] += int64(n)
	}
	if n > 0 || err != nil {
		b.r.end = time.Now()
	}
	b.t.mu.Unlock()
	return n, err
}

func (b *tracedBody) Close() error { return b.rc.Close() }

func (t *tracingTransport) timeline(t0 time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	reqs := slices.Clone(t.reqs)
	slices.SortFunc(reqs, func(a, b *tracedRequest) int { return a.start.Compare(b.start) })
	var sb strings.Builder
	at := func(x time.Time) string {
		if x.IsZero() {
			return "      -"
		}
		return fmt.Sprintf("%7.3f", x.Sub(t0).Seconds())
	}
	for _, r := range reqs {
		p := r.path
		if i := strings.LastIndex(p, "/"); i >= 0 && len(p)-i > 20 {
			p = p[:i+1] + p[i+1:i+20]
		}
		fmt.Fprintf(&sb, "%s %s %s %-4s %-60s %-24s %s\n", at(r.start), at(r.head), at(r.end), r.method, p, r.rng, fmtBytes(r.bytes))
	}
	// How full the link was, slot by slot: where a build leaves it idle.
	last := -1
	for k := range t.recv {
		last = max(last, k)
	}
	var sum int64
	for k := 0; k <= last; k++ {
		sum += t.recv[k]
		fmt.Fprintf(&sb, "received %5.1f s: %6.1f Mbit/s (%s so far)\n", (time.Duration(k) * recvSlot).Seconds(),
			float64(t.recv[k])*8/recvSlot.Seconds()/1e6, fmtBytes(sum))
	}
	return sb.String()
}

// tracedFS is the image as resolve sees it, with every file opened, read
// and queued for prefetching on a timeline.
type tracedFS struct {
	img *lazy.Image
	t0  time.Time
	mu  sync.Mutex
	log []string
}

func (f *tracedFS) note(format string, a ...any) {
	f.mu.Lock()
	f.log = append(f.log, fmt.Sprintf("%7.3f ", time.Since(f.t0).Seconds())+fmt.Sprintf(format, a...))
	f.mu.Unlock()
}

func (f *tracedFS) Open(name string) (fs.File, error) {
	file, err := f.img.Open(name)
	if err != nil {
		return nil, err
	}
	return &tracedFile{File: file, fs: f, name: name}, nil
}

func (f *tracedFS) Lstat(name string) (fs.FileInfo, error) { return f.img.Lstat(name) }
func (f *tracedFS) ReadLink(name string) (string, error)   { return f.img.ReadLink(name) }
func (f *tracedFS) PrefetchLater(names ...string) {
	f.note("prefetch %v", names)
	f.img.PrefetchLater(names...)
}

type tracedFile struct {
	fs.File
	fs   *tracedFS
	name string
}

func (t *tracedFile) Read(p []byte) (int, error) {
	s := time.Now()
	n, err := t.File.Read(p)
	t.fs.note("read %s %d (%.0f ms)", t.name, n, time.Since(s).Seconds()*1000)
	return n, err
}

func (t *tracedFile) ReadAt(p []byte, off int64) (int, error) {
	s := time.Now()
	n, err := t.File.(io.ReaderAt).ReadAt(p, off)
	t.fs.note("readat %s %d+%d (%.0f ms)", t.name, off, n, time.Since(s).Seconds()*1000)
	return n, err
}

func (t *tracedFile) Seek(off int64, whence int) (int64, error) {
	return t.File.(io.Seeker).Seek(off, whence)
}
