package progress

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/nanofs/nanofs/vm/build"
)

// Bars draws live bars, as docker pull does: while an image opens, the
// bytes fetched; while a disk is written, one bar per layer with its bytes
// and rate, and a bar of the files written. A nil *Bars, or one without a
// writer, draws nothing and every method costs nothing.
type Bars struct {
	ctx    context.Context
	out    io.Writer // nil: draw nothing
	width  int       // 0: the terminal's
	mu     sync.Mutex
	p      *mpb.Progress // started with the first bar
	bars   []*Bar
	opened *Bar
	layers map[string]*Bar
	files  *Bar
}

// Bar is one line of the bars; nil-safe.
type Bar struct{ b *mpb.Bar }

// OnTerminal draws on w only if it is an interactive terminal, so that
// pipelines and CI logs never receive lines rewritten in place; otherwise
// it returns no bars (nil).
func OnTerminal(w io.Writer) *Bars {
	if f, ok := w.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return New(context.Background(), w, 0)
}

// New draws on w (nil: nowhere), lines width columns wide (0: the
// terminal's), until ctx is done.
func New(ctx context.Context, w io.Writer, width int) *Bars {
	return &Bars{ctx: ctx, out: w, width: width, layers: map[string]*Bar{}}
}

// Show follows a build's progress (build.WithProgress); build calls it
// from several goroutines.
func (pr *Bars) Show(e build.Progress) {
	if pr == nil || pr.out == nil {
		return
	}
	if e.Phase == build.PhaseDone {
		pr.Done()
		return
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	switch e.Phase {
	case build.PhaseOpen:
		if pr.opened == nil {
			pr.opened = pr.addLocked(0, bytesDecorators("opening "+e.Image)...)
		}
		pr.opened.Set(e.Fetched)
	case build.PhaseWrite:
		for _, l := range e.Layers {
			b := pr.layers[l.Digest]
			if b == nil {
				b = pr.addLocked(l.Size, bytesDecorators("layer "+shortDigest(l.Digest))...)
				pr.layers[l.Digest] = b
			}
			b.Set(l.Bytes)
		}
		if pr.files == nil && e.Files > 0 {
			pr.files = pr.addLocked(int64(e.Files), countDecorators("files written")...)
		}
		pr.files.Set(int64(e.Written))
	}
}

// Bytes adds a bar counting bytes against total (<= 0: not known yet).
func (pr *Bars) Bytes(name string, total int64) *Bar {
	if pr == nil {
		return nil
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.addLocked(total, bytesDecorators(name)...)
}

func bytesDecorators(name string) []mpb.BarOption {
	return []mpb.BarOption{
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR), decor.Any(byteCounts, decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace)),
	}
}

// byteCounts shows "done / total", or only what is done while the total is
// not known.
func byteCounts(st decor.Statistics) string {
	if st.Total <= 0 {
		return fmt.Sprintf("% .1f", decor.SizeB1024(st.Current))
	}
	return fmt.Sprintf("% .1f / % .1f", decor.SizeB1024(st.Current), decor.SizeB1024(st.Total))
}

func countDecorators(name string) []mpb.BarOption {
	return []mpb.BarOption{
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR),
			decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)),
	}
}

func (pr *Bars) addLocked(total int64, opts ...mpb.BarOption) *Bar {
	if pr.out == nil {
		return &Bar{}
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
	b := &Bar{b: pr.p.New(total, mpb.BarStyle().Rbound("|"), opts...)}
	pr.bars = append(pr.bars, b)
	return b
}

// Set moves the bar to n.
func (b *Bar) Set(n int64) {
	if b != nil && b.b != nil {
		b.b.SetCurrent(n)
	}
}

// SetTotal gives a total learnt late.
func (b *Bar) SetTotal(total int64) {
	if b != nil && b.b != nil && total > 0 {
		b.b.SetTotal(total, false)
	}
}

// Done completes every bar at what it reached and waits until the last
// frame is drawn. The bars can be used again afterwards.
func (pr *Bars) Done() {
	if pr == nil {
		return
	}
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
	pr.layers = map[string]*Bar{}
}

// shortDigest is the first 12 hex digits, as docker pull names layers.
func shortDigest(d string) string {
	if i := len("sha256:") + 12; len(d) > i {
		return d[len("sha256:"):i]
	}
	return d
}
