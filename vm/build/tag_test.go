package build

import (
	"context"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

// TestBuildTagMoved: a build of a tag starts from the manifest the tag
// named last time, but a tag pushed again since is built from its new
// manifest, as if the registry had been asked first.
func TestBuildTagMoved(t *testing.T) {
	fx := testimage.CFixtures(t)
	reg := testimage.StartInProcessRegistry(t)
	first := testimage.FixturesSpec(t).Image(t, testimage.EStargz)
	second := testimage.FixturesSpec(t).Image(t, testimage.Gzip)
	ref := reg.Push(t, "build/moving:1", first).String()
	cache := t.TempDir()
	dir := t.TempDir()
	build := func(out string) *Result {
		t.Helper()
		res, err := Build(context.Background(), ref, WithEntry(fx.Dynamic), WithoutBootloader(),
			WithOutput(filepath.Join(dir, out)), WithImageOptions(lazy.WithCacheDir(cache)), WithHostDir(t.TempDir()))
		require.NoError(t, err)
		return res
	}
	digest := func(img v1.Image) string {
		t.Helper()
		d, err := img.Digest()
		require.NoError(t, err)
		return d.String()
	}
	a := build("a.img")
	assert.Contains(t, a.Image, "@"+digest(first))
	b := build("b.img")
	assert.Equal(t, a.Image, b.Image, "the tag did not move")

	reg.Push(t, "build/moving:1", second)
	c := build("c.img")
	assert.Contains(t, c.Image, "@"+digest(second), "built from the manifest the tag names now")
	assert.False(t, c.Fetched.Layers[0].Lazy, "the gzip image's layers are read whole")
}
