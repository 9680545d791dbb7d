package lazy

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMirrored(t *testing.T) {
	for _, tc := range []struct{ ref, mirror, want, err string }{
		{"node:16.3.0", "127.0.0.1:5000", "127.0.0.1:5000/library/node:16.3.0", ""},
		{"docker.io/bitnami/redis", "mirror.example:443", "mirror.example:443/bitnami/redis:latest", ""},
		{"node@sha256:" + sha("x"), "127.0.0.1:5000", "127.0.0.1:5000/library/node@sha256:" + sha("x"), ""},
		{"quay.io/app/x:1", "127.0.0.1:5000", "quay.io/app/x:1", ""},
		{"node:16", "", "index.docker.io/library/node:16", ""},
		{"node:16", "bad host/", "", "registry mirror"},
	} {
		ref, err := name.ParseReference(tc.ref)
		require.NoError(t, err)
		got, err := mirrored(ref, tc.mirror, nil)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.ref)
			continue
		}
		require.NoError(t, err, tc.ref)
		assert.Equal(t, tc.want, got.Name(), tc.ref)
	}
}

func sha(s string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 64)
	for i := range b {
		b[i] = hex[(int(s[0])+i)%16]
	}
	return string(b)
}

func TestCheckRegistryMirror(t *testing.T) {
	for host, ok := range map[string]bool{
		"127.0.0.1:5000": true, "mirror.example.com": true, "[::1]:5000": true,
		"bad host": false, "m.example/x": false, "m.example@sha256": false, "": false,
	} {
		err := CheckRegistryMirror(host)
		if ok {
			assert.NoError(t, err, host)
		} else {
			assert.ErrorContains(t, err, "want a registry host", host)
		}
	}
}

// An unreachable mirror is named as the mirror, with the image it served.
func TestMirrorUnreachable(t *testing.T) {
	_, err := Open(t.Context(), "node:16.3.0", WithRegistryMirror("127.0.0.1:1"), WithCacheDir(t.TempDir()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "registry mirror 127.0.0.1:1 (for node:16.3.0)")
	assert.ErrorIs(t, err, ErrNetwork)
}
