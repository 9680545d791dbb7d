package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nanofs/nanofs/internal/testimage"
)

// registryPort is where the registry listens inside the namespace; the
// namespace is the benchmark's own, so the port is always free.
const registryPort = "5000"

// Registry is a docker-registry process serving inside a Link's namespace.
type Registry struct {
	Host string // "NSIP:5000", reached through the veth

	cmd    *exec.Cmd
	exited chan struct{}
	log    *capped
}

// StartRegistry runs docker-registry inside l's namespace with its storage
// in storageDir (created if needed) and waits until it answers /v2/.
func StartRegistry(ctx context.Context, l *Link, storageDir, workDir string) (*Registry, error) {
	if _, err := os.Stat(testimage.DockerRegistryBinary); err != nil {
		return nil, fmt.Errorf("%s not found: install the docker-registry package", testimage.DockerRegistryBinary)
	}
	if err := os.MkdirAll(storageDir, 0o755); err != nil {
		return nil, err
	}
	host := net.JoinHostPort(l.NSIP, registryPort)
	cfg := filepath.Join(workDir, "registry.yml")
	if err := os.WriteFile(cfg, testimage.DockerRegistryConfig(storageDir, host), 0o644); err != nil {
		return nil, err
	}
	r := &Registry{Host: host, exited: make(chan struct{}), log: &capped{}}
	// Not ctx: the registry lives until Stop, whatever the caller's
	// context; Pdeathsig still ends it with this process.
	r.cmd = l.Command(context.Background(), testimage.DockerRegistryBinary, "serve", cfg)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting docker-registry: %w", err)
	}
	go func() { r.cmd.Wait(); close(r.exited) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-r.exited:
			return nil, fmt.Errorf("docker-registry exited: %s", r.log.String())
		case <-ctx.Done():
			r.Stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("docker-registry on %s did not answer /v2/ within 30s: %s", host, r.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the registry (SIGTERM, then SIGKILL after 10 s).
func (r *Registry) Stop() {
	if r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

// Log returns the start of what the registry printed.
func (r *Registry) Log() string { return r.log.String() }

// capped keeps the first MiB written to it: enough to tell what went
// wrong, bounded however chatty the writer.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := 1<<20 - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
