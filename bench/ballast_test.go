package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

func TestBallastFiles(t *testing.T) {
	tests := []struct {
		name  string
		b     Ballast
		small int // small files expected
	}{
		{"small files and large", Ballast{Dir: "opt/b", Bytes: 5 << 20, Small: 50, Seed: 1}, 50},
		{"only small files", Ballast{Dir: "b", Bytes: 20000, Small: 1000, Seed: 2}, -1},
		{"only large files", Ballast{Dir: "b", Bytes: 3<<20 + 7, Seed: 3}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := tt.b.Files()
			var total int64
			small, seen := 0, map[string]bool{}
			for _, f := range files {
				total += f.Size
				require.Positive(t, f.Size)
				if f.Size <= ballastSmallMax {
					small++
				} else {
					assert.GreaterOrEqual(t, f.Size, int64(ballastLargeMin), "no runt large file")
				}
				assert.False(t, seen[f.Name], "duplicate %s", f.Name)
				seen[f.Name] = true
				assert.Equal(t, tt.b.Dir, path.Dir(path.Dir(f.Name)))
			}
			assert.Equal(t, tt.b.Bytes, total, "the ballast holds exactly Bytes")
			if tt.small >= 0 {
				assert.Equal(t, tt.small, small)
			}
			assert.Equal(t, files, tt.b.Files(), "deterministic")
		})
	}
}

// The tar is what archive/tar reads back: the parents of Dir, every
// directory before its files, every file with its size, and bytes that no
// compressor shrinks.
func TestBallastTar(t *testing.T) {
	b := Ballast{Dir: "opt/ballast-1", Bytes: 3 << 20, Small: 300, Seed: 9}
	var buf bytes.Buffer
	require.NoError(t, b.WriteTar(&buf))

	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	dirs := map[string]bool{}
	var names []string
	var content int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		assert.Equal(t, Epoch, h.ModTime.UTC())
		switch h.Typeflag {
		case tar.TypeDir:
			dirs[path.Clean(h.Name)] = true
		case tar.TypeReg:
			assert.True(t, dirs[path.Dir(h.Name)], "%s comes after its directory", h.Name)
			n, err := io.Copy(io.Discard, tr)
			require.NoError(t, err)
			assert.Equal(t, h.Size, n)
			content += n
			names = append(names, h.Name)
		default:
			t.Fatalf("unexpected entry %s (%c)", h.Name, h.Typeflag)
		}
	}
	assert.True(t, dirs["opt"] && dirs["opt/ballast-1"])
	assert.Equal(t, b.Bytes, content)
	assert.Len(t, names, len(b.Files()))

	var again bytes.Buffer
	require.NoError(t, b.WriteTar(&again))
	assert.Equal(t, sha256.Sum256(buf.Bytes()), sha256.Sum256(again.Bytes()), "the same ballast gives the same tar")

	var z bytes.Buffer
	zw, err := gzip.NewWriterLevel(&z, gzip.BestCompression)
	require.NoError(t, err)
	_, err = zw.Write(buf.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	assert.Greater(t, float64(z.Len()), 0.99*float64(content), "incompressible")
}

// Every encoding is a valid layer: its digest, size and diffID are those
// of what it holds (by go-containerregistry's own checks for the gzip
// ones, which are all that validate.Layer reads); the eStargz one opens with
// the estargz reader and lists every ballast file with its size, and the
// zstd:chunked one is read by nanofs's lazy reader, file by file, with the
// same contents as the tar.
func TestEncodeLayers(t *testing.T) {
	b := Ballast{Dir: "opt/b", Bytes: 6 << 20, Small: 40, Seed: 4}
	dir := t.TempDir()
	layers, err := EncodeLayers(dir, "b", b.WriteTar)
	require.NoError(t, err)
	require.Len(t, layers, len(Encodings))
	gz, esgz, zc := layers[Gzip], layers[EStargz], layers[ZstdChunked]

	var tarBuf bytes.Buffer
	require.NoError(t, b.WriteTar(&tarBuf))
	for _, enc := range Encodings {
		l := layers[enc]
		assert.Equal(t, int64(tarBuf.Len()), l.TarBytes, enc)
		if enc == ZstdChunked {
			checkLayer(t, l.Layer())
		} else {
			require.NoError(t, validate.Layer(l.Layer()), l.File)
		}
		d, err := partial.Descriptor(l.Layer())
		require.NoError(t, err)
		assert.Equal(t, l.Desc, *d, "the descriptor, annotations included, reaches the manifest")
	}
	assert.Empty(t, gz.Desc.Annotations)
	assert.NotEmpty(t, esgz.Desc.Annotations[estargz.TOCJSONDigestAnnotation])
	assert.NotEmpty(t, zc.Desc.Annotations[testimage.ZstdChunkedPositionAnnotation])
	assert.Equal(t, gz.DiffID, zc.DiffID, "zstd:chunked frames decompress to the same tar")

	f, err := os.Open(esgz.File)
	require.NoError(t, err)
	defer f.Close()
	r, err := estargz.Open(io.NewSectionReader(f, 0, esgz.Desc.Size))
	require.NoError(t, err)
	for _, bf := range b.Files() {
		e, ok := r.Lookup(bf.Name)
		if assert.True(t, ok, "%s in the TOC", bf.Name) {
			assert.Equal(t, bf.Size, e.Size)
		}
	}

	want := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(tarBuf.Bytes()))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if hdr.Typeflag == tar.TypeReg {
			want[hdr.Name], err = io.ReadAll(tr)
			require.NoError(t, err)
		}
	}
	layout := testimage.WriteOCILayout(t, testimage.NewImage(t, v1.Config{}, zc.Layer()))
	img, err := lazy.Open(context.Background(), layout, lazy.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	defer img.Close()
	for _, bf := range b.Files() {
		got, err := fs.ReadFile(img, bf.Name)
		if assert.NoError(t, err, bf.Name) {
			assert.True(t, bytes.Equal(want[bf.Name], got), "%s: the lazy reader's bytes are the tar's", bf.Name)
		}
	}

	leftovers, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, leftovers, len(Encodings), "only the blobs stay")

	require.NoError(t, os.Remove(gz.File))
	_, err = gz.Layer().Compressed()
	assert.ErrorContains(t, err, "already pushed")
}

// checkLayer is validate.Layer for a layer it cannot decompress: the
// compressed bytes hash to the digest and have the size, the uncompressed
// ones hash to the diffID.
func checkLayer(t *testing.T, l v1.Layer) {
	t.Helper()
	hashOf := func(open func() (io.ReadCloser, error)) (v1.Hash, int64) {
		rc, err := open()
		require.NoError(t, err)
		defer rc.Close()
		h, n, err := v1.SHA256(rc)
		require.NoError(t, err)
		return h, n
	}
	digest, size := hashOf(l.Compressed)
	wantDigest, err := l.Digest()
	require.NoError(t, err)
	wantSize, err := l.Size()
	require.NoError(t, err)
	assert.Equal(t, wantDigest, digest)
	assert.Equal(t, wantSize, size)
	diffID, _ := hashOf(l.Uncompressed)
	wantDiffID, err := l.DiffID()
	require.NoError(t, err)
	assert.Equal(t, wantDiffID, diffID)
}
