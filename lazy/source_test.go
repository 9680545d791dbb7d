package lazy_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLocalSources: an OCI layout directory and a docker-save tarball show
// the same tree as mutate.Extract, by path or with a prefix.
func TestLocalSources(t *testing.T) {
	spec := testimage.EdgeSpec()
	for _, enc := range testimage.Encodings {
		img := spec.Image(t, enc)
		want := testimage.ExtractTree(t, img).WithoutEStargzMeta()
		dir := testimage.WriteOCILayout(t, img)
		tarball := testimage.WriteDockerTarball(t, "example.com/edge:1", img)
		for _, ref := range []string{dir, lazy.PrefixOCILayout + dir, tarball, lazy.PrefixDockerArchive + tarball} {
			t.Run(enc.String()+"/"+filepath.Base(ref), func(t *testing.T) {
				li, err := lazy.Open(t.Context(), ref, lazy.WithCacheDir(t.TempDir()))
				require.NoError(t, err)
				defer li.Close()
				requireTreesEqual(t, want, treeOf(t, li), "lazy vs mutate.Extract")
				assert.Equal(t, spec.Config.Entrypoint, li.Config().Entrypoint)
				isLayout := strings.Contains(ref, "oci")
				for _, l := range li.Stats().Layers {
					// Only blobs read in place can be read lazily.
					assert.Equal(t, isLayout && enc == testimage.EStargz, l.Lazy, l.Digest)
				}
			})
		}
	}
}

func platformSpec(arch, marker string) *testimage.Spec {
	return &testimage.Spec{
		Name:     "multi-" + arch,
		Platform: v1.Platform{OS: "linux", Architecture: arch},
		Config:   v1.Config{Entrypoint: []string{"/" + marker}},
		Layers:   []testimage.LayerInput{{Entries: []testimage.Entry{testimage.File(marker, 0o644, arch+"\n")}}},
	}
}

// TestPlatforms: the image of an index is chosen by platform; a missing
// platform is an error listing the ones there are.
func TestPlatforms(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	idx := testimage.NewIndex(t,
		platformSpec("amd64", "amd64").Image(t, testimage.Gzip),
		platformSpec("arm64", "arm64").Image(t, testimage.Gzip))
	reg.PushIndex(t, "multi", idx)
	dir := testimage.WriteOCILayoutIndex(t, idx)
	for _, ref := range []string{reg.Ref("multi"), dir} {
		for _, arch := range []string{"amd64", "arm64"} {
			li, err := lazy.Open(t.Context(), ref, lazy.WithCacheDir(t.TempDir()),
				lazy.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
			require.NoError(t, err, ref)
			data, err := li.ReadFile(arch)
			require.NoError(t, err)
			assert.Equal(t, arch+"\n", string(data))
			assert.Equal(t, []string{"/" + arch}, li.Config().Entrypoint)
			li.Close()
		}
		_, err := lazy.Open(t.Context(), ref, lazy.WithCacheDir(t.TempDir()),
			lazy.WithPlatform(v1.Platform{OS: "linux", Architecture: "riscv64"}))
		require.ErrorIs(t, err, lazy.ErrPlatform)
		assert.Contains(t, err.Error(), "linux/riscv64")
		assert.Contains(t, err.Error(), "linux/amd64, linux/arm64")
	}

	// A single image for another platform is refused only when a platform
	// was asked for.
	reg.Push(t, "arm-only", platformSpec("arm64", "arm64").Image(t, testimage.Gzip))
	li, err := lazy.Open(t.Context(), reg.Ref("arm-only"), lazy.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	li.Close()
	_, err = lazy.Open(t.Context(), reg.Ref("arm-only"), lazy.WithCacheDir(t.TempDir()),
		lazy.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	require.ErrorIs(t, err, lazy.ErrPlatform)
	assert.Contains(t, err.Error(), "linux/arm64")
}

func TestUnknownImage(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "there:v1", platformSpec("amd64", "x").Image(t, testimage.Gzip))
	for _, ref := range []string{reg.Ref("there:v2"), reg.Ref("nowhere:v1"),
		reg.Ref("there@sha256:" + strings.Repeat("ab", 32))} {
		_, err := lazy.Open(t.Context(), ref, lazy.WithCacheDir(t.TempDir()))
		require.ErrorIs(t, err, lazy.ErrNotFound, ref)
		assert.Contains(t, err.Error(), strings.TrimPrefix(ref, reg.Host+"/"))
	}
	_, err := lazy.Open(t.Context(), "Not A Reference!", lazy.WithCacheDir(t.TempDir()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not a local OCI layout directory or docker-save tarball, nor an image reference")
	_, err = lazy.Open(t.Context(), lazy.PrefixDockerArchive+"/does/not/exist.tar", lazy.WithCacheDir(t.TempDir()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/does/not/exist.tar")

	// Paths that lead nowhere are said to be missing, not looked up as
	// registries.
	for _, ref := range []string{"./missing-layout", "/does/not/exist", "../x.tar"} {
		_, err = lazy.Open(t.Context(), ref, lazy.WithCacheDir(t.TempDir()))
		require.ErrorIs(t, err, fs.ErrNotExist, ref)
		assert.Equal(t, fmt.Sprintf("%q is not a local OCI layout directory or docker-save tarball, nor an image reference: no such file or directory", ref), err.Error())
	}
	_, err = lazy.Open(t.Context(), t.TempDir(), lazy.WithCacheDir(t.TempDir()))
	assert.ErrorContains(t, err, "not an OCI image layout (it has no index.json)")
}

// authRegistry wraps a registry handler with HTTP basic auth and records
// what the blob storage it redirects to was sent.
type authRegistry struct {
	user, pass string
	upstream   http.Handler
	redirectTo string // host of the blob storage; "" serves blobs directly

	mu          sync.Mutex
	storageAuth []string // Authorization headers the blob storage saw
	storageHits int
}

func (a *authRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	if !ok || u != a.user || p != a.pass {
		w.Header().Set("WWW-Authenticate", `Basic realm="nanofs-test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
		return
	}
	if a.redirectTo != "" && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
		target := url.URL{Scheme: "http", Host: a.redirectTo, Path: r.URL.Path}
		http.Redirect(w, r, target.String(), http.StatusTemporaryRedirect)
		return
	}
	a.upstream.ServeHTTP(w, r)
}

func startAuthRegistry(t *testing.T, redirect bool) (*authRegistry, string) {
	t.Helper()
	reg := testimage.StartInProcessRegistry(t)
	target, err := url.Parse("http://" + reg.Host)
	require.NoError(t, err)
	a := &authRegistry{user: "nanofs", pass: "s3cret", upstream: httputil.NewSingleHostReverseProxy(target)}
	if redirect {
		// Blob storage on another host name: it must get the Range
		// header but never the registry's credentials.
		storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.mu.Lock()
			a.storageHits++
			if h := r.Header.Get("Authorization"); h != "" {
				a.storageAuth = append(a.storageAuth, h)
			}
			a.mu.Unlock()
			a.upstream.ServeHTTP(w, r)
		}))
		t.Cleanup(storage.Close)
		a.redirectTo = strings.Replace(strings.TrimPrefix(storage.URL, "http://"), "127.0.0.1", "localhost", 1)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	// Push straight to the registry behind the auth wrapper.
	reg.Push(t, "edge", testimage.EdgeSpec().Image(t, testimage.EStargz))
	reg.Push(t, "edge-gzip", testimage.EdgeSpec().Image(t, testimage.Gzip))
	return a, host
}

type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

// TestAuth: credentials come from the keychain (docker's config by
// default); missing or wrong ones give ErrUnauthorized.
func TestAuth(t *testing.T) {
	a, host := startAuthRegistry(t, false)
	ref := host + "/edge"
	_, err := lazy.Open(t.Context(), ref, lazy.WithCacheDir(t.TempDir()), lazy.WithKeychain(authn.NewMultiKeychain()))
	require.ErrorIs(t, err, lazy.ErrUnauthorized)
	_, err = lazy.Open(t.Context(), ref, lazy.WithCacheDir(t.TempDir()), lazy.WithKeychain(staticKeychain{a.user, "wrong"}))
	require.ErrorIs(t, err, lazy.ErrUnauthorized)
	t.Logf("error: %v", err)

	li, err := lazy.Open(t.Context(), ref, lazy.WithCacheDir(t.TempDir()), lazy.WithKeychain(staticKeychain{a.user, a.pass}))
	require.NoError(t, err)
	_, err = testimage.TreeFromFS(li)
	require.NoError(t, err)
	li.Close()

	// The default keychain reads $DOCKER_CONFIG/config.json.
	dir := t.TempDir()
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(a.user + ":" + a.pass))},
	}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600))
	t.Setenv("DOCKER_CONFIG", dir)
	li, err = lazy.Open(t.Context(), ref, lazy.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	li.Close()
}

// TestRedirectKeepsCredentials: blobs served from another host get the
// Range header but not the Authorization header.
func TestRedirectKeepsCredentials(t *testing.T) {
	a, host := startAuthRegistry(t, true)
	for _, repo := range []string{"edge", "edge-gzip"} {
		li, err := lazy.Open(t.Context(), host+"/"+repo, lazy.WithCacheDir(t.TempDir()), lazy.WithKeychain(staticKeychain{a.user, a.pass}))
		require.NoError(t, err)
		got := treeOf(t, li)
		li.Close()
		want := testimage.ExtractTree(t, testimage.EdgeSpec().Image(t, testimage.EStargz)).WithoutEStargzMeta()
		if repo == "edge-gzip" {
			want = testimage.ExtractTree(t, testimage.EdgeSpec().Image(t, testimage.Gzip))
		}
		requireTreesEqual(t, want, got, repo)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	assert.Positive(t, a.storageHits)
	assert.Empty(t, a.storageAuth, "credentials leaked to the blob storage")
}

// annotated returns an image of one layer whose descriptor carries the
// given TOC digest annotation.
func annotated(t *testing.T, l v1.Layer, tocDigest string) v1.Image {
	t.Helper()
	base := testimage.NewImage(t, v1.Config{})
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, Annotations: map[string]string{estargz.TOCJSONDigestAnnotation: tocDigest}})
	require.NoError(t, err)
	return img
}

// TestTOCAnnotation: a TOC that does not match the layer's annotation is
// refused; an annotation on a layer that is not eStargz at all is
// ignored (the layer is read whole, as plain gzip).
func TestTOCAnnotation(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	entries := []testimage.Entry{testimage.Dir("etc", 0o755), testimage.File("etc/hostname", 0o644, "annotated\n")}
	wrong := "sha256:" + strings.Repeat("0", 64)

	reg.Push(t, "wrong-toc", annotated(t, testimage.LayerFromEntries(t, testimage.EStargz, entries...), wrong))
	_, err := lazy.Open(t.Context(), reg.Ref("wrong-toc"), lazy.WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, lazy.ErrDigestMismatch)
	assert.Contains(t, err.Error(), wrong)

	img := annotated(t, testimage.LayerFromEntries(t, testimage.Gzip, entries...), wrong)
	reg.Push(t, "not-estargz", img)
	li, err := lazy.Open(t.Context(), reg.Ref("not-estargz"), lazy.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	defer li.Close()
	requireTreesEqual(t, testimage.ExtractTree(t, img), treeOf(t, li), "annotated gzip layer")
	assert.False(t, li.Stats().Layers[0].Lazy)
}

// TestManifestRetry: a registry answering 503 to the first manifest
// requests is asked again.
func TestManifestRetry(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "edge", testimage.EdgeSpec().Image(t, testimage.Gzip))
	target, err := url.Parse("http://" + reg.Host)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var failures atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") && failures.Add(1) <= 2 {
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"try again"}]}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	li, err := lazy.Open(t.Context(), strings.TrimPrefix(srv.URL, "http://")+"/edge", lazy.WithCacheDir(t.TempDir()), lazy.WithRetries(4, time.Millisecond))
	require.NoError(t, err)
	li.Close()
	assert.Equal(t, int32(3), failures.Load())
}
