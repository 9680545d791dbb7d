package artifact

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// TestWriteFindPull pushes an artifact next to an image on both kinds of
// registry, finds it among the image's referrers by its inputs digest,
// and pulls the same bytes back.
func TestWriteFindPull(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *testimage.Registry
	}{
		{"in-process", testimage.StartInProcessRegistry},
		{"docker-registry", testimage.StartDockerRegistry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			reg := tc.start(t)
			img, err := random.Image(512, 2)
			require.NoError(t, err)
			ref := reg.Push(t, "art/src:1", img).String()
			src, err := ResolveSource(ctx, ref, testimage.DefaultPlatform)
			require.NoError(t, err)
			d, err := img.Digest()
			require.NoError(t, err)
			assert.Equal(t, reg.Ref("art/src@"+d.String()), src.Ref)

			disk := filepath.Join(t.TempDir(), "a.img")
			body := []byte("not really a disk, but bytes all the same\n")
			require.NoError(t, os.WriteFile(disk, body, 0o644))
			pushed, err := Write(ctx, Push{
				Target: reg.Ref("art/src:1-nanofs"), Subject: src.Descriptor,
				Files:       []File{{Path: disk, MediaType: DiskMediaType}},
				Annotations: map[string]string{AnnotationInputs: "sha256:one"},
			})
			require.NoError(t, err)
			assert.Equal(t, int64(len(body)), pushed.Bytes)

			found, err := Find(ctx, src.Ref, "sha256:one", nil)
			require.NoError(t, err)
			require.NotNil(t, found)
			assert.Equal(t, pushed.Ref, found.Ref)
			none, err := Find(ctx, src.Ref, "sha256:two", nil)
			require.NoError(t, err)
			assert.Nil(t, none, "other inputs match nothing")

			out := filepath.Join(t.TempDir(), "b.img")
			p, err := Pull(ctx, pushed.Tag, out)
			require.NoError(t, err)
			assert.Equal(t, pushed.Ref, p.Ref)
			got, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.Equal(t, body, got)

			_, err = Pull(ctx, ref, filepath.Join(t.TempDir(), "c.img"))
			require.ErrorIs(t, err, ErrNotArtifact)

			// Pushing the same artifact again converges: one referrer.
			again, err := Write(ctx, Push{
				Target: reg.Ref("art/src:1-nanofs-again"), Subject: src.Descriptor,
				Files:       []File{{Path: disk, MediaType: DiskMediaType}},
				Annotations: map[string]string{AnnotationInputs: "sha256:one"},
			})
			require.NoError(t, err)
			assert.Equal(t, pushed.Digest, again.Digest)
			dg, err := remote.Referrers(mustDigest(t, src.Ref))
			require.NoError(t, err)
			im, err := dg.IndexManifest()
			require.NoError(t, err)
			assert.Len(t, im.Manifests, 1)
		})
	}
}

// TestWriteRejects: an artifact needs a file, and a target that parses.
func TestWriteRejects(t *testing.T) {
	_, err := Write(context.Background(), Push{Target: "127.0.0.1:1/x:y"})
	assert.ErrorContains(t, err, "at least one file")
	_, err = Write(context.Background(), Push{Target: "UPPER/case::"})
	assert.ErrorContains(t, err, "push target")
	_, err = Write(context.Background(), Push{Target: "127.0.0.1:1/x:y", Files: []File{{Path: "/no/such/file", MediaType: DiskMediaType}}})
	assert.ErrorContains(t, err, "/no/such/file")
}

func mustDigest(t *testing.T, ref string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(ref)
	require.NoError(t, err)
	return d
}

// TestResolveSourceIndex picks the platform's manifest out of an index,
// as lazy.Open does, and says which platform an index lacks.
func TestResolveSourceIndex(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	amd, err := random.Image(64, 1)
	require.NoError(t, err)
	amd, err = mutate.ConfigFile(amd, &v1.ConfigFile{OS: "linux", Architecture: "amd64"})
	require.NoError(t, err)
	arm, err := mutate.ConfigFile(amd, &v1.ConfigFile{OS: "linux", Architecture: "arm64"})
	require.NoError(t, err)
	ref := reg.PushIndex(t, "art/multi:1", testimage.NewIndex(t, amd, arm)).String()
	for _, img := range []v1.Image{amd, arm} {
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		src, err := ResolveSource(context.Background(), ref, *cf.Platform())
		require.NoError(t, err)
		d, err := img.Digest()
		require.NoError(t, err)
		assert.Equal(t, d, src.Descriptor.Digest, cf.Architecture)
	}
	_, err = ResolveSource(context.Background(), ref, v1.Platform{OS: "linux", Architecture: "riscv64"})
	assert.ErrorContains(t, err, "no image for linux/riscv64")
}
