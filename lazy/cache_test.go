package lazy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCacheReuse: a second Open of the same image on the same cache reads
// every file without a single blob request, whatever the encoding.
func TestCacheReuse(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	for _, enc := range testimage.Encodings {
		t.Run(enc.String(), func(t *testing.T) {
			img := testimage.EdgeSpec().Image(t, enc)
			reg.Push(t, "edge", img)
			c := testimage.StartCounter(t, reg.Host)
			cache := t.TempDir()
			first, err := openAndWalk(t, c.Ref("edge"), cache)
			require.NoError(t, err)
			assert.Positive(t, c.Stats().BlobBytes)
			c.Reset()
			second, err := openAndWalk(t, c.Ref("edge"), cache)
			require.NoError(t, err)
			assert.Equal(t, first, second)
			assert.Zero(t, c.Stats().BlobRequests, "%+v", c.Stats().Log)
		})
	}
}

// TestDigestReferenceWarm: an image referenced by digest whose manifest,
// config and files are cached opens and reads without a single request to
// the registry (not even its /v2/ ping), whatever the encoding; a tag
// still asks the registry for its digest.
func TestDigestReferenceWarm(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	for _, enc := range testimage.Encodings {
		t.Run(enc.String(), func(t *testing.T) {
			img := testimage.EdgeSpec().Image(t, enc)
			reg.Push(t, "edge", img)
			d, err := img.Digest()
			require.NoError(t, err)
			c := testimage.StartCounter(t, reg.Host)
			cache := t.TempDir()
			byDigest := c.Ref("edge@" + d.String())
			first, err := openAndWalk(t, byDigest, cache)
			require.NoError(t, err)
			assert.Positive(t, c.Stats().Requests)
			c.Reset()
			second, err := openAndWalk(t, byDigest, cache)
			require.NoError(t, err)
			assert.Equal(t, first, second)
			assert.Zero(t, c.Stats().Requests, "%+v", c.Stats().Log)

			c.Reset()
			third, err := openAndWalk(t, c.Ref("edge"), cache)
			require.NoError(t, err)
			assert.Equal(t, first, third)
			assert.Positive(t, c.Stats().Requests, "a tag is resolved by the registry")
			assert.Zero(t, c.Stats().BlobRequests, "%+v", c.Stats().Log)

			// A cached manifest whose blob went missing: the registry is
			// asked (ping, token) only then.
			require.NoError(t, os.RemoveAll(filepath.Join(cache, "chunks")))
			require.NoError(t, os.RemoveAll(filepath.Join(cache, "layers")))
			c.Reset()
			fourth, err := openAndWalk(t, byDigest, cache)
			require.NoError(t, err)
			assert.Equal(t, first, fourth)
			assert.Positive(t, c.Stats().BlobRequests)
		})
	}
}

// TestConcurrentOpens: several opens of one image on one cache at once
// (each taking the cache's file locks as separate processes would)
// download each streamed layer once.
func TestConcurrentOpens(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	img := testimage.EdgeSpec().Image(t, testimage.Zstd)
	reg.Push(t, "edge", img)
	c := testimage.StartCounter(t, reg.Host)
	cache := t.TempDir()
	var wg sync.WaitGroup
	trees := make([]testimage.Tree, 4)
	for i := range trees {
		wg.Go(func() {
			tree, err := openAndWalk(t, c.Ref("edge"), cache)
			assert.NoError(t, err)
			trees[i] = tree
		})
	}
	wg.Wait()
	want := testimage.ExtractTree(t, img)
	for _, tree := range trees {
		requireTreesEqual(t, want, tree, "concurrent open")
	}
	m, err := img.Manifest()
	require.NoError(t, err)
	for _, l := range m.Layers {
		assert.Equal(t, 1, c.Stats().Blobs[l.Digest.String()].Requests, "layer %s downloaded once", l.Digest)
	}
}

// TestDamagedCache: cache files damaged after they were written (chunks,
// cached layer tars) are found by VerifyCache, thrown away and fetched
// again.
func TestDamagedCache(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	for _, enc := range []testimage.Encoding{testimage.Gzip, testimage.EStargz} {
		t.Run(enc.String(), func(t *testing.T) {
			img := testimage.EdgeSpec().Image(t, enc)
			reg.Push(t, "edge", img)
			want := testimage.ExtractTree(t, img).WithoutEStargzMeta()
			c := testimage.StartCounter(t, reg.Host)
			cache := t.TempDir()
			_, err := openAndWalk(t, c.Ref("edge"), cache)
			require.NoError(t, err)
			damaged := 0
			err = filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(cache, p)
				if strings.HasPrefix(rel, "chunks") || strings.HasSuffix(rel, ".tar") {
					f, err := os.OpenFile(p, os.O_RDWR, 0)
					require.NoError(t, err)
					defer f.Close()
					b := make([]byte, 1)
					_, err = f.ReadAt(b, 0)
					require.NoError(t, err)
					b[0] ^= 0xff
					_, err = f.WriteAt(b, 0)
					require.NoError(t, err)
					damaged++
				}
				return nil
			})
			require.NoError(t, err)
			require.Positive(t, damaged)
			// Cached chunks and tars are read without hashing them again:
			// the damage is found by VerifyCache (nanofs cache verify),
			// which removes what it finds.
			vr, err := lazy.VerifyCache(cache)
			require.NoError(t, err)
			assert.Len(t, vr.Corrupt, damaged, "every damaged entry is found")
			prefix := "chunks/sha256:"
			if enc == testimage.Gzip {
				prefix = "layers/sha256:"
			}
			for _, e := range vr.Corrupt {
				assert.True(t, strings.HasPrefix(e, prefix), e)
			}
			assert.Positive(t, vr.Entries)
			vr, err = lazy.VerifyCache(cache)
			require.NoError(t, err)
			assert.Empty(t, vr.Corrupt, "a second pass finds nothing left")
			c.Reset()
			got, err := openAndWalk(t, c.Ref("edge"), cache)
			require.NoError(t, err)
			requireTreesEqual(t, want, got, "after damaging the cache")
			assert.Positive(t, c.Stats().BlobRequests, "damaged entries are fetched again")
		})
	}
}

// TestPrefetch: prefetching files fetches them in few requests; reading
// them afterwards costs none.
func TestPrefetch(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	spec := testimage.FixturesSpec(t)
	reg.Push(t, "fixtures", spec.Image(t, testimage.EStargz))
	c := testimage.StartCounter(t, reg.Host)
	img, err := lazy.Open(t.Context(), c.Ref("fixtures"), lazy.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	defer img.Close()
	var files []string
	require.NoError(t, fs.WalkDir(img, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	}))
	c.Reset()
	err = img.Prefetch(t.Context(), append(files, "no/such/file"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	prefetched := c.Stats()
	t.Logf("prefetched %d files with %d requests, %d bytes", len(files), prefetched.BlobRequests, prefetched.BlobBytes)
	assert.Less(t, prefetched.BlobRequests, len(files)/2, "neighbouring files come in one request")
	c.Reset()
	_, err = testimage.TreeFromFS(img)
	require.NoError(t, err)
	assert.Zero(t, c.Stats().BlobRequests)
}

// TestFSInterfaces runs the standard library's file system checker.
func TestFSInterfaces(t *testing.T) {
	dir := testimage.WriteOCILayout(t, testimage.EdgeSpec().Image(t, testimage.EStargz))
	img, err := lazy.Open(t.Context(), dir, lazy.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	defer img.Close()
	// fstest opens everything it lists: keep to trees without dangling
	// symlinks and FIFOs.
	for dir, want := range map[string][]string{
		"usr":  {"bin/tool", "bin/tool-hard", "bin/tool-rel", "lib64/ld-edge.so.2", "lib/x86_64-linux-gnu/libedge.so"},
		"etc":  {"hostname", "with space", "ünïcödé", "alternatives/editor", "empty"},
		"data": {"big.bin"},
		"srv":  {"opaque/new1"},
	} {
		sub, err := fs.Sub(img, dir)
		require.NoError(t, err)
		require.NoError(t, fstest.TestFS(sub, want...), dir)
	}

	f, err := img.Open("data/big.bin")
	require.NoError(t, err)
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	require.True(t, ok)
	whole, err := img.ReadFile("data/big.bin")
	require.NoError(t, err)
	for _, off := range []int64{0, int64(len(whole))/2 - 10, int64(len(whole)) - 5} {
		buf := make([]byte, 100)
		n, err := ra.ReadAt(buf, off)
		want := whole[off:min(off+100, int64(len(whole)))]
		assert.Equal(t, len(want), n)
		assert.Equal(t, want, buf[:n])
		if n < 100 {
			assert.ErrorIs(t, err, io.EOF)
		} else {
			assert.NoError(t, err)
		}
	}
	s := f.(io.Seeker)
	pos, err := s.Seek(-3, io.SeekEnd)
	require.NoError(t, err)
	assert.Equal(t, int64(len(whole)-3), pos)
	rest, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.Equal(t, whole[len(whole)-3:], rest)

	target, err := img.ReadLink("new/deep/up")
	require.NoError(t, err)
	assert.Equal(t, "../../etc/hostname", target)
	_, err = img.ReadLink("etc/hostname")
	require.Error(t, err)
	li, err := img.Lstat("bin")
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSymlink, li.Mode().Type())
	si, err := img.Stat("bin")
	require.NoError(t, err)
	assert.True(t, si.IsDir())
	_, err = img.Open("../etc/passwd")
	require.ErrorIs(t, err, fs.ErrInvalid)
	_, err = img.Open("new/dangling")
	require.ErrorIs(t, err, fs.ErrNotExist)

	a, err := img.Stat("usr/bin/tool")
	require.NoError(t, err)
	b, err := img.Stat("usr/bin/tool-hard")
	require.NoError(t, err)
	sa, sb := a.Sys().(*lazy.Stat), b.Sys().(*lazy.Stat)
	assert.Equal(t, sa.Ino(), sb.Ino(), "hard links share an inode")
	assert.Equal(t, uint32(2), sa.Nlink())
	h, err := img.Stat("home/user")
	require.NoError(t, err)
	assert.Equal(t, uint32(1000), h.Sys().(*lazy.Stat).Uid())
}

// stallingProxy forwards to a registry, but the first blob response it
// serves stops after half its body and hangs until the client gives up.
type stallingProxy struct {
	proxy   *httputil.ReverseProxy
	stalled atomic.Bool
	forever bool
}

func (s *stallingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.URL.Path, "/blobs/") || (!s.forever && s.stalled.Load()) {
		s.proxy.ServeHTTP(w, r)
		return
	}
	s.stalled.Store(true)
	rec := httptest.NewRecorder()
	s.proxy.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	body := rec.Body.Bytes()
	w.Write(body[:len(body)/2])
	http.NewResponseController(w).Flush()
	<-r.Context().Done()
}

func startStallingProxy(t *testing.T, forever bool) (*stallingProxy, string) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "edge", testimage.EdgeSpec().Image(t, testimage.Gzip))
	target, err := url.Parse("http://" + reg.Host)
	require.NoError(t, err)
	s := &stallingProxy{proxy: httputil.NewSingleHostReverseProxy(target), forever: forever}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, strings.TrimPrefix(srv.URL, "http://") + "/edge"
}

// TestStall: a response that stops sending is dropped after the stall
// timeout and the rest asked for again.
func TestStall(t *testing.T) {
	s, ref := startStallingProxy(t, false)
	_, err := openAndWalk(t, ref, t.TempDir(), lazy.WithStallTimeout(200*time.Millisecond))
	require.NoError(t, err)
	assert.True(t, s.stalled.Load())
}

// TestCancel: cancelling the context stops a hanging Open promptly.
func TestCancel(t *testing.T) {
	_, ref := startStallingProxy(t, true)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := lazy.Open(ctx, ref, lazy.WithCacheDir(t.TempDir()))
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	assert.Less(t, time.Since(start), 10*time.Second)
}

// TestChunkBoundaries reads a file of several eStargz chunks at offsets and
// lengths around the chunk boundaries.
func TestChunkBoundaries(t *testing.T) {
	body := make([]byte, 9<<20+777)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rnd.Uint32() >> 24 & 0x3f) // compressible, not trivially
	}
	layer := testimage.LayerFromEntries(t, testimage.EStargz,
		testimage.Dir("d", 0o755), testimage.File("d/big", 0o644, string(body)), testimage.File("d/small", 0o644, "small"))
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "big", testimage.NewImage(t, v1.Config{}, layer))
	c := testimage.StartCounter(t, reg.Host)
	img, err := lazy.Open(t.Context(), c.Ref("big"), lazy.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	defer img.Close()
	f, err := img.Open("d/big")
	require.NoError(t, err)
	ra := f.(io.ReaderAt)
	const chunk = 4 << 20
	c.Reset()
	for _, tc := range []struct{ off, n int64 }{
		{chunk - 1, 2}, {chunk - 100, 200}, {2*chunk - 1, 1}, {0, int64(len(body))}, {chunk - 5, chunk + 10}, {int64(len(body)) - 3, 3},
	} {
		buf := make([]byte, tc.n)
		n, err := ra.ReadAt(buf, tc.off)
		require.NoError(t, err, "%+v", tc)
		require.Equal(t, int(tc.n), n)
		require.Equal(t, body[tc.off:tc.off+tc.n], buf, "%+v", tc)
	}
	st := c.Stats()
	assert.LessOrEqual(t, st.BlobRequests, 3, "every chunk is fetched once, neighbours together: %+v", st.Log)
}

// TestConcurrentReads reads every file of an image from many goroutines
// at once, in pieces, as a FUSE server does (run it with -race).
func TestConcurrentReads(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	for _, enc := range []testimage.Encoding{testimage.Zstd, testimage.EStargz} {
		t.Run(enc.String(), func(t *testing.T) {
			img := testimage.EdgeSpec().Image(t, enc)
			reg.Push(t, "edge", img)
			want := testimage.ExtractTree(t, img).WithoutEStargzMeta()
			li, err := lazy.Open(t.Context(), reg.Ref("edge"), lazy.WithCacheDir(t.TempDir()))
			require.NoError(t, err)
			defer li.Close()
			var wg sync.WaitGroup
			for _, p := range want.Paths() {
				n := want[p]
				if !n.Mode.IsRegular() {
					continue
				}
				for worker := range 3 {
					wg.Go(func() {
						f, err := li.Open(p)
						if !assert.NoError(t, err) {
							return
						}
						defer f.Close()
						ra := f.(io.ReaderAt)
						buf := make([]byte, n.Size)
						const piece = 64 << 10
						// Each worker reads the pieces in another order:
						// forwards, backwards, from the middle.
						count := (n.Size + piece - 1) / piece
						for k := range count {
							i := k
							switch worker {
							case 1:
								i = count - 1 - k
							case 2:
								i = (k + count/2) % count
							}
							end := min((i+1)*piece, n.Size)
							_, err := ra.ReadAt(buf[i*piece:end], i*piece)
							if !assert.NoError(t, err, p) {
								return
							}
						}
						sum := sha256.Sum256(buf)
						assert.Equal(t, n.SHA256, hex.EncodeToString(sum[:]), p)
					})
				}
			}
			wg.Wait()
		})
	}
}

// TestProgress: WithProgress reports the counts while layers download
// and the final ones before Open returns.
func TestProgress(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "edge", testimage.EdgeSpec().Image(t, testimage.Gzip))
	var mu sync.Mutex
	var calls []lazy.Stats
	img, err := lazy.Open(t.Context(), reg.Ref("edge"), lazy.WithCacheDir(t.TempDir()), lazy.WithProgress(func(s lazy.Stats) {
		mu.Lock()
		calls = append(calls, s)
		mu.Unlock()
	}))
	require.NoError(t, err)
	defer img.Close()
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, calls)
	last := calls[len(calls)-1]
	assert.Equal(t, img.Stats(), last)
	var sizes int64
	for _, l := range last.Layers {
		sizes += l.Size
	}
	assert.GreaterOrEqual(t, last.Bytes, sizes, "every gzip layer downloaded")
}

// TestDamagedIndexRecord: a layer's derived index (.idx) that is damaged
// (a flipped byte, or cut short) or a tag record that names no manifest is
// not trusted: the image opens with the same tree, the index rebuilt from
// verified inputs.
func TestDamagedIndexRecord(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	for _, enc := range []testimage.Encoding{testimage.Gzip, testimage.EStargz} {
		for _, damage := range []string{"flip", "truncate", "empty"} {
			t.Run(enc.String()+"/"+damage, func(t *testing.T) {
				img := testimage.EdgeSpec().Image(t, enc)
				reg.Push(t, "edge", img)
				want := testimage.ExtractTree(t, img).WithoutEStargzMeta()
				cache := t.TempDir()
				_, err := openAndWalk(t, reg.Ref("edge"), cache)
				require.NoError(t, err)
				damaged := 0
				require.NoError(t, filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					switch {
					case strings.HasSuffix(p, ".idx"):
						b, err := os.ReadFile(p)
						require.NoError(t, err)
						switch damage {
						case "flip":
							b[len(b)/2] ^= 0x55
						case "truncate":
							b = b[:len(b)/2]
						case "empty":
							b = nil
						}
						require.NoError(t, os.WriteFile(p, b, 0o644))
						damaged++
					case strings.HasSuffix(p, ".tag"):
						require.NoError(t, os.WriteFile(p, []byte("sha256:not-a-digest"), 0o644))
					}
					return nil
				}))
				require.Positive(t, damaged)
				got, err := openAndWalk(t, reg.Ref("edge"), cache)
				require.NoError(t, err)
				requireTreesEqual(t, want, got, "after damaging the index records")
			})
		}
	}
}
