package lazy

import (
	"context"
	"sync"
)

// backgroundKey marks the context of a background fetch: it leaves some
// connections to the reads that wait for their bytes now.
type backgroundKey struct{}

// background runs the fetches PrefetchLater queues: at most maxBatches at
// once, each taking every name queued so far, so that files queued one by
// one (as a resolve finds them) still share requests with their
// neighbours.
type background struct {
	mu      sync.Mutex
	pending []string
	running int
	closed  bool
	wg      sync.WaitGroup
}

// maxBatches is how many queued batches are fetched at once: one being
// fetched while the next gathers names is enough to keep the connections
// busy, and a name queued late does not wait for a long batch to end.
const maxBatches = 2

// PrefetchLater queues the named files (as Open names them; symbolic links
// followed) to be fetched into the cache in the background, and returns at
// once. A resolve calls it for each file it puts in a plan, so that the
// files' bytes arrive while it goes on and the disk writer finds them
// cached. Names that do not exist are ignored, and a failed fetch is
// retried (and reported) by the read that needs the bytes. Close stops
// what is still queued.
func (img *Image) PrefetchLater(names ...string) {
	b := img.bg
	if b == nil || len(names) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.pending = append(b.pending, names...)
	if b.running < maxBatches {
		b.running++
		b.wg.Add(1)
		go img.drain()
	}
}

// drain fetches what is queued until nothing is.
func (img *Image) drain() {
	b := img.bg
	defer b.wg.Done()
	for {
		b.mu.Lock()
		batch := b.pending
		b.pending = nil
		if len(batch) == 0 || b.closed {
			b.running--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		// Errors are the reader's to report: it fetches again what failed.
		_ = img.Prefetch(context.WithValue(img.ctx, backgroundKey{}, true), batch)
	}
}

// stop drops what is queued and waits for the running fetches, which the
// image's cancelled context ends.
func (b *background) stop() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.closed = true
	b.pending = nil
	b.mu.Unlock()
	b.wg.Wait()
}
