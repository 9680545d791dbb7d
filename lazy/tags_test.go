package lazy_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

// gatedRegistry is a proxy to a registry whose manifest requests wait
// while it is closed: what a build does before the registry answers.
type gatedRegistry struct {
	srv       *httptest.Server
	host      string
	open      atomic.Bool
	manifests atomic.Int64 // manifest requests answered
	pings     atomic.Int64 // requests for /v2/
}

func startGatedRegistry(t *testing.T, target string) *gatedRegistry {
	t.Helper()
	g := &gatedRegistry{}
	g.open.Store(true)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			g.pings.Add(1)
		}
		if strings.Contains(r.URL.Path, "/manifests/") {
			for !g.open.Load() {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
			defer g.manifests.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.srv = srv
	g.host = strings.TrimPrefix(srv.URL, "http://")
	return g
}

// TestTagCheckLater: WithTagCheckLater opens a tag from the manifest it
// named before without waiting for the registry, and CheckTag says whether
// the tag still names it; after a push moved the tag, the next open starts
// from the new manifest.
func TestTagCheckLater(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	first := testimage.EdgeSpec().Image(t, testimage.EStargz)
	second := testimage.EdgeSpec().Image(t, testimage.Gzip)
	firstDigest, err := first.Digest()
	require.NoError(t, err)
	secondDigest, err := second.Digest()
	require.NoError(t, err)
	reg.Push(t, "tagged:v1", first)
	g := startGatedRegistry(t, reg.Host)
	ref := g.host + "/tagged:v1"
	cache := t.TempDir()
	open := func(opts ...lazy.Option) *lazy.Image {
		t.Helper()
		img, err := lazy.Open(t.Context(), ref, append([]lazy.Option{lazy.WithCacheDir(cache)}, opts...)...)
		require.NoError(t, err)
		t.Cleanup(func() { img.Close() })
		return img
	}

	// Nothing recorded yet: the tag is asked first, as without the option.
	img := open(lazy.WithTagCheckLater())
	assert.Equal(t, firstDigest, img.Digest())
	require.NoError(t, img.CheckTag(t.Context()))
	_, err = testimage.TreeFromFS(img)
	require.NoError(t, err)

	// Recorded: Open needs no answer from the registry.
	g.open.Store(false)
	asked, pinged := g.manifests.Load(), g.pings.Load()
	img = open(lazy.WithTagCheckLater())
	assert.Equal(t, firstDigest, img.Digest())
	assert.Equal(t, asked, g.manifests.Load(), "Open did not wait for the registry")
	got, err := testimage.TreeFromFS(img)
	require.NoError(t, err)
	assert.NotEmpty(t, got)
	g.open.Store(true)
	require.NoError(t, img.CheckTag(t.Context()), "the tag still names the manifest")
	assert.Equal(t, asked+1, g.manifests.Load(), "the registry was asked once")
	assert.Equal(t, pinged+1, g.pings.Load(), "after one ping")

	// The tag moves: the image opened from the old manifest says so.
	reg.Push(t, "tagged:v1", second)
	img = open(lazy.WithTagCheckLater())
	assert.Equal(t, firstDigest, img.Digest())
	err = img.CheckTag(t.Context())
	require.ErrorIs(t, err, lazy.ErrTagMoved)
	var moved *lazy.TagMovedError
	require.ErrorAs(t, err, &moved)
	assert.Equal(t, firstDigest, moved.Was)
	assert.Equal(t, secondDigest, moved.Now)

	// Opened again, it starts from the manifest the tag names now.
	img = open(lazy.WithTagCheckLater())
	assert.Equal(t, secondDigest, img.Digest())
	require.NoError(t, img.CheckTag(t.Context()))

	// Without the option a tag is always asked first.
	reg.Push(t, "tagged:v1", first)
	img = open()
	assert.Equal(t, firstDigest, img.Digest())
	require.NoError(t, img.CheckTag(t.Context()), "nothing to check")
}

// TestTagCheckLaterUnreachable: with the registry gone, an image opened
// from a recorded tag opens from the cache, and CheckTag reports the
// network failure that Open reports without the option.
func TestTagCheckLaterUnreachable(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "tagged:v1", testimage.EdgeSpec().Image(t, testimage.EStargz))
	g := startGatedRegistry(t, reg.Host)
	ref := g.host + "/tagged:v1"
	cache := t.TempDir()
	img, err := lazy.Open(t.Context(), ref, lazy.WithCacheDir(cache))
	require.NoError(t, err)
	_, err = testimage.TreeFromFS(img)
	require.NoError(t, err)
	img.Close()

	g.srv.Close()
	opts := []lazy.Option{lazy.WithCacheDir(cache), lazy.WithRetries(1, time.Millisecond)}
	_, err = lazy.Open(t.Context(), ref, opts...)
	require.ErrorIs(t, err, lazy.ErrNetwork)
	img, err = lazy.Open(t.Context(), ref, append(opts, lazy.WithTagCheckLater())...)
	require.NoError(t, err)
	defer img.Close()
	assert.ErrorIs(t, img.CheckTag(t.Context()), lazy.ErrNetwork)
}
