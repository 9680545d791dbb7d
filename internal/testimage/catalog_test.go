package testimage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertTreesEqual fails with at most 40 lines of difference.
func assertTreesEqual(t testing.TB, want, got Tree, msg string) {
	t.Helper()
	diff := DiffTrees(want, got)
	if len(diff) == 0 {
		return
	}
	n := len(diff)
	if n > 40 {
		diff = append(diff[:40], fmt.Sprintf("... and %d more", n-40))
	}
	t.Errorf("%s: %d differences:\n%s", msg, n, strings.Join(diff, "\n"))
}

// roundTrip pushes spec's image in enc to reg, pulls it back through a
// Counter with remote.Image, and checks the flattened tree against the
// inputs, the config, the layer descriptors, and that the counter saw
// exactly the blob bytes of one full pull.
func roundTrip(t *testing.T, reg *Registry, spec *Spec, enc Encoding) {
	img := spec.Image(t, enc)
	repo := spec.Name + "-" + enc.String()
	start := time.Now()
	reg.Push(t, repo, img)
	pushed := time.Since(start)

	c := StartCounter(t, reg.Host)
	ref, err := name.ParseReference(c.Ref(repo), name.Insecure)
	require.NoError(t, err)
	start = time.Now()
	pulled, err := remote.Image(ref, remote.WithContext(t.Context()))
	require.NoError(t, err)
	got := ExtractTree(t, pulled)
	t.Logf("%s %s: push %v, pull+extract %v", spec.Name, enc, pushed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	wantDigest, err := img.Digest()
	require.NoError(t, err)
	gotDigest, err := pulled.Digest()
	require.NoError(t, err)
	assert.Equal(t, wantDigest, gotDigest, "manifest digest survives the registry")

	if enc == EStargz {
		for _, p := range []string{"stargz.index.json", ".no.prefetch.landmark"} {
			_, ok := got[p]
			assert.True(t, ok, "estargz.Build adds %s", p)
		}
		got = got.WithoutEStargzMeta()
	}
	assertTreesEqual(t, spec.Expected(t), got, "flattened image vs its inputs")

	cf, err := pulled.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, spec.Config.Entrypoint, cf.Config.Entrypoint)
	assert.Equal(t, spec.Config.Cmd, cf.Config.Cmd)
	assert.Equal(t, spec.Config.Env, cf.Config.Env)
	assert.Equal(t, spec.Config.WorkingDir, cf.Config.WorkingDir)
	assert.Equal(t, "linux", cf.OS)

	m, err := pulled.Manifest()
	require.NoError(t, err)
	require.Len(t, m.Layers, len(spec.Layers))
	want := map[string]int64{m.Config.Digest.String(): m.Config.Size}
	for _, l := range m.Layers {
		assert.Equal(t, enc.MediaType(), l.MediaType)
		if enc == EStargz {
			assert.True(t, strings.HasPrefix(l.Annotations[TOCDigestAnnotation], "sha256:"), "TOC digest annotation on %s", l.Digest)
			assert.NotEmpty(t, l.Annotations[UncompressedSizeAnnotation])
		}
		want[l.Digest.String()] += l.Size
	}
	st := c.Stats()
	var total int64
	for d, size := range want {
		assert.Equal(t, BlobCount{Requests: 1, Bytes: size}, st.Blobs[d], "blob %s", d)
		total += size
	}
	assert.Equal(t, total, st.BlobBytes, "a full pull transfers every blob once")
	assert.Equal(t, len(want), st.BlobRequests)
}

// TestCatalogInProcess round-trips the small catalog images in every
// encoding through go-containerregistry's in-process registry.
func TestCatalogInProcess(t *testing.T) {
	reg := StartInProcessRegistry(t)
	for _, name := range []string{CatalogEdge, CatalogFixtures, CatalogDistroless} {
		t.Run(name, func(t *testing.T) {
			spec := CatalogSpec(t, name)
			for _, enc := range Encodings {
				t.Run(enc.String(), func(t *testing.T) { roundTrip(t, reg, spec, enc) })
			}
		})
	}
}

// TestCatalogDockerRegistry round-trips every catalog image in every
// encoding through Debian's docker-registry.
func TestCatalogDockerRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("testimage: starts docker-registry; skipped under -short")
	}
	reg := StartDockerRegistry(t)
	for _, name := range CatalogNames {
		t.Run(name, func(t *testing.T) {
			spec := CatalogSpec(t, name)
			for _, enc := range Encodings {
				t.Run(enc.String(), func(t *testing.T) { roundTrip(t, reg, spec, enc) })
			}
		})
	}
	for _, s := range LayerBuildStats() {
		if s.TarBytes < 32<<20 {
			continue
		}
		t.Logf("built layer %s: tar %d MB in %v; gzip %s; zstd %s; estargz %s", s.Source, s.TarBytes>>20,
			s.Tar.Round(time.Millisecond), s.Blobs[Gzip], s.Blobs[Zstd], s.Blobs[EStargz])
	}
}

func (b BlobStats) String() string {
	return fmt.Sprintf("%.1f MB in %v", float64(b.Bytes)/(1<<20), b.Took.Round(time.Millisecond))
}

// TestDebianNodeMatchesMergedRootfs checks the Debian image's inputs
// against a second, independent source: the two lower layers of
// debian-node must stack to the same tree as the merged rootfs with the
// packages installed. The top layer must show the node-style entrypoint.
func TestDebianNodeMatchesMergedRootfs(t *testing.T) {
	spec := DebianNodeSpec(t)
	merged := DebianRootfsWith(t, "nodejs", "python3", "redis-server")
	want, err := TreeFromFS(os.DirFS(merged))
	require.NoError(t, err)
	lower := &Spec{Name: "debian-node-lower", Layers: spec.Layers[:2]}
	assertTreesEqual(t, want, lower.Expected(t), "merged rootfs vs base + package layer")

	tree := spec.Expected(t)
	ep := tree["usr/local/bin/docker-entrypoint.sh"]
	assert.Equal(t, os.FileMode(0o755), ep.Mode)
	for _, p := range []string{"usr/bin/node", "usr/bin/python3", "usr/bin/redis-server", "usr/bin/sh"} {
		_, ok := tree[p]
		assert.True(t, ok, "%s in the image", p)
	}
	assert.Equal(t, "usr/bin", tree["bin"].Target, "usrmerge")
	assert.Contains(t, spec.Config.Env, DefaultPath)
	assert.Regexp(t, `^NODE_VERSION=\d+\.\d+\.\d+$`, spec.Config.Env[1])
	_, err = os.Stat(filepath.Join(merged, "usr/bin/node"))
	require.NoError(t, err)
}

// TestDistrolessHasNoShell: nothing that could run a script is in the image.
func TestDistrolessHasNoShell(t *testing.T) {
	spec := DistrolessSpec(t)
	tree := spec.Expected(t)
	for _, p := range []string{"bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash", "bin/busybox"} {
		_, ok := tree[p]
		assert.False(t, ok, "%s in a distroless image", p)
	}
	ep := strings.TrimPrefix(spec.Config.Entrypoint[0], "/")
	require.Contains(t, tree, ep)
	assert.True(t, tree[ep].Mode.IsRegular())
	assert.Contains(t, tree, "etc/passwd")
}

func TestPushIndex(t *testing.T) {
	reg := StartInProcessRegistry(t)
	amd := EdgeSpec()
	arm := EdgeSpec()
	arm.Platform = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	idx := NewIndex(t, amd.Image(t, Gzip), arm.Image(t, Gzip))
	ref := reg.PushIndex(t, "multi:1", idx)
	got, err := remote.Index(ref)
	require.NoError(t, err)
	im, err := got.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 2)
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Platform.String())
	}
	assert.Equal(t, []string{"linux/amd64", "linux/arm64/v8"}, platforms)
}
