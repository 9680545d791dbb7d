package lazy

import (
	"context"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nanofs/nanofs/lazy/internal/cas"
)

// earlyRead is the part of a layer's blob that holds its table of
// contents (an eStargz blob's end: footer and, mostly, TOC; the range a
// zstd:chunked layer's annotations name), asked for as soon as the
// manifest names the blob, while the config is fetched: the open then
// waits one round trip less.
type earlyRead struct {
	blob *blob
	off  int64
	done chan struct{}
	data []byte
	err  error
}

// readTOCsEarly starts reading the table of contents of every eStargz and
// zstd:chunked layer of m whose index is not in the cache, each with a
// blob (and counter) of its own that the layer then keeps.
func readTOCsEarly(ctx context.Context, m *v1.Manifest, src blobSource, store *cas.Store, o *options) map[v1.Hash]*earlyRead {
	early := map[v1.Hash]*earlyRead{}
	for _, d := range m.Layers {
		if d.Digest.Algorithm != "sha256" || d.Size <= 0 {
			continue
		}
		b := &blob{digest: d.Digest, size: d.Size, src: src, stats: &counter{}, policy: o.policy}
		l := &layer{key: d.Digest, size: d.Size, mediaType: d.MediaType, annotations: d.Annotations, blob: b}
		off, n, ok := tocRange(l)
		if !ok {
			continue
		}
		if p, err := store.Path(tocKind, d.Digest.String(), binIndexSuffix); err != nil {
			continue
		} else if _, err := os.Stat(p); err == nil {
			continue // a warm open reads the index, not the TOC
		}
		e := &earlyRead{blob: b, off: off, done: make(chan struct{})}
		early[d.Digest] = e
		go func() {
			defer close(e.done)
			data := make([]byte, n)
			if e.err = b.readAt(ctx, data, off); e.err == nil {
				e.data = data
			}
		}()
	}
	return early
}

// tocRange is where the first request for a lazily read layer's table of
// contents goes.
func tocRange(l *layer) (off, n int64, ok bool) {
	switch {
	case isZstdChunked(l):
		pos, _ := zstdChunkedAnnotations(l)
		off, length, _, err := parseManifestPosition(pos)
		if err != nil || off < skippableHeader || off+length > l.size {
			return 0, 0, false
		}
		return off, length, true
	case isStargz(l) && l.size > stargzFooterSize():
		off := tailStart(l.size)
		return off, l.size - off, true
	}
	return 0, 0, false
}

// tailStart is where the first request for an eStargz blob's end starts.
// It is never byte 0 (the TOC never is): a request for a whole blob is
// answered 200 by every registry, which would hide one that ignores Range
// (and whose blobs are then kept whole).
func tailStart(size int64) int64 { return max(1, size-tocTail) }

// take returns the bytes read early at off (n of them), or nil when there
// are none (or the read failed: the caller asks again, with its own
// retries reported).
func (e *earlyRead) take(ctx context.Context, off, n int64) []byte {
	if e == nil || e.off != off {
		return nil
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil
	}
	if int64(len(e.data)) != n {
		return nil
	}
	return e.data
}
