package lazy_test

import (
	"io"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

// randomText is incompressible enough that compressed sizes differ per file.
func randomText(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
}

// TestMinTransfer checks the yardstick against the layers' own sizes for
// stream layers, and against the bytes a registry really served for
// eStargz reads.
func TestMinTransfer(t *testing.T) {
	spec := &testimage.Spec{
		Name: "transfer",
		Layers: []testimage.LayerInput{
			{Entries: []testimage.Entry{testimage.File("a", 0o644, randomText(1, 200<<10)), testimage.File("empty", 0o644, "")}},
			{Entries: []testimage.Entry{
				testimage.Dir("d", 0o755),
				testimage.File("d/b", 0o644, randomText(2, 3<<20)),
				testimage.File("d/c", 0o644, randomText(3, 10<<10)),
				testimage.Symlink("link", "d/c"),
			}},
		},
	}
	reg := testimage.StartInProcessRegistry(t)
	for _, enc := range testimage.Encodings {
		t.Run(enc.String(), func(t *testing.T) {
			repo := "transfer-" + enc.String()
			reg.Push(t, repo, spec.Image(t, enc))
			c := testimage.StartCounter(t, reg.Host)
			img, err := lazy.Open(t.Context(), c.Ref(repo), lazy.WithCacheDir(t.TempDir()))
			require.NoError(t, err)
			defer img.Close()
			layers := img.Stats().Layers
			require.Len(t, layers, 2)

			measure := func(names ...string) int64 {
				n, err := img.MinTransfer(names)
				require.NoError(t, err, names)
				return n
			}
			assert.Zero(t, measure("empty"), "an empty file costs nothing")
			if enc != testimage.EStargz {
				assert.Equal(t, layers[0].Size, measure("a"))
				assert.Equal(t, layers[1].Size, measure("d/b", "d/c", "link"), "a layer counts once")
				assert.Equal(t, layers[0].Size+layers[1].Size, measure("a", "d/b"))
				return
			}
			b, cc := measure("d/b"), measure("link")
			assert.Less(t, b+cc, layers[1].Size, "eStargz: the files' members, not the layer")
			assert.Equal(t, cc, measure("d/c"), "links are followed")

			c.Reset()
			f, err := img.Open("d/b")
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, f)
			require.NoError(t, err)
			f.Close()
			got := c.Stats().BlobBytes
			assert.GreaterOrEqual(t, got, b, "no read fetches less than the yardstick")
			assert.LessOrEqual(t, float64(got), 1.2*float64(b))
		})
	}
	t.Run("errors", func(t *testing.T) {
		ref := reg.Push(t, "transfer-err", spec.Image(t, testimage.Gzip))
		img, err := lazy.Open(t.Context(), ref.String(), lazy.WithCacheDir(t.TempDir()))
		require.NoError(t, err)
		defer img.Close()
		n, err := img.MinTransfer([]string{"a", "missing", "d"})
		require.Error(t, err)
		assert.ErrorContains(t, err, "missing")
		assert.ErrorContains(t, err, "not a regular file")
		assert.Equal(t, img.Stats().Layers[0].Size, n, "what could be measured is")
	})
}
