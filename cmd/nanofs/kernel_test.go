package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/nanofs/nanofs/vm/kernel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func kernelCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// kernelTestFiles returns a real x86-64 ELF standing in for kernel.img and
// a boot.img laid out like Nanos's (stage1 code, boot region record, 55 AA,
// stage2) whose stage1 is the given real-mode code.
func kernelTestFiles(t *testing.T, stage1 []byte) (kernel, boot []byte) {
	t.Helper()
	kernel, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skipf("needs /bin/true as a stand-in kernel ELF: %v", err)
	}
	boot = make([]byte, 512+2*512)
	copy(boot, stage1)
	binary.LittleEndian.PutUint64(boot[0x1AA:], 0x8000)
	binary.LittleEndian.PutUint64(boot[0x1B2:], 2*512)
	binary.LittleEndian.PutUint32(boot[0x1BA:], 12)
	boot[510], boot[511] = 0x55, 0xAA
	return kernel, boot
}

func kernelReleaseServer(t *testing.T, version string) *httptest.Server {
	kernel, boot := kernelTestFiles(t, nil)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		data []byte
	}{{"kernel.img", kernel}, {"boot.img", boot}} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(f.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/latest.txt":
			w.Write([]byte(version + "\n"))
		case "/" + version + "/nanos-release-linux-" + version + ".tar.gz":
			w.Write(buf.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// kernelIsolate points the cache, ops home and kernel variables at empty
// places.
func kernelIsolate(t *testing.T) (cache string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, ".cache"))
	t.Setenv("OPS_HOME", "")
	t.Setenv(kernel.EnvKernel, "")
	t.Setenv(kernel.EnvBoot, "")
	return filepath.Join(home, ".cache", "nanofs", "nanos")
}

func TestKernelFetchAndPath(t *testing.T) {
	cache := kernelIsolate(t)
	srv := kernelReleaseServer(t, "0.1.77")
	t.Setenv(kernel.EnvReleaseURL, srv.URL)

	code, stdout, stderr := kernelCLI(t, "kernel", "fetch")
	require.Equal(t, 0, code, stderr)
	dir := filepath.Join(cache, "0.1.77")
	assert.Equal(t, "NANOFS_KERNEL="+filepath.Join(dir, "kernel.img")+"\nNANOFS_BOOT="+filepath.Join(dir, "boot.img")+"\n", stdout)
	assert.Contains(t, stderr, "Nanos 0.1.77 is in "+dir)

	// path finds the cached release; explicit flags win.
	code, stdout, stderr = kernelCLI(t, "kernel", "path")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, filepath.Join(dir, "kernel.img"))
	assert.Contains(t, stderr, "cache, version 0.1.77")
	code, stdout, stderr = kernelCLI(t, "kernel", "path", "--kernel", "/bin/true")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "NANOFS_KERNEL=/bin/true\nNANOFS_BOOT="+filepath.Join(dir, "boot.img")+"\n", stdout)

	code, _, stderr = kernelCLI(t, "kernel", "fetch", "--version", "0.0.1")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "404")
	code, _, stderr = kernelCLI(t, "kernel", "fetch", "--sha256", "00")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "invalid SHA-256")
}

func TestKernelFetchOffline(t *testing.T) {
	kernelIsolate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Setenv(kernel.EnvReleaseURL, "http://"+ln.Addr().String()+"/")
	require.NoError(t, ln.Close())

	code, stdout, stderr := kernelCLI(t, "kernel", "fetch")
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	for _, hint := range []string{"nanofs: kernel fetch:", "NANOFS_KERNEL=", "NANOFS_BOOT=", "--kernel", "~/.ops/<version>/"} {
		assert.Contains(t, stderr, hint)
	}

	code, _, stderr = kernelCLI(t, "kernel", "path")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no Nanos kernel found")
}
