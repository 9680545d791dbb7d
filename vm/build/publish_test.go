package build

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/vm/artifact"
	"github.com/nanofs/nanofs/vm/kernel"
)

// TestPushReuse pushes a built disk as an artifact to both kinds of
// registry; a second build with an empty cache finds it among the source's
// referrers (Debian's docker-registry has no Referrers API: the referrers
// tag) and fetches only its disk, byte-identical to a fresh build; another
// argument builds anew.
func TestPushReuse(t *testing.T) {
	fx := testimage.CFixtures(t)
	img := testimage.FixturesSpec(t).Image(t, testimage.EStargz)
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *testimage.Registry
	}{
		{"in-process", testimage.StartInProcessRegistry},
		{"docker-registry", testimage.StartDockerRegistry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := tc.start(t)
			reg.Push(t, "fleet/fixtures:1", img)
			ctr := testimage.StartCounter(t, reg.Host)
			ref := ctr.Ref("fleet/fixtures:1")
			target := ctr.Ref("fleet/fixtures:1-nanofs")
			dir := t.TempDir()
			build := func(out string, extra ...Option) *Result {
				t.Helper()
				opts := append([]Option{WithEntry(fx.Dynamic), WithArgs("a1"), WithoutBootloader(), WithOutput(filepath.Join(dir, out)),
					WithImageOptions(lazy.WithCacheDir(t.TempDir())), WithHostDir(t.TempDir()), WithReuse(true)}, extra...)
				res, err := Build(context.Background(), ref, opts...)
				require.NoError(t, err)
				return res
			}

			first := build("first.img", WithPush(target), WithToolVersion("test"))
			require.NotNil(t, first.Published)
			require.NotNil(t, first.Published.Pushed)
			assert.Empty(t, first.Published.Reused)
			m, err := artifact.Get(context.Background(), target)
			require.NoError(t, err)
			require.NotNil(t, m.Manifest.Subject)
			src, err := name.NewDigest(first.Published.Source)
			require.NoError(t, err)
			assert.Equal(t, src.DigestStr(), m.Manifest.Subject.Digest.String())
			assert.Equal(t, artifact.ArtifactType, m.Manifest.ArtifactType)
			a := m.Manifest.Annotations
			assert.Equal(t, first.Published.Inputs, a[artifact.AnnotationInputs])
			assert.Equal(t, fx.Dynamic, a[artifact.AnnotationProgram])
			assert.Equal(t, `["`+fx.Dynamic+`","a1"]`, a[artifact.AnnotationArguments])
			assert.Equal(t, "test", a[artifact.AnnotationVersion])
			if tc.name == "docker-registry" {
				// No Referrers API: the referrers tag schema holds the artifact.
				tag := src.Context().Tag(strings.Replace(src.DigestStr(), ":", "-", 1))
				idx, err := remote.Index(tag)
				require.NoError(t, err, "the referrers tag %s", tag)
				im, err := idx.IndexManifest()
				require.NoError(t, err)
				require.Len(t, im.Manifests, 1)
				assert.Equal(t, artifact.ArtifactType, im.Manifests[0].ArtifactType)
			}

			ctr.Reset()
			second := build("second.img")
			require.NotNil(t, second.Published)
			assert.Equal(t, first.Published.Pushed.Ref, second.Published.Reused)
			assert.Nil(t, second.Plan, "nothing was resolved")
			st := ctr.Stats()
			disk := m.Manifest.Layers[0].Digest.String()
			assert.Equal(t, []string{disk}, keys(st.Blobs), "only the artifact's disk crosses the wire")
			assert.Equal(t, m.Manifest.Layers[0].Size, st.BlobBytes)
			one, err := os.ReadFile(first.Output)
			require.NoError(t, err)
			two, err := os.ReadFile(second.Output)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(one, two), "the reused disk is the built one, byte for byte")

			third := build("third.img", WithArgs("a2"))
			assert.Empty(t, third.Published.Reused, "another argument builds anew")
			assert.NotEqual(t, first.Published.Inputs, third.Published.Inputs)
			assert.NotNil(t, third.Plan)

			fresh := build("fresh.img", WithReuse(false))
			assert.Nil(t, fresh.Published)
			b, err := os.ReadFile(fresh.Output)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(one, b), "a fresh build gives the same bytes")
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestInputsDigest: every input that changes the disk changes the digest;
// the same inputs give the same digest.
func TestInputsDigest(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hi.js"), []byte("one"), 0o644))
	kdir := t.TempDir()
	k := kernel.Kernel{Kernel: filepath.Join(kdir, "kernel.img"), Boot: filepath.Join(kdir, "boot.img")}
	require.NoError(t, os.WriteFile(k.Kernel, []byte("kernel"), 0o644))
	require.NoError(t, os.WriteFile(k.Boot, []byte("boot"), 0o644))
	digest := func(src string, k kernel.Kernel, opts ...Option) string {
		t.Helper()
		o := newOptions(append([]Option{WithHostDir(dir)}, opts...))
		d, err := o.inputsDigest(src, k)
		require.NoError(t, err)
		return d
	}
	base := digest("sha256:a", k, WithArgs("hi.js"))
	assert.Equal(t, base, digest("sha256:a", k, WithArgs("hi.js")))
	for name, other := range map[string]string{
		"source":    digest("sha256:b", k, WithArgs("hi.js")),
		"args":      digest("sha256:a", k, WithArgs("hi.js", "x")),
		"env":       digest("sha256:a", k, WithArgs("hi.js"), WithEnv("A=1")),
		"entry":     digest("sha256:a", k, WithArgs("hi.js"), WithEntry("node")),
		"size":      digest("sha256:a", k, WithArgs("hi.js"), WithSize("1G")),
		"include":   digest("sha256:a", k, WithArgs("hi.js"), WithInclude("/x/*")),
		"dns":       digest("sha256:a", k, WithArgs("hi.js"), WithNameservers("1.1.1.1")),
		"workdir":   digest("sha256:a", k, WithArgs("hi.js"), WithWorkdir("/srv")),
		"no kernel": digest("sha256:a", kernel.Kernel{}, WithArgs("hi.js")),
	} {
		assert.NotEqual(t, base, other, name)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hi.js"), []byte("two"), 0o644))
	assert.NotEqual(t, base, digest("sha256:a", k, WithArgs("hi.js")), "an edited local file named by an argument")
	edited := digest("sha256:a", k, WithArgs("hi.js"))
	require.NoError(t, os.WriteFile(k.Kernel, []byte("kernel 2"), 0o644))
	assert.NotEqual(t, edited, digest("sha256:a", k, WithArgs("hi.js")), "another kernel")
}
