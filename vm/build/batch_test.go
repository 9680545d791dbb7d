package build

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

// TestBuildAll converts a batch with 3 jobs and one cache: the shared base
// layer crosses the wire once, every artifact is pushed, and the broken
// image fails alone, named in the error.
func TestBuildAll(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	refs, base, size := testimage.PushFleet(t, reg, "fleet", 7, 6) // the broken one last
	ctr := testimage.StartCounter(t, reg.Host)
	for i, r := range refs {
		refs[i] = ctr.Host + r[len(reg.Host):]
	}
	cache, out := t.TempDir(), t.TempDir()
	var mu sync.Mutex
	var finished []string
	items, err := BuildAll(context.Background(), refs, 3, func(image string) []Option {
		return []Option{WithoutBootloader(), WithOutput(filepath.Join(out, DefaultDiskName(image))),
			WithImageOptions(lazy.WithCacheDir(cache)), WithHostDir(t.TempDir()),
			WithPush(ctr.Host + "/fleet/unikernels:" + ArtifactTag(image)), WithReuse(true)}
	}, func(it Item) {
		mu.Lock()
		defer mu.Unlock()
		finished = append(finished, it.Image)
	})
	var be *BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	broken := refs[len(refs)-1]
	assert.Equal(t, broken, be.Failed[0].Image)
	assert.Contains(t, err.Error(), "1 of 7 images failed")
	assert.Contains(t, err.Error(), broken+": ")
	assert.Contains(t, err.Error(), "/no/such/program")
	assert.Len(t, finished, 7)
	require.Len(t, items, 7)
	for _, it := range items[:6] {
		require.NoError(t, it.Err, it.Image)
		require.NotNil(t, it.Result.Published)
		assert.NotNil(t, it.Result.Published.Pushed, it.Image)
		assert.FileExists(t, it.Result.Output)
	}
	st := ctr.Stats()
	b := st.Blobs[base]
	assert.Equal(t, size, b.Bytes, "the shared base layer crossed the wire once (%d requests)", b.Requests)

	// Once more: every disk comes from its artifact; the broken image still
	// fails, alone.
	ctr.Reset()
	items, err = BuildAll(context.Background(), refs, 3, func(image string) []Option {
		return []Option{WithoutBootloader(), WithOutput(filepath.Join(out, "again-"+DefaultDiskName(image))),
			WithImageOptions(lazy.WithCacheDir(t.TempDir())), WithHostDir(t.TempDir()),
			WithPush(ctr.Host + "/fleet/unikernels:" + ArtifactTag(image)), WithReuse(true)}
	}, nil)
	require.True(t, errors.As(err, &be))
	for _, it := range items[:6] {
		require.NoError(t, it.Err)
		assert.NotEmpty(t, it.Result.Published.Reused, it.Image)
	}
	assert.LessOrEqual(t, ctr.Stats().Blobs[base].Bytes, size, "only the broken image, which has no artifact, read the base layer")
}
