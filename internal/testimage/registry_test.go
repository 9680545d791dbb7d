package testimage

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pushedBlob pushes a one-layer image and returns the layer's blob URL
// path and bytes.
func pushedBlob(t *testing.T, reg *Registry) (string, v1.Hash, []byte) {
	t.Helper()
	l := LayerFromEntries(t, Gzip, File("data.bin", 0o644, string(edgeData(256<<10, 3))))
	reg.Push(t, "blobs", NewImage(t, v1.Config{}, l))
	d, err := l.Digest()
	require.NoError(t, err)
	return "/v2/blobs/blobs/" + d.String(), d, readOpened(t, l.Compressed)
}

func rangeGet(t *testing.T, url, rng string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestRegistriesServeRanges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *Registry
		// Range forms the registry answers with 206; in-process knows only a-b.
		openEnded bool
	}{
		{"in-process", StartInProcessRegistry, false},
		{"docker-registry", StartDockerRegistry, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.name == "docker-registry" {
				t.Skip("testimage: starts docker-registry; skipped under -short")
			}
			reg := tc.start(t)
			path, _, blob := pushedBlob(t, reg)
			url := "http://" + reg.Host + path

			resp, body, err := rangeGet(t, url, "")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, blob, body)

			resp, body, err = rangeGet(t, url, "bytes=100-1099")
			require.NoError(t, err)
			assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
			assert.Equal(t, fmt.Sprintf("bytes 100-1099/%d", len(blob)), resp.Header.Get("Content-Range"))
			assert.Equal(t, blob[100:1100], body)

			if tc.openEnded {
				resp, body, err = rangeGet(t, url, fmt.Sprintf("bytes=%d-", len(blob)-10))
				require.NoError(t, err)
				assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
				assert.Equal(t, blob[len(blob)-10:], body)
			}
		})
	}
}
