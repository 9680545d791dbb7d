package main

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/nanofs/nanofs/lazy"
)

// progress draws live bars on stderr, as docker pull does: one per layer
// with bytes and rate, and one per phase. It draws only on a terminal and
// never with --quiet; otherwise every method does nothing, so callers never
// check.
type progress struct {
	p    *mpb.Progress
	mu   sync.Mutex
	bars []*progressBar
	stop func()
}

// progressBar is one line of a progress; nil-safe.
type progressBar struct{ b *mpb.Bar }

// newProgress returns the verb's progress, drawing only when
// g.showProgress().
func (g *globals) newProgress(ctx context.Context) *progress {
	if !g.showProgress() {
		return &progress{}
	}
	return newProgressTo(ctx, g.stderr, 0)
}

// newProgressTo draws on w, lines width columns wide (0: the terminal's).
func newProgressTo(ctx context.Context, w io.Writer, width int) *progress {
	opts := []mpb.ContainerOption{mpb.WithOutput(w), mpb.WithRefreshRate(150 * time.Millisecond), mpb.WithAutoRefresh()}
	if width > 0 {
		opts = append(opts, mpb.WithWidth(width))
	}
	return &progress{p: mpb.NewWithContext(ctx, opts...)}
}

// bytes adds a bar counting bytes against total (<= 0: not known yet).
func (pr *progress) bytes(name string, total int64) *progressBar {
	return pr.add(total,
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR),
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace)))
}

// count adds a bar counting things (files) against total.
func (pr *progress) count(name string, total int64) *progressBar {
	return pr.add(total,
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR),
			decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)))
}

func (pr *progress) add(total int64, opts ...mpb.BarOption) *progressBar {
	if pr.p == nil {
		return &progressBar{}
	}
	if total < 0 {
		total = 0
	}
	b := &progressBar{b: pr.p.New(total, mpb.BarStyle().Rbound("|"), opts...)}
	pr.mu.Lock()
	pr.bars = append(pr.bars, b)
	pr.mu.Unlock()
	return b
}

// set moves the bar to n; a total learnt late is given with setTotal.
func (b *progressBar) set(n int64) {
	if b.b != nil {
		b.b.SetCurrent(n)
	}
}

func (b *progressBar) setTotal(total int64) {
	if b.b != nil && total > 0 {
		b.b.SetTotal(total, false)
	}
}

// watchImage keeps one bar per layer of img up to date with the bytes
// fetched of it, until done.
func (pr *progress) watchImage(img *lazy.Image) {
	if pr.p == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	pr.stop = func() { cancel(); <-finished }
	layers := map[string]*progressBar{}
	update := func() {
		for _, l := range img.Stats().Layers {
			b := layers[l.Digest]
			if b == nil {
				b = pr.bytes("layer "+shortDigest(l.Digest), l.Size)
				layers[l.Digest] = b
			}
			b.set(l.Bytes)
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(150 * time.Millisecond)
		defer t.Stop()
		for {
			update()
			select {
			case <-ctx.Done():
				update()
				return
			case <-t.C:
			}
		}
	}()
}

// done completes every bar at what it reached and waits until the last
// frame is drawn.
func (pr *progress) done() {
	if pr.p == nil {
		return
	}
	if pr.stop != nil {
		pr.stop()
	}
	pr.mu.Lock()
	for _, b := range pr.bars {
		b.b.SetTotal(-1, true)
	}
	pr.mu.Unlock()
	pr.p.Wait()
}

// shortDigest is the algorithm and the first 12 hex digits, as docker
// pull shows layers.
func shortDigest(d string) string {
	if i := len("sha256:") + 12; len(d) > i {
		return d[len("sha256:"):i]
	}
	return d
}
