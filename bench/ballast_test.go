package bench

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// Both encodings are valid layers by go-containerregistry's own checks
// (digest, diffID and size of what they hold), and the eStargz one opens
// with the estargz reader and lists every ballast file with its size.
func TestEncodeLayers(t *testing.T) {
	b := Ballast{Dir: "opt/b", Bytes: 6 << 20, Small: 40, Seed: 4}
	dir := t.TempDir()
	gz, esgz, err := EncodeLayers(dir, "b", b.WriteTar)
	require.NoError(t, err)

	var tarBuf bytes.Buffer
	require.NoError(t, b.WriteTar(&tarBuf))
	assert.Equal(t, int64(tarBuf.Len()), gz.TarBytes)
	for _, l := range []*EncodedLayer{gz, esgz} {
		require.NoError(t, validate.Layer(l.Layer()), l.File)
		d, err := partial.Descriptor(l.Layer())
		require.NoError(t, err)
		assert.Equal(t, l.Desc, *d, "the descriptor, annotations included, reaches the manifest")
	}
	assert.Empty(t, gz.Desc.Annotations)
	assert.NotEmpty(t, esgz.Desc.Annotations[estargz.TOCJSONDigestAnnotation])

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

	leftovers, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, leftovers, 2, "only the two blobs stay")

	require.NoError(t, os.Remove(gz.File))
	_, err = gz.Layer().Compressed()
	assert.ErrorContains(t, err, "already pushed")
}
