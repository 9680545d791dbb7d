package lazy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openAndWalk opens ref and reads every file of it.
func openAndWalk(t *testing.T, ref, cache string, opts ...lazy.Option) (testimage.Tree, error) {
	t.Helper()
	opts = append([]lazy.Option{lazy.WithCacheDir(cache), lazy.WithRetries(4, time.Millisecond)}, opts...)
	img, err := lazy.Open(t.Context(), ref, opts...)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	if _, err := testimage.TreeFromFS(img); err != nil {
		return nil, err
	}
	return treeOf(t, img), nil
}

// requireCacheVerified checks that everything in a cache directory is
// complete and verified: no temporary files, every content-addressed file
// hashes to its name, every cached layer tar to its layer's diffID.
func requireCacheVerified(t *testing.T, dir string, diffIDs map[string]v1.Hash) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		base := d.Name()
		kind := strings.Split(rel, string(filepath.Separator))[0]
		require.False(t, strings.HasPrefix(base, ".tmp-"), "temporary file left behind: %s", rel)
		switch {
		case strings.HasSuffix(base, ".lock") || strings.HasSuffix(base, ".json") || strings.HasSuffix(base, ".index") || strings.HasSuffix(base, ".idx") ||
			strings.HasSuffix(base, ".tag") || strings.HasSuffix(base, ".plain-http"):
			return nil
		case kind == "layers" && strings.HasSuffix(base, ".tar"):
			layer := "sha256:" + strings.TrimSuffix(base, ".tar")
			want, ok := diffIDs[layer]
			require.True(t, ok, "cached tar of an unknown layer: %s", rel)
			assert.Equal(t, want.Hex, sha256File(t, p), "cached tar %s is the layer's verified content", rel)
			_, err := os.Stat(strings.TrimSuffix(p, ".tar") + ".idx")
			assert.NoError(t, err, "cached tar %s has its index", rel)
		case kind == "chunks" || kind == "toc" || kind == "blobs" || kind == "manifests":
			assert.Equal(t, base, sha256File(t, p), "%s is verified content", rel)
		default:
			t.Errorf("unexpected cache file %s", rel)
		}
		return nil
	})
	require.NoError(t, err)
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// TestFaults injects faults into blob downloads with the counting proxy:
// reads recover (dropped connections resume from the last byte received,
// a 500 is retried, a server ignoring Range is handled, a corrupted byte
// is fetched again) or fail with a digest error naming the layer, and the
// cache never holds anything unverified.
func TestFaults(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	spec := testimage.EdgeSpec()
	for _, enc := range testimage.Encodings {
		img := spec.Image(t, enc)
		repo := "edge-" + enc.String()
		reg.Push(t, repo, img)
		want := testimage.ExtractTree(t, img).WithoutEStargzMeta()
		m, err := img.Manifest()
		require.NoError(t, err)
		cf, err := img.ConfigFile()
		require.NoError(t, err)
		diffIDs := map[string]v1.Hash{}
		for i, l := range m.Layers {
			diffIDs[l.Digest.String()] = cf.RootFS.DiffIDs[i]
		}
		big := m.Layers[2] // mostly one big file (which hides a bigger one of layer 0)
		bigD := big.Digest.String()
		dropAt := big.Size / 2
		times := 1
		if enc == testimage.EStargz {
			// Cut the footer, TOC and first chunk responses short.
			dropAt, times = 20, 3
		}
		drop := testimage.Fault{Kind: testimage.DropAfter, Digest: bigD, Offset: dropAt, Times: times}
		tests := []struct {
			name    string
			fault   testimage.Fault
			wantErr bool
			more    []testimage.Fault
		}{
			{"drop mid-blob", drop, false, nil},
			{"drop, then 200 to the resumed range", drop, false, []testimage.Fault{{Kind: testimage.IgnoreRange, Digest: bigD}}},
			{"500 once", testimage.Fault{Kind: testimage.Status500, Digest: bigD, Times: 1}, false, nil},
			{"500 always", testimage.Fault{Kind: testimage.Status500, Digest: bigD}, true, nil},
			{"200 to ranges", testimage.Fault{Kind: testimage.IgnoreRange, Digest: bigD}, false, nil},
			{"corrupt byte once", testimage.Fault{Kind: testimage.CorruptByte, Digest: bigD, Offset: big.Size / 2, Times: 1}, false, nil},
			{"corrupt byte always", testimage.Fault{Kind: testimage.CorruptByte, Digest: bigD, Offset: big.Size / 2}, true, nil},
		}
		for _, tt := range tests {
			t.Run(enc.String()+"/"+tt.name, func(t *testing.T) {
				c := testimage.StartCounter(t, reg.Host)
				c.Inject(tt.fault)
				for _, f := range tt.more {
					c.Inject(f)
				}
				cache := t.TempDir()
				got, err := openAndWalk(t, c.Ref(repo), cache)
				requireCacheVerified(t, cache, diffIDs)
				if tt.wantErr {
					require.Error(t, err)
					t.Logf("error: %v", err)
					assert.Contains(t, err.Error(), bigD, "the error names the layer")
					if tt.fault.Kind == testimage.CorruptByte {
						assert.ErrorIs(t, err, lazy.ErrDigestMismatch)
					}
					return
				}
				require.NoError(t, err)
				requireTreesEqual(t, want, got, "tree after "+tt.name)
				if tt.fault.Kind == testimage.DropAfter {
					assertResumed(t, c.Stats(), bigD, big.Size)
				}
			})
		}
	}
}

// assertResumed checks that after each dropped response the client asked
// for the rest only, from the first byte it had not received.
func assertResumed(t *testing.T, st testimage.Stats, digest string, size int64) {
	t.Helper()
	ranges := map[[2]int64]bool{}
	for _, r := range st.Log {
		var a, b int64
		if r.Digest == digest && r.Range != "" {
			_, err := fmt.Sscanf(r.Range, "bytes=%d-%d", &a, &b)
			require.NoError(t, err, "ranges name both ends: %+v", r)
			ranges[[2]int64{a, b}] = true
		}
	}
	dropped := 0
	for _, r := range st.Log {
		if r.Digest != digest || r.Fault != "drop-after" {
			continue
		}
		dropped++
		first, last := int64(0), size-1
		if r.Range != "" {
			_, err := fmt.Sscanf(r.Range, "bytes=%d-%d", &first, &last)
			require.NoError(t, err)
		}
		if first+r.Bytes > last {
			continue // the fault hit a response shorter than its cut
		}
		assert.True(t, ranges[[2]int64{first + r.Bytes, last}], "after %+v the client asks for bytes=%d-%d", r, first+r.Bytes, last)
	}
	assert.Positive(t, dropped)
}
