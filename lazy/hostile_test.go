package lazy_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

// TestPingRetried: the registry's /v2/ ping is retried like every other
// request; a registry that keeps failing it is a network failure, not an
// interruption.
func TestPingRetried(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	spec := testimage.EdgeSpec()
	reg.Push(t, "edge", spec.Image(t, testimage.Gzip))
	tests := []struct {
		name    string
		times   int
		wantErr bool
	}{
		{"one 500", 1, false},
		{"three 500s", 3, false},
		{"500 always", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testimage.StartCounter(t, reg.Host)
			c.Inject(testimage.Fault{Kind: testimage.Status500, Path: "/v2/", Times: tt.times})
			_, err := openAndWalk(t, c.Ref("edge"), t.TempDir())
			pings := 0
			for _, r := range c.Stats().Log {
				if r.Path == "/v2/" {
					pings++
				}
			}
			if tt.wantErr {
				require.Error(t, err)
				assert.ErrorIs(t, err, lazy.ErrNetwork)
				assert.NotErrorIs(t, err, context.Canceled)
				// Every attempt pings twice over HTTP: in the race with
				// HTTPS, and as go-containerregistry's fallback once the
				// HTTPS attempt is answered by the 500.
				assert.Equal(t, 2*4, pings, "every attempt pings")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.times+1, pings)
		})
	}
}

// TestRangeIgnoredFetchedOnce: a registry that answers range requests with
// the whole blob (200) is detected on the blob's first range request; the
// blob is kept whole in the cache, verified, and every later read of it is
// served from there: one request and one copy of the blob in all.
func TestRangeIgnoredFetchedOnce(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	spec := testimage.EdgeSpec()
	img := spec.Image(t, testimage.EStargz)
	reg.Push(t, "edge", img)
	want := testimage.ExtractTree(t, img).WithoutEStargzMeta()
	m, err := img.Manifest()
	require.NoError(t, err)

	c := testimage.StartCounter(t, reg.Host)
	c.Inject(testimage.Fault{Kind: testimage.IgnoreRange})
	cache := t.TempDir()
	got, err := openAndWalk(t, c.Ref("edge"), cache)
	require.NoError(t, err)
	requireTreesEqual(t, want, got, "tree through a registry ignoring Range")
	st := c.Stats()
	for _, l := range m.Layers {
		b := st.Blobs[l.Digest.String()]
		assert.Equal(t, 1, b.Requests, "layer %s: one request", l.Digest)
		assert.LessOrEqual(t, b.Bytes, l.Size, "layer %s: at most one copy", l.Digest)
	}

	// A second process finds the verified copies in the cache.
	c.Reset()
	got, err = openAndWalk(t, c.Ref("edge"), cache)
	require.NoError(t, err)
	requireTreesEqual(t, want, got, "tree from the cache")
	assert.Zero(t, c.Stats().BlobBytes, "nothing fetched again")
}

// TestBlobDeadline: a blob read must finish within a time derived from its
// size and the minimum rate, however the bytes trickle in. A server that
// stalls after a few bytes (every retry resets the failure count) or sends
// a byte every 10 ms is given up on with an error saying how many bytes
// arrived and from where.
func TestBlobDeadline(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	spec := testimage.EdgeSpec()
	img := spec.Image(t, testimage.Gzip)
	reg.Push(t, "edge", img)
	m, err := img.Manifest()
	require.NoError(t, err)
	big := m.Layers[2]
	tests := []struct {
		name  string
		fault testimage.Fault
	}{
		{"stall after a few bytes", testimage.Fault{Kind: testimage.Trickle, Digest: big.Digest.String(), Offset: 10, Delay: time.Hour}},
		{"one byte per 10ms", testimage.Fault{Kind: testimage.Trickle, Digest: big.Digest.String(), Offset: 10, Delay: 10 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testimage.StartCounter(t, reg.Host)
			c.Inject(tt.fault)
			start := time.Now()
			_, err := openAndWalk(t, c.Ref("edge"), t.TempDir(),
				lazy.WithStallTimeout(200*time.Millisecond), lazy.WithMinRate(1<<20, time.Second))
			require.Error(t, err)
			t.Logf("error after %v: %v", time.Since(start), err)
			assert.Less(t, time.Since(start), 10*time.Second)
			var slow *lazy.SlowError
			require.ErrorAs(t, err, &slow)
			assert.Equal(t, big.Digest.String(), slow.Digest)
			assert.Equal(t, "registry "+c.Host, slow.From)
			assert.Positive(t, slow.Got)
			assert.Less(t, slow.Got, big.Size)
			assert.ErrorIs(t, err, lazy.ErrNetwork)
			assert.NotErrorIs(t, err, context.Canceled)
			assert.Contains(t, err.Error(), "bytes arrived")
		})
	}
}

// TestStallIsNetworkFailure: a response that never sends a byte is
// retried, then given up on as a network failure, which the CLI must not
// mistake for the user's Ctrl-C (context.Canceled).
func TestStallIsNetworkFailure(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	spec := testimage.EdgeSpec()
	img := spec.Image(t, testimage.Gzip)
	reg.Push(t, "edge", img)
	m, err := img.Manifest()
	require.NoError(t, err)
	c := testimage.StartCounter(t, reg.Host)
	c.Inject(testimage.Fault{Kind: testimage.Trickle, Digest: m.Layers[2].Digest.String(), Delay: time.Hour})
	_, err = openAndWalk(t, c.Ref("edge"), t.TempDir(), lazy.WithStallTimeout(100*time.Millisecond), lazy.WithMinRate(0, 0))
	require.Error(t, err)
	t.Logf("error: %v", err)
	assert.ErrorIs(t, err, lazy.ErrNetwork)
	assert.False(t, errors.Is(err, context.Canceled), "a stall is not an interruption")
	assert.Contains(t, err.Error(), "no data for 100ms")
}

// TestConfigWithoutArchitecture: a config that leaves the platform out is
// named as such, not printed as blanks.
func TestConfigWithoutArchitecture(t *testing.T) {
	spec := &testimage.Spec{
		Name: "noarch", Platform: v1.Platform{OS: "linux"},
		Layers: []testimage.LayerInput{{Entries: []testimage.Entry{testimage.File("x", 0o644, "x")}}},
	}
	layout := testimage.WriteOCILayout(t, spec.Image(t, testimage.Gzip))
	_, err := lazy.Open(t.Context(), layout, lazy.WithCacheDir(t.TempDir()), lazy.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	require.ErrorIs(t, err, lazy.ErrPlatform)
	assert.Contains(t, err.Error(), `the image is for "linux" (its config names no architecture)`)
}

// TestAbsoluteMemberNames: a layer whose member names start with "/" is
// read as Docker extracts it.
func TestAbsoluteMemberNames(t *testing.T) {
	spec := &testimage.Spec{
		Name: "abs",
		Layers: []testimage.LayerInput{{Entries: []testimage.Entry{
			testimage.Dir("/etc", 0o755), testimage.File("/etc/x", 0o644, "abs\n"),
		}}},
	}
	for _, enc := range []testimage.Encoding{testimage.Gzip, testimage.EStargz} {
		layout := testimage.WriteOCILayout(t, spec.Image(t, enc))
		img, err := lazy.Open(t.Context(), layout, lazy.WithCacheDir(t.TempDir()))
		require.NoError(t, err, enc.String())
		data, err := fs.ReadFile(img, "etc/x")
		require.NoError(t, err)
		assert.Equal(t, "abs\n", string(data))
		img.Close()
	}
}

// TestDecompressionBomb: a layer that expands past the bound fails with an
// error naming the layer, before its tar fills the cache; the bound can be
// raised.
func TestDecompressionBomb(t *testing.T) {
	spec := &testimage.Spec{
		Name: "bomb",
		Layers: []testimage.LayerInput{{Entries: []testimage.Entry{
			testimage.File("zeros", 0o644, strings.Repeat("\x00", 4<<20)),
		}}},
	}
	reg := testimage.StartInProcessRegistry(t)
	for _, enc := range []testimage.Encoding{testimage.Gzip, testimage.Zstd} {
		img := spec.Image(t, enc)
		reg.Push(t, "bomb-"+enc.String(), img)
		m, err := img.Manifest()
		require.NoError(t, err)
		layer := m.Layers[0]
		cache := t.TempDir()
		_, err = lazy.Open(t.Context(), reg.Ref("bomb-"+enc.String()), lazy.WithCacheDir(cache), lazy.WithMaxExpansion(0, 1<<20))
		require.Error(t, err, enc.String())
		var xe *lazy.ExpansionError
		require.ErrorAs(t, err, &xe)
		assert.Equal(t, layer.Digest.String(), xe.Layer)
		assert.ErrorIs(t, err, lazy.ErrLayerTooLarge)
		assert.Contains(t, err.Error(), "expand to more than 1048576")
		requireCacheVerified(t, cache, nil) // nothing unverified, no tar, no temp file

		img2, err := lazy.Open(t.Context(), reg.Ref("bomb-"+enc.String()), lazy.WithCacheDir(cache), lazy.WithMaxExpansion(0, 8<<20))
		require.NoError(t, err, "a raised bound lets it through")
		img2.Close()
	}
}

// TestRangeIgnoredSlowLink: when a registry answers a small range request
// with the whole blob, the download has the deadline of the whole blob's
// size, not of the few bytes asked for.
func TestRangeIgnoredSlowLink(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	img := testimage.EdgeSpec().Image(t, testimage.EStargz)
	reg.Push(t, "edge", img)
	want := testimage.ExtractTree(t, img).WithoutEStargzMeta()
	c := testimage.StartCounter(t, reg.Host)
	c.Inject(testimage.Fault{Kind: testimage.IgnoreRange, BytesPerSec: 1 << 20})
	// A footer read may take 100ms; a whole ~800 KB layer, over 3s.
	got, err := openAndWalk(t, c.Ref("edge"), t.TempDir(), lazy.WithMinRate(256<<10, 100*time.Millisecond))
	require.NoError(t, err)
	requireTreesEqual(t, want, got, "tree over a slow link ignoring Range")
}
