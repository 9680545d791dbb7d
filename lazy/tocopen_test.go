package lazy_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

// concurrencyGauge is a handler in front of a Counter that holds every
// blob request a while and records how many were in flight at once.
type concurrencyGauge struct {
	next http.Handler
	hold atomic.Int64 // nanoseconds

	mu        sync.Mutex
	now, most int
}

func (g *concurrencyGauge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.URL.Path, "/blobs/") {
		g.next.ServeHTTP(w, r)
		return
	}
	g.mu.Lock()
	g.now++
	g.most = max(g.most, g.now)
	g.mu.Unlock()
	time.Sleep(time.Duration(g.hold.Load()))
	g.next.ServeHTTP(w, r)
	g.mu.Lock()
	g.now--
	g.mu.Unlock()
}

// manyFiles is a layer whose TOC, compressed, is larger than the tail an
// open reads first: every file has a chunk digest of its own.
func manyFiles(n int) []testimage.Entry {
	entries := []testimage.Entry{testimage.Dir("many", 0o755)}
	for i := range n {
		body := fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "file %d", i)))
		entries = append(entries, testimage.File(fmt.Sprintf("many/file-%05d", i), 0o644, body))
	}
	return entries
}

// TestStargzOpenRequests: a layer whose footer and TOC fit in the tail
// costs one request at open, one whose TOC is larger two; every layer's
// TOC is asked for at once even with WithJobs(1); the tree is the
// oracle's, and a second open finds everything in the cache.
func TestStargzOpenRequests(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	small := testimage.LayerFromEntries(t, testimage.EStargz,
		testimage.Dir("etc", 0o755), testimage.File("etc/hostname", 0o644, "nanos\n"))
	large := testimage.LayerFromEntries(t, testimage.EStargz, manyFiles(3000)...)
	other := testimage.LayerFromEntries(t, testimage.EStargz,
		testimage.Dir("bin", 0o755), testimage.File("bin/tool", 0o755, "#!/bin/sh\necho tool\n"))
	img := testimage.NewImage(t, v1.Config{}, small, large, other)
	reg.Push(t, "tocs", img)
	want := testimage.ExtractTree(t, img).WithoutEStargzMeta()
	m, err := img.Manifest()
	require.NoError(t, err)

	c := testimage.NewCounter(reg.Host)
	gauge := &concurrencyGauge{next: c}
	gauge.hold.Store(int64(100 * time.Millisecond))
	srv := httptest.NewServer(gauge)
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/tocs"
	cache := t.TempDir()

	li, err := lazy.Open(t.Context(), ref, lazy.WithCacheDir(cache), lazy.WithJobs(1))
	require.NoError(t, err)
	defer li.Close()
	open := c.Stats()
	gauge.mu.Lock()
	most := gauge.most
	gauge.mu.Unlock()
	gauge.hold.Store(0) // the walk below reads every file
	assert.GreaterOrEqual(t, most, len(m.Layers), "every layer's TOC asked for at once")

	tocBytes := map[string]int64{}
	for _, l := range li.Stats().Layers {
		require.True(t, l.Lazy, "layer %s", l.Digest)
		tocBytes[l.Digest] = l.TOCBytes
	}
	const tail = 64 << 10
	for i, l := range m.Layers {
		d := l.Digest.String()
		b := open.Blobs[d]
		if i == 1 {
			require.Greater(t, tocBytes[d], int64(tail), "the large layer's TOC does not fit in the tail")
			assert.Equal(t, 2, b.Requests, "large TOC: the tail, then the rest")
		} else {
			assert.Equal(t, 1, b.Requests, "layer %d: footer and TOC in one request", i)
		}
		assert.Equal(t, tocBytes[d], b.Bytes, "layer %d: the bytes the TOC's stats count", i)
	}
	requireTreesEqual(t, want, treeOf(t, li), "tree of layers opened from their tails")

	c.Reset()
	again, err := lazy.Open(t.Context(), ref, lazy.WithCacheDir(cache))
	require.NoError(t, err)
	defer again.Close()
	assert.Zero(t, c.Stats().BlobRequests, "second open: TOCs from the cache")
}
