package kernel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type tarEntry struct {
	name string
	body []byte
	typ  byte
}

// releaseArchive builds a .tar.gz laid out like a Nanos release: files at
// the top level (img, boot.img, klibs/...).
func releaseArchive(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body)), ModTime: time.Unix(0, 0)}
		if typ == tar.TypeDir {
			hdr.Mode, hdr.Size = 0o755, 0
		}
		if typ == tar.TypeSymlink {
			hdr.Linkname, hdr.Size = string(e.body), 0
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if typ == tar.TypeReg {
			_, err := tw.Write(e.body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// goodRelease returns the entries of a valid x86-64 release.
func goodRelease(t *testing.T) []tarEntry {
	kernel, err := os.ReadFile(testELF(t))
	require.NoError(t, err)
	boot, err := os.ReadFile(writeBootImage(t, t.TempDir(), probeStage1, 3))
	require.NoError(t, err)
	return []tarEntry{
		{name: "./", typ: tar.TypeDir},
		{name: "./kernel.img", body: kernel},
		{name: "./boot.img", body: boot},
		{name: "./klibs/", typ: tar.TypeDir},
		{name: "./klibs/ntp", body: []byte("ntp klib")},
		{name: "./mkfs", body: []byte("tool")},
	}
}

// releaseServer serves <base>latest.txt and one release archive, counting
// archive downloads.
type releaseServer struct {
	*httptest.Server
	version   string
	archive   []byte
	downloads atomic.Int32
}

func newReleaseServer(t *testing.T, version string, archive []byte) *releaseServer {
	s := &releaseServer{version: version, archive: archive}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/nanos/release/latest.txt":
			w.Write([]byte(s.version + "\n"))
		case "/nanos/release/" + s.version + "/nanos-release-linux-" + s.version + ".tar.gz":
			s.downloads.Add(1)
			w.Write(s.archive)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *releaseServer) base() string { return s.URL + "/nanos/release/" }

func TestFetch(t *testing.T) {
	archive := releaseArchive(t, goodRelease(t)...)
	srv := newReleaseServer(t, "0.1.99", archive)
	cache := t.TempDir()
	var progressed int64
	opts := []KernelOption{WithReleaseURL(srv.base()), WithCacheDir(cache), WithArch("amd64"),
		WithProgress(func(done, total int64) { progressed = done })}

	k, err := Fetch(context.Background(), opts...)
	require.NoError(t, err)
	dir := filepath.Join(cache, "0.1.99")
	assert.Equal(t, Kernel{
		Kernel: filepath.Join(dir, KernelFile), Boot: filepath.Join(dir, BootFile),
		KlibDir: filepath.Join(dir, "klibs"), Version: "0.1.99", Source: "cache",
	}, k)
	assert.EqualValues(t, len(archive), progressed)
	b, err := os.ReadFile(filepath.Join(dir, "klibs", "ntp"))
	require.NoError(t, err)
	assert.Equal(t, "ntp klib", string(b))
	meta, err := os.ReadFile(filepath.Join(dir, releaseMeta))
	require.NoError(t, err)
	sum := sha256.Sum256(archive)
	assert.Contains(t, string(meta), hex.EncodeToString(sum[:]))
	assert.Contains(t, string(meta), srv.base()+"0.1.99/nanos-release-linux-0.1.99.tar.gz")
	ents, err := os.ReadDir(cache)
	require.NoError(t, err)
	require.Len(t, ents, 1, "no temporary directory left")

	// FindKernel now finds it in the cache.
	found, err := FindKernel(WithCacheDir(cache), WithOpsHome(t.TempDir()), envOf(nil), WithArch("amd64"))
	require.NoError(t, err)
	assert.Equal(t, k, found)

	// Cached: no second download, unless forced.
	_, err = Fetch(context.Background(), append(opts, WithVersion("0.1.99"))...)
	require.NoError(t, err)
	assert.EqualValues(t, 1, srv.downloads.Load())
	_, err = Fetch(context.Background(), append(opts, WithForce())...)
	require.NoError(t, err)
	assert.EqualValues(t, 2, srv.downloads.Load())
	ents, err = os.ReadDir(cache)
	require.NoError(t, err)
	require.Len(t, ents, 1)

	// Checksums: the right one passes, a wrong one caches nothing.
	_, err = Fetch(context.Background(), append(opts, WithForce(), WithSHA256(hex.EncodeToString(sum[:])))...)
	require.NoError(t, err)
	other := t.TempDir()
	_, err = Fetch(context.Background(), WithReleaseURL(srv.base()), WithCacheDir(other), WithArch("amd64"),
		WithSHA256(strings.Repeat("ab", 32)))
	require.ErrorContains(t, err, "SHA-256")
	assertEmptyDir(t, other)
	_, err = Fetch(context.Background(), WithReleaseURL(srv.base()), WithCacheDir(other), WithSHA256("xyz"))
	require.ErrorContains(t, err, "invalid SHA-256")
}

func TestFetchEnvURLAndStage3(t *testing.T) {
	// Old releases name the kernel stage3.img.
	entries := goodRelease(t)
	entries[1].name = "stage3.img"
	srv := newReleaseServer(t, "0.1.5", releaseArchive(t, entries...))
	cache := t.TempDir()
	k, err := Fetch(context.Background(), WithCacheDir(cache), WithArch("amd64"), WithVersion("0.1.5"),
		envOf(map[string]string{EnvReleaseURL: strings.TrimSuffix(srv.base(), "/")}))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "0.1.5", KernelFile), k.Kernel)
}

func TestFetchRejects(t *testing.T) {
	good := goodRelease(t)
	archive := releaseArchive(t, good...)
	corrupt := bytes.Clone(archive)
	corrupt[len(corrupt)-12] ^= 0xff // inside the deflate stream's tail / CRC

	tests := []struct {
		name    string
		archive []byte
		err     string
	}{
		{"not gzip", []byte("<html>not found</html>"), "not a gzip archive"},
		{"truncated", archive[:len(archive)/2], "corrupt archive"},
		{"corrupt", corrupt, "archive"},
		{"no kernel", releaseArchive(t, good[2:]...), "holds no kernel.img"},
		{"no boot", releaseArchive(t, good[:2]...), "no boot.img"},
		{"kernel not ELF", releaseArchive(t, tarEntry{name: "kernel.img", body: []byte("text")}, good[2]), "not an ELF"},
		{"escaping path", releaseArchive(t, append(good, tarEntry{name: "../../evil", body: []byte("x")})...), "outside the release directory"},
		{"absolute path", releaseArchive(t, append(good, tarEntry{name: "/etc/evil", body: []byte("x")})...), "outside the release directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newReleaseServer(t, "0.2.0", tt.archive)
			cache := t.TempDir()
			_, err := Fetch(context.Background(), WithReleaseURL(srv.base()), WithCacheDir(cache), WithArch("amd64"))
			require.ErrorContains(t, err, tt.err)
			assertEmptyDir(t, cache)
		})
	}

	t.Run("symlinks are not extracted", func(t *testing.T) {
		srv := newReleaseServer(t, "0.2.1", releaseArchive(t, append(good, tarEntry{name: "link", body: []byte("/etc/passwd"), typ: tar.TypeSymlink})...))
		cache := t.TempDir()
		_, err := Fetch(context.Background(), WithReleaseURL(srv.base()), WithCacheDir(cache), WithArch("amd64"))
		require.NoError(t, err)
		_, err = os.Lstat(filepath.Join(cache, "0.2.1", "link"))
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

func TestFetchWithoutNetwork(t *testing.T) {
	// A release that does not exist, and a host that does not answer: both
	// fail at once and say how to supply the files instead.
	srv := newReleaseServer(t, "0.1.99", nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + ln.Addr().String() + "/"
	require.NoError(t, ln.Close())

	for name, opts := range map[string][]KernelOption{
		"404":         {WithReleaseURL(srv.base()), WithVersion("9.9.9")},
		"unreachable": {WithReleaseURL(closed)},
		"bad latest":  {WithReleaseURL(srv.URL + "/")},
	} {
		t.Run(name, func(t *testing.T) {
			cache := t.TempDir()
			start := time.Now()
			_, err := Fetch(context.Background(), append(opts, WithCacheDir(cache), WithArch("amd64"))...)
			require.Error(t, err)
			assert.Less(t, time.Since(start), 10*time.Second)
			for _, hint := range []string{EnvKernel, EnvBoot, FilesAsOptions, "ops"} {
				assert.Contains(t, err.Error(), hint)
			}
			assertEmptyDir(t, cache)
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Fetch(ctx, WithReleaseURL(srv.base()), WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, context.Canceled)
}

func TestReleaseURL(t *testing.T) {
	assert.Equal(t, DefaultReleaseURL+"0.1.52/nanos-release-linux-0.1.52.tar.gz", ReleaseURL(DefaultReleaseURL, "0.1.52", "amd64"))
	assert.Equal(t, "http://m/r/0.1.52/nanos-release-linux-0.1.52-virt.tar.gz", ReleaseURL("http://m/r", "0.1.52", "arm64"))
}

func FuzzExtractRelease(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "a/b", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})
	tw.Write([]byte("x"))
	tw.WriteHeader(&tar.Header{Name: "../c", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.Close()
	zw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		_ = extractRelease(bytes.NewReader(data), dir)
		// Whatever happens, nothing lands outside dir (it would have to
		// be under its parent, which holds only dir).
		ents, err := os.ReadDir(filepath.Dir(dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != filepath.Base(dir) {
				t.Fatalf("extraction created %s outside the release directory", e.Name())
			}
		}
	})
}
