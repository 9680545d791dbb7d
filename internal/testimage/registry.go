package testimage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DockerRegistryBinary is Debian's build of the CNCF distribution registry
// (package docker-registry).
const DockerRegistryBinary = "/usr/bin/docker-registry"

// Registry is a plain-HTTP registry on a loopback port, stopped when the
// test that started it ends.
type Registry struct {
	Host string // "127.0.0.1:PORT"
	Kind string // "docker-registry" or "in-process"
}

// Ref returns "HOST/REPO", with the tag or digest that repo carries.
func (r *Registry) Ref(repo string) string { return r.Host + "/" + repo }

// reference parses repo ("name", "name:tag" or "name@digest") on r.
func (r *Registry) reference(repo string) (name.Reference, error) {
	return name.ParseReference(r.Ref(repo), name.Insecure, name.WithDefaultTag("latest"))
}

// Push uploads img as repo ("name" or "name:tag", default tag latest) and
// returns the tag reference.
func (r *Registry) Push(t testing.TB, repo string, img v1.Image) name.Reference {
	t.Helper()
	ref, err := r.reference(repo)
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	if err := remote.Write(ref, img, remote.WithContext(pushContext(t))); err != nil {
		t.Fatalf("testimage: pushing %s to %s: %v", ref, r.Kind, err)
	}
	return ref
}

// PushIndex uploads a multi-platform index and all its images as repo.
func (r *Registry) PushIndex(t testing.TB, repo string, idx v1.ImageIndex) name.Reference {
	t.Helper()
	ref, err := r.reference(repo)
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(pushContext(t))); err != nil {
		t.Fatalf("testimage: pushing index %s to %s: %v", ref, r.Kind, err)
	}
	return ref
}

func pushContext(t testing.TB) context.Context {
	if c, ok := t.(interface{ Context() context.Context }); ok {
		return c.Context()
	}
	return context.Background()
}

// StartInProcessRegistry serves go-containerregistry's registry (blobs in
// memory) on httptest. Note: its blob handler understands only
// "Range: bytes=a-b" (both ends given).
func StartInProcessRegistry(t testing.TB) *Registry {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), Kind: "in-process"}
}

// DockerRegistryConfig is a config for Debian's docker-registry
// (distribution): filesystem storage in storageDir, no auth, plain HTTP on
// addr, quiet logs, nothing purged behind the caller's back.
func DockerRegistryConfig(storageDir, addr string) []byte {
	return fmt.Appendf(nil, dockerRegistryConfig, storageDir, addr)
}

const dockerRegistryConfig = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: nanofs-test-secret
`

// StartDockerRegistry runs Debian's docker-registry with a config written
// for this test (storage in a temp dir) on a free loopback port and stops
// it when the test ends. It skips when the package is not installed.
func StartDockerRegistry(t testing.TB) *Registry {
	t.Helper()
	if _, err := os.Stat(DockerRegistryBinary); err != nil {
		t.Skipf("testimage: %s not found: install the docker-registry package (apt-get install docker-registry)", DockerRegistryBinary)
	}
	dir := t.TempDir()
	var lastErr error
	// A port found free can be taken before the registry binds it; retry.
	for range 3 {
		r, err := startDockerRegistry(t, dir)
		if err == nil {
			return r
		}
		lastErr = err
	}
	t.Fatalf("testimage: starting docker-registry: %v", lastErr)
	return nil
}

func startDockerRegistry(t testing.TB, dir string) (*Registry, error) {
	addr, err := pickLoopbackAddr()
	if err != nil {
		return nil, err
	}
	storage := filepath.Join(dir, "storage")
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, DockerRegistryConfig(storage, addr), 0o644); err != nil {
		return nil, err
	}
	out := &registryLog{}
	cmd := exec.Command(DockerRegistryBinary, "serve", cfg)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("docker-registry exited (%v): %s", err, out.String())
		default:
		}
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("docker-registry on %s did not answer /v2/ within 30s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() && out.Len() > 0 {
			t.Logf("docker-registry output:\n%s", out.String())
		}
	})
	return &Registry{Host: addr, Kind: "docker-registry"}, nil
}

// pickLoopbackAddr returns a 127.0.0.1 address whose port was free a
// moment ago.
func pickLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type registryLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *registryLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		return len(p), nil // keep the first MiB; enough to tell what went wrong
	}
	return b.buf.Write(p)
}

func (b *registryLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *registryLog) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
