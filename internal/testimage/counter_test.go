package testimage

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCounterCountsRanges(t *testing.T) {
	reg := StartInProcessRegistry(t)
	path, d, blob := pushedBlob(t, reg)
	c := StartCounter(t, reg.Host)
	url := "http://" + c.Host + path

	_, body, err := rangeGet(t, url, "bytes=10-109")
	require.NoError(t, err)
	assert.Equal(t, blob[10:110], body)
	_, _, err = rangeGet(t, url, "")
	require.NoError(t, err)
	resp, err := http.Head(url)
	require.NoError(t, err)
	resp.Body.Close()
	_, _, err = rangeGet(t, "http://"+c.Host+"/v2/", "")
	require.NoError(t, err)

	st := c.Stats()
	assert.Equal(t, 4, st.Requests)
	assert.Equal(t, 3, st.BlobRequests)
	assert.Equal(t, int64(100+len(blob)), st.BlobBytes)
	assert.Equal(t, BlobCount{Requests: 3, Bytes: int64(100 + len(blob))}, st.Blobs[d.String()])
	require.Len(t, st.Log, 4)
	assert.Equal(t, Request{Method: "GET", Path: path, Range: "bytes=10-109", Digest: d.String(), Status: 206, Bytes: 100}, st.Log[0])

	c.Reset()
	assert.Equal(t, Stats{Blobs: map[string]BlobCount{}}, c.Stats())
}

func TestCounterFaults(t *testing.T) {
	reg := StartInProcessRegistry(t)
	path, d, blob := pushedBlob(t, reg)
	other := "sha256:" + fmt.Sprintf("%064d", 0)
	tests := []struct {
		name  string
		fault Fault
		rng   string
		check func(t *testing.T, resp *http.Response, body []byte, err error)
	}{
		{"drop after 1000 bytes", Fault{Kind: DropAfter, Offset: 1000}, "",
			func(t *testing.T, resp *http.Response, body []byte, err error) {
				assert.Error(t, err, "the client sees the body cut short")
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, blob[:len(body)], body)
				assert.LessOrEqual(t, len(body), 1000)
			}},
		{"500", Fault{Kind: Status500}, "",
			func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			}},
		{"ignore range", Fault{Kind: IgnoreRange}, "bytes=10-19",
			func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, blob, body)
			}},
		{"corrupt byte, whole blob", Fault{Kind: CorruptByte, Offset: 5000}, "",
			func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				require.Len(t, body, len(blob))
				assert.Equal(t, blob[5000]^0xff, body[5000])
				body[5000] ^= 0xff
				assert.Equal(t, blob, body, "only one byte differs")
			}},
		{"corrupt byte, range covering it", Fault{Kind: CorruptByte, Offset: 5000}, "bytes=4990-5009",
			func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
				want := append([]byte(nil), blob[4990:5010]...)
				want[10] ^= 0xff
				assert.Equal(t, want, body)
			}},
		{"corrupt byte, range missing it", Fault{Kind: CorruptByte, Offset: 5000}, "bytes=0-99",
			func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				assert.Equal(t, blob[:100], body)
			}},
		{"fault for another blob", Fault{Kind: Status500, Digest: other}, "",
			func(t *testing.T, resp *http.Response, body []byte, err error) {
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := StartCounter(t, reg.Host)
			f := tc.fault
			f.Times = 1
			c.Inject(f)
			resp, body, err := rangeGet(t, "http://"+c.Host+path, tc.rng)
			tc.check(t, resp, body, err)
			if f.Digest == "" {
				assert.Equal(t, f.Kind.String(), c.Stats().Log[0].Fault)
				assert.Equal(t, int64(len(body)), c.Stats().Blobs[d.String()].Bytes, "counted what the client got")
			}
			// Times: 1 — the next request is served normally.
			resp, body, err = rangeGet(t, "http://"+c.Host+path, "")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, blob, body)
		})
	}
}

// TestCounterCorruptionCaughtByPull: a corrupted byte makes the pull fail
// (and TreeFromTar reports it, though mutate.Extract ends its tar first).
func TestCounterCorruptionCaughtByPull(t *testing.T) {
	reg := StartInProcessRegistry(t)
	spec := EdgeSpec()
	img := spec.Image(t, Gzip)
	reg.Push(t, "edge", img)
	layers, err := img.Layers()
	require.NoError(t, err)
	d, err := layers[0].Digest()
	require.NoError(t, err)
	c := StartCounter(t, reg.Host)
	c.Inject(Fault{Kind: CorruptByte, Digest: d.String(), Offset: 12345})
	ref, err := name.ParseReference(c.Ref("edge"), name.Insecure)
	require.NoError(t, err)
	pulled, err := remote.Image(ref)
	require.NoError(t, err)
	_, err = TreeFromTar(mutate.Extract(pulled))
	require.Error(t, err, "gzip's checksum or the layer digest catches the flipped byte")
	assert.Contains(t, err.Error(), "verifying layer")
}
