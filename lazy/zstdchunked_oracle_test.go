package lazy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/klauspost/compress/zstd"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

// TestZstdChunkedOracle: zstd:chunked images (written by the test, every
// file's content in frames of its own, the TOC located by either spelling
// of the annotations) are read lazily and show exactly the tree
// mutate.Extract makes of them; a second open on the same cache reads
// every file without a blob request.
func TestZstdChunkedOracle(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	for _, name := range []string{testimage.CatalogEdge, testimage.CatalogFixtures, testimage.CatalogDistroless} {
		spec := testimage.CatalogSpec(t, name)
		for _, legacy := range []bool{false, true} {
			keys := "current"
			if legacy {
				keys = "legacy"
			}
			t.Run(name+"/"+keys, func(t *testing.T) {
				// Small chunks, so that large files span several frames.
				img := testimage.ZstdChunkedImage(t, spec.Image(t, testimage.Gzip),
					testimage.ZstdChunkedOptions{ChunkSize: 256 << 10, LegacyKeys: legacy})
				repo := name + "-zstd-chunked-" + keys
				reg.Push(t, repo, img)
				c := testimage.StartCounter(t, reg.Host)
				cache := t.TempDir()
				li, err := lazy.Open(t.Context(), c.Ref(repo), lazy.WithCacheDir(cache))
				require.NoError(t, err)
				defer li.Close()
				for _, l := range li.Stats().Layers {
					assert.True(t, l.Lazy, "layer %s", l.Digest)
				}
				got := treeOf(t, li)
				requireTreesEqual(t, testimage.ExtractTree(t, img), got, "lazy vs mutate.Extract")
				requireTreesEqual(t, spec.Expected(t), got, "lazy vs the image's inputs")

				c.Reset()
				li2, err := lazy.Open(t.Context(), c.Ref(repo), lazy.WithCacheDir(cache))
				require.NoError(t, err)
				defer li2.Close()
				requireTreesEqual(t, got, treeOf(t, li2), "from the cache")
				assert.Zero(t, c.Stats().BlobRequests, "%+v", c.Stats().Log)
			})
		}
	}
}

// TestZstdChunkedCorruptFrame: a frame damaged in transit fails its
// chunk's digest and is fetched again; one damaged on every answer is an
// error naming the digest mismatch, never wrong bytes.
func TestZstdChunkedCorruptFrame(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	img := testimage.ZstdChunkedImage(t, testimage.EdgeSpec().Image(t, testimage.Gzip), testimage.ZstdChunkedOptions{ChunkSize: 256 << 10})
	reg.Push(t, "edge", img)
	want := testimage.ExtractTree(t, img)
	big := bigFrame(t, img, "data/big.bin")
	for _, always := range []bool{false, true} {
		c := testimage.StartCounter(t, reg.Host)
		f := testimage.Fault{Kind: testimage.CorruptByte, Digest: big.digest, Offset: big.offset}
		if !always {
			f.Times = 1
		}
		c.Inject(f)
		got, err := openAndWalk(t, c.Ref("edge"), t.TempDir())
		if always {
			require.ErrorIs(t, err, lazy.ErrDigestMismatch)
			continue
		}
		require.NoError(t, err)
		requireTreesEqual(t, want, got, "after a corrupted frame")
	}
}

type frameAt struct {
	digest string // the layer blob
	offset int64  // a byte inside one of the file's frames
}

// bigFrame finds, through the TOC of the topmost layer holding name (the
// one the image shows), a byte in the middle of the file's first frame.
func bigFrame(t *testing.T, img v1.Image, name string) frameAt {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	var found *frameAt
	for _, l := range layers {
		desc, err := partial.Descriptor(l)
		require.NoError(t, err)
		var off, length int64
		_, err = fmt.Sscanf(desc.Annotations[testimage.ZstdChunkedPositionAnnotation], "%d:%d:", &off, &length)
		require.NoError(t, err)
		rc, err := l.Compressed()
		require.NoError(t, err)
		blob, err := io.ReadAll(rc)
		rc.Close()
		require.NoError(t, err)
		dec, err := zstd.NewReader(nil)
		require.NoError(t, err)
		tocJSON, err := dec.DecodeAll(blob[off:off+length], nil)
		dec.Close()
		require.NoError(t, err)
		var toc struct {
			Entries []struct {
				Name              string
				Offset, EndOffset int64
			}
		}
		require.NoError(t, json.Unmarshal(tocJSON, &toc))
		for _, e := range toc.Entries {
			if e.Name == name && e.EndOffset > e.Offset {
				found = &frameAt{digest: desc.Digest.String(), offset: (e.Offset + e.EndOffset) / 2}
				break
			}
		}
	}
	require.NotNil(t, found, "%s is in no layer's TOC", name)
	return *found
}
