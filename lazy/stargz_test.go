package lazy

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy/internal/overlay"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// elfClosure returns a program and every library it loads (DT_NEEDED and
// PT_INTERP, transitively), found in the usual Debian directories of the
// image, each as the path of the regular file (symlinks resolved).
func elfClosure(t testing.TB, img *Image, prog string) []string {
	t.Helper()
	dirs := []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib"}
	var out []string
	seen := map[uint64]bool{}
	queue := []string{strings.TrimPrefix(prog, "/")}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		real := realPath(t, img, p)
		info, err := img.Stat(real)
		require.NoError(t, err)
		ino := info.Sys().(*Stat).Ino()
		if seen[ino] {
			continue
		}
		seen[ino] = true
		out = append(out, real)
		f, err := img.Open(real)
		require.NoError(t, err)
		ef, err := elf.NewFile(f.(io.ReaderAt))
		require.NoError(t, err, real)
		libs, err := ef.ImportedLibraries()
		require.NoError(t, err, real)
		for _, prog := range ef.Progs {
			if prog.Type == elf.PT_INTERP {
				b, err := io.ReadAll(prog.Open())
				require.NoError(t, err)
				queue = append(queue, strings.TrimPrefix(strings.TrimRight(string(b), "\x00"), "/"))
			}
		}
		f.Close()
		for _, lib := range libs {
			found := false
			for _, d := range dirs {
				if _, err := img.Stat(path.Join(d, lib)); err == nil {
					queue = append(queue, path.Join(d, lib))
					found = true
					break
				}
			}
			require.True(t, found, "%s needs %s", real, lib)
		}
	}
	slices.Sort(out)
	return out
}

// realPath resolves every symlink in p.
func realPath(t testing.TB, img *Image, p string) string {
	t.Helper()
	for range overlay.MaxSymlinks {
		dir, base := path.Split(p)
		if dir != "" {
			dir = realPath(t, img, strings.TrimSuffix(dir, "/"))
		}
		p = path.Join(dir, base)
		info, err := img.Lstat(p)
		require.NoError(t, err)
		if info.Mode()&fs.ModeSymlink == 0 {
			return p
		}
		target, err := img.ReadLink(p)
		require.NoError(t, err)
		if strings.HasPrefix(target, "/") {
			p = strings.TrimPrefix(path.Clean(target), "/")
		} else {
			p = path.Join(dir, target)
		}
	}
	t.Fatalf("%s: too many symlinks", p)
	return ""
}

func readAll(t testing.TB, img *Image, names []string) {
	t.Helper()
	for _, name := range names {
		f, err := img.Open(name)
		require.NoError(t, err)
		h := sha256.New()
		_, err = io.Copy(h, f)
		require.NoError(t, err, name)
		f.Close()
	}
}

// lazyTransfer opens an eStargz image through a counting proxy, reads a
// program's ELF closure, and checks what crossed the wire: at most 1.2x
// the compressed size of the files read, plus footers and TOCs at open;
// then the same again from the cache, which must cost no blob request.
func lazyTransfer(t *testing.T, reg *testimage.Registry, repo, prog string) {
	c := testimage.StartCounter(t, reg.Host)
	cache := t.TempDir()
	ctx := context.Background()

	img, err := Open(ctx, c.Ref(repo), WithCacheDir(cache))
	require.NoError(t, err)
	defer img.Close()
	open := c.Stats()
	var tocs int64
	for _, l := range img.Stats().Layers {
		require.True(t, l.Lazy, "layer %s", l.Digest)
		tocs += l.TOCBytes
	}
	config := img.Stats().Bytes - tocs
	assert.LessOrEqual(t, open.BlobBytes, tocs+config, "open fetches footers, TOCs and the config only")

	c.Reset()
	files := elfClosure(t, img, prog)
	readAll(t, img, files)
	read := c.Stats()
	compressed, err := img.MinTransfer(files)
	require.NoError(t, err)
	var sizes int64
	for _, f := range files {
		info, err := img.Stat(f)
		require.NoError(t, err)
		sizes += info.Size()
	}
	ratio := float64(read.BlobBytes) / float64(compressed)
	t.Logf("%s: %d files, %d bytes uncompressed, %d compressed; read them with %d blob requests, %d bytes (%.3fx the compressed size); open: %d requests, %d bytes (TOCs+footers %d, config %d)",
		prog, len(files), sizes, compressed, read.BlobRequests, read.BlobBytes, ratio, open.BlobRequests, open.BlobBytes, tocs, config)
	assert.LessOrEqual(t, ratio, 1.2, "lazy reads fetch at most 1.2x the compressed size of the files")

	// Second run: a new Image on the same cache.
	c.Reset()
	img2, err := Open(ctx, c.Ref(repo), WithCacheDir(cache))
	require.NoError(t, err)
	defer img2.Close()
	readAll(t, img2, elfClosure(t, img2, prog))
	again := c.Stats()
	assert.Zero(t, again.BlobBytes, "second run: no blob bytes")
	assert.Zero(t, again.BlobRequests, "second run: no blob requests")
	assert.Zero(t, img2.Stats().Requests)
}

func TestLazyTransferFixtures(t *testing.T) {
	fx := testimage.CFixtures(t)
	if fx.Dynamic == "" {
		t.Skip("needs gcc for the C fixtures (apt-get install gcc)")
	}
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "fixtures", testimage.CatalogImage(t, testimage.CatalogFixtures, testimage.EStargz))
	lazyTransfer(t, reg, "fixtures", fx.Dynamic)
}

// TestLazyTransferDebianNode is the acceptance measurement on the
// node-like image, against Debian's docker-registry.
func TestLazyTransferDebianNode(t *testing.T) {
	img := testimage.CatalogImage(t, testimage.CatalogDebianNode, testimage.EStargz)
	reg := testimage.StartDockerRegistry(t)
	reg.Push(t, "node", img)
	lazyTransfer(t, reg, "node", "/usr/bin/node")
}

// TestLazyTransferZstdChunked: the same measurement on zstd:chunked
// images (written by testimage with klauspost's zstd): a program's closure
// costs at most 1.2x its compressed bytes.
func TestLazyTransferZstdChunked(t *testing.T) {
	fx := testimage.CFixtures(t)
	if fx.Dynamic == "" {
		t.Skip("needs gcc for the C fixtures (apt-get install gcc)")
	}
	reg := testimage.StartInProcessRegistry(t)
	gz := testimage.CatalogImage(t, testimage.CatalogFixtures, testimage.Gzip)
	reg.Push(t, "fixtures", testimage.ZstdChunkedImage(t, gz, testimage.ZstdChunkedOptions{}))
	lazyTransfer(t, reg, "fixtures", fx.Dynamic)
}

// TestLazyTransferZstdChunkedDebianNode is the acceptance measurement of
// zstd:chunked on the node-like image, against Debian's docker-registry.
func TestLazyTransferZstdChunkedDebianNode(t *testing.T) {
	gz := testimage.CatalogImage(t, testimage.CatalogDebianNode, testimage.Gzip)
	reg := testimage.StartDockerRegistry(t)
	reg.Push(t, "node", testimage.ZstdChunkedImage(t, gz, testimage.ZstdChunkedOptions{}))
	lazyTransfer(t, reg, "node", "/usr/bin/node")
}
