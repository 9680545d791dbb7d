package main

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/nanofs/nanofs/vm/build"
)

// progress draws live bars on stderr, as docker pull does: while an image
// opens, the bytes fetched; while a disk is written, one bar per layer with
// its bytes and rate, and a bar of the files written. It draws only on a
// terminal and never with --quiet; otherwise every method does nothing.
type progress struct {
	ctx    context.Context
	out    io.Writer // nil: draw nothing
	width  int       // 0: the terminal's
	mu     sync.Mutex
	p      *mpb.Progress // started with the first bar
	bars   []*progressBar
	opened *progressBar
	layers map[string]*progressBar
	files  *progressBar
}

// progressBar is one line of a progress; nil-safe.
type progressBar struct{ b *mpb.Bar }

// newProgress returns the verb's progress, drawing only when
// g.showProgress().
func newProgress(g *globals) *progress {
	if !g.showProgress() {
		return &progress{}
	}
	return newProgressTo(context.Background(), g.stderr, 0)
}

// newProgressTo draws on w, lines width columns wide (0: the terminal's).
func newProgressTo(ctx context.Context, w io.Writer, width int) *progress {
	return &progress{ctx: ctx, out: w, width: width, layers: map[string]*progressBar{}}
}

// show follows a build's progress; build calls it from several goroutines.
func (pr *progress) show(e build.Progress) {
	if pr.out == nil {
		return
	}
	if e.Phase == build.PhaseDone {
		pr.done()
		return
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	switch e.Phase {
	case build.PhaseOpen:
		if pr.opened == nil {
			pr.opened = pr.addLocked(0, bytesDecorators("opening "+e.Image)...)
		}
		pr.opened.set(e.Fetched)
	case build.PhaseWrite:
		for _, l := range e.Layers {
			b := pr.layers[l.Digest]
			if b == nil {
				b = pr.addLocked(l.Size, bytesDecorators("layer "+shortDigest(l.Digest))...)
				pr.layers[l.Digest] = b
			}
			b.set(l.Bytes)
		}
		if pr.files == nil && e.Files > 0 {
			pr.files = pr.addLocked(int64(e.Files), countDecorators("files written")...)
		}
		pr.files.set(int64(e.Written))
	}
}

// bytes adds a bar counting bytes against total (<= 0: not known yet).
func (pr *progress) bytes(name string, total int64) *progressBar {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.addLocked(total, bytesDecorators(name)...)
}

func bytesDecorators(name string) []mpb.BarOption {
	return []mpb.BarOption{
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR),
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace)),
	}
}

func countDecorators(name string) []mpb.BarOption {
	return []mpb.BarOption{
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR),
			decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)),
	}
}

func (pr *progress) addLocked(total int64, opts ...mpb.BarOption) *progressBar {
	if pr.out == nil {
		return &progressBar{}
	}
	if pr.p == nil {
		copts := []mpb.ContainerOption{mpb.WithOutput(pr.out), mpb.WithRefreshRate(150 * time.Millisecond), mpb.WithAutoRefresh()}
		if pr.width > 0 {
			copts = append(copts, mpb.WithWidth(pr.width))
		}
		pr.p = mpb.NewWithContext(pr.ctx, copts...)
	}
	if total < 0 {
		total = 0
	}
	b := &progressBar{b: pr.p.New(total, mpb.BarStyle().Rbound("|"), opts...)}
	pr.bars = append(pr.bars, b)
	return b
}

// set moves the bar to n.
func (b *progressBar) set(n int64) {
	if b != nil && b.b != nil {
		b.b.SetCurrent(n)
	}
}

// setTotal gives a total learnt late.
func (b *progressBar) setTotal(total int64) {
	if b != nil && b.b != nil && total > 0 {
		b.b.SetTotal(total, false)
	}
}

// done completes every bar at what it reached and waits until the last
// frame is drawn. The progress can be used again afterwards.
func (pr *progress) done() {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.p == nil {
		return
	}
	for _, b := range pr.bars {
		b.b.SetTotal(-1, true)
	}
	pr.p.Wait()
	pr.p, pr.bars, pr.opened, pr.files = nil, nil, nil, nil
	pr.layers = map[string]*progressBar{}
}

// shortDigest is the first 12 hex digits, as docker pull names layers.
func shortDigest(d string) string {
	if i := len("sha256:") + 12; len(d) > i {
		return d[len("sha256:"):i]
	}
	return d
}
