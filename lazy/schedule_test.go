package lazy_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

// heldTransport holds requests that match until released, and counts
// those it has seen.
type heldTransport struct {
	hold    func(*http.Request) bool
	mu      sync.Mutex
	held    int
	seen    []string
	release chan struct{}
	changed chan struct{} // a request was held or seen
}

func newHeldTransport(hold func(*http.Request) bool) *heldTransport {
	return &heldTransport{hold: hold, release: make(chan struct{}), changed: make(chan struct{}, 1000)}
}

func (h *heldTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	held := h.hold(r)
	h.mu.Lock()
	h.seen = append(h.seen, r.URL.Path+" "+r.Header.Get("Range"))
	if held {
		h.held++
	}
	h.mu.Unlock()
	h.changed <- struct{}{}
	if held {
		select {
		case <-h.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// waitHeld waits until n requests are held.
func (h *heldTransport) waitHeld(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		h.mu.Lock()
		held := h.held
		h.mu.Unlock()
		if held >= n {
			return
		}
		select {
		case <-h.changed:
		case <-deadline:
			t.Fatalf("%d requests held, want %d", held, n)
		}
	}
}

// TestTOCsAskedWithConfig: the tables of contents of eStargz and
// zstd:chunked layers are asked for while the config is still on its way,
// not one round trip after it. The config's request is held until every
// layer's TOC request has been sent: an open that waited for the config
// first would never send them.
func TestTOCsAskedWithConfig(t *testing.T) {
	entries := func(i int) []testimage.Entry {
		return []testimage.Entry{testimage.File(fmt.Sprintf("f%d", i), 0o644, randomText(uint64(i), 100<<10))}
	}
	gz := testimage.NewImage(t, v1.Config{Cmd: []string{"/f0"}},
		testimage.LayerFromEntries(t, testimage.Gzip, entries(0)...), testimage.LayerFromEntries(t, testimage.Gzip, entries(1)...))
	images := map[string]v1.Image{
		"estargz": testimage.NewImage(t, v1.Config{Cmd: []string{"/f0"}},
			testimage.LayerFromEntries(t, testimage.EStargz, entries(0)...), testimage.LayerFromEntries(t, testimage.EStargz, entries(1)...)),
		"zstd-chunked": testimage.ZstdChunkedImage(t, gz, testimage.ZstdChunkedOptions{}),
	}
	reg := testimage.StartInProcessRegistry(t)
	for name, img := range images {
		t.Run(name, func(t *testing.T) {
			reg.Push(t, name, img)
			cfg, err := img.ConfigName()
			require.NoError(t, err)
			var tr *heldTransport
			tr = newHeldTransport(func(r *http.Request) bool {
				return strings.HasSuffix(r.URL.Path, "/blobs/"+cfg.String())
			})
			done := make(chan struct{})
			timedOut := false
			go func() {
				defer close(done)
				// Released once both layers' TOC requests are out.
				for {
					tr.mu.Lock()
					ranged := 0
					for _, s := range tr.seen {
						if strings.Contains(s, "bytes=") {
							ranged++
						}
					}
					tr.mu.Unlock()
					if ranged >= 2 {
						close(tr.release)
						return
					}
					select {
					case <-tr.changed:
					case <-time.After(10 * time.Second):
						timedOut = true
						close(tr.release)
						return
					}
				}
			}()
			opened, err := lazy.Open(t.Context(), reg.Ref(name), lazy.WithCacheDir(t.TempDir()), lazy.WithTransport(tr))
			<-done
			require.NoError(t, err)
			defer opened.Close()
			tr.mu.Lock()
			seen := strings.Join(tr.seen, "\n")
			tr.mu.Unlock()
			require.False(t, timedOut, "the TOCs were not asked for while the config was held:\n%s", seen)
			got := treeOf(t, opened)
			require.Contains(t, got, "f0")
			require.Contains(t, got, "f1")
		})
	}
}

// TestReadNotQueuedBehindPrefetch: a file queued for fetching in the
// background, behind other background fetches that hold every background
// connection, is read at once by a reader that needs it: the reader
// fetches it itself instead of waiting for the queue to reach it (a
// queued fetch claims a file's bytes only once its request goes out).
func TestReadNotQueuedBehindPrefetch(t *testing.T) {
	var entries []testimage.Entry
	for i := range 6 {
		// Incompressible spacers keep the files' members far enough apart
		// to be fetched by requests of their own.
		entries = append(entries,
			testimage.File(fmt.Sprintf("f%d", i), 0o644, randomText(uint64(10+i), 20<<10)),
			testimage.File(fmt.Sprintf("spacer%d", i), 0o644, randomText(uint64(100+i), 256<<10)))
	}
	img := testimage.NewImage(t, v1.Config{Cmd: []string{"/f0"}}, testimage.LayerFromEntries(t, testimage.EStargz, entries...))
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "queued", img)

	var armed sync.Mutex
	holding := false
	tr := newHeldTransport(func(r *http.Request) bool {
		armed.Lock()
		defer armed.Unlock()
		return holding && r.Header.Get("Range") != ""
	})
	opened, err := lazy.Open(t.Context(), reg.Ref("queued"), lazy.WithCacheDir(t.TempDir()), lazy.WithTransport(tr))
	require.NoError(t, err)
	defer func() {
		close(tr.release)
		opened.Close()
	}()

	// Every background connection is held by a fetch of the files queued
	// first; the rest of the queue (f5 last) waits for one.
	armed.Lock()
	holding = true
	armed.Unlock()
	opened.PrefetchLater("f0", "f1", "f2", "f3", "f4", "f5")
	tr.waitHeld(t, 4)
	armed.Lock()
	holding = false
	armed.Unlock()

	read := make(chan error, 1)
	go func() {
		f, err := opened.Open("f5")
		if err != nil {
			read <- err
			return
		}
		defer f.Close()
		buf := make([]byte, 20<<10)
		_, err = f.Read(buf)
		read <- err
	}()
	select {
	case err := <-read:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the read waited behind the queued background fetch")
	}
}
