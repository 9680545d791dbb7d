package testimage

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteOCILayout(t *testing.T) {
	spec := EdgeSpec()
	want := spec.Expected(t)
	for _, enc := range Encodings {
		t.Run(enc.String(), func(t *testing.T) {
			img := spec.Image(t, enc)
			dir := WriteOCILayout(t, img)
			idx, err := layout.ImageIndexFromPath(dir)
			require.NoError(t, err)
			im, err := idx.IndexManifest()
			require.NoError(t, err)
			require.Len(t, im.Manifests, 1)
			assert.Equal(t, "latest", im.Manifests[0].Annotations[RefNameAnnotation])
			wantDigest, err := img.Digest()
			require.NoError(t, err)
			assert.Equal(t, wantDigest, im.Manifests[0].Digest)

			got, err := idx.Image(im.Manifests[0].Digest)
			require.NoError(t, err)
			m, err := got.Manifest()
			require.NoError(t, err)
			for _, l := range m.Layers {
				assert.Equal(t, enc.MediaType(), l.MediaType)
				if enc == EStargz {
					assert.NotEmpty(t, l.Annotations[TOCDigestAnnotation])
				}
			}
			assertTreesEqual(t, want, ExtractTree(t, got).WithoutEStargzMeta(), "OCI layout")
		})
	}
}

func TestWriteDockerTarball(t *testing.T) {
	spec := EdgeSpec()
	want := spec.Expected(t)
	for _, enc := range Encodings {
		t.Run(enc.String(), func(t *testing.T) {
			file := WriteDockerTarball(t, "example.com/edge:1", spec.Image(t, enc))
			tag, err := name.NewTag("example.com/edge:1")
			require.NoError(t, err)
			got, err := tarball.ImageFromPath(file, &tag)
			require.NoError(t, err)
			cf, err := got.ConfigFile()
			require.NoError(t, err)
			assert.Equal(t, spec.Config.Entrypoint, cf.Config.Entrypoint)
			assert.Equal(t, spec.Config.WorkingDir, cf.Config.WorkingDir)
			assertTreesEqual(t, want, ExtractTree(t, got).WithoutEStargzMeta(), "docker tarball")
		})
	}
}

func TestWriteOCILayoutIndex(t *testing.T) {
	idx := NewIndex(t, EdgeSpec().Image(t, Zstd))
	dir := WriteOCILayoutIndex(t, idx)
	got, err := layout.ImageIndexFromPath(dir)
	require.NoError(t, err)
	im, err := got.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	inner, err := got.ImageIndex(im.Manifests[0].Digest)
	require.NoError(t, err)
	iim, err := inner.IndexManifest()
	require.NoError(t, err)
	require.Len(t, iim.Manifests, 1)
	assert.Equal(t, "linux/amd64", iim.Manifests[0].Platform.String())
}
