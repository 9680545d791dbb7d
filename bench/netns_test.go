package bench

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

func needNetAdmin(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install iproute2", tool)
		}
	}
}

func netnsNames(t *testing.T) string {
	out, err := exec.Command("ip", "netns", "list").Output()
	require.NoError(t, err)
	return string(out)
}

// A link is a namespace reachable through its veth, shaped by tbf on both
// ends, and gone, veth included, once closed.
func TestLink(t *testing.T) {
	needNetAdmin(t)
	ctx := context.Background()
	l, err := NewLink(ctx)
	require.NoError(t, err)
	defer l.Close()
	assert.Contains(t, netnsNames(t), l.NS)

	require.NoError(t, l.Shape(ctx, "100mbit"))
	host, err := exec.Command("tc", "qdisc", "show", "dev", l.HostIf).Output()
	require.NoError(t, err)
	assert.Contains(t, string(host), "tbf")
	assert.Contains(t, string(host), "100Mbit")
	inside, err := exec.Command("tc", "-n", l.NS, "qdisc", "show", "dev", l.NSIf).Output()
	require.NoError(t, err)
	assert.Contains(t, string(inside), "tbf")

	// Something listening inside is reached from the host at NSIP.
	srv := l.Command(ctx, "sh", "-c", "exec sleep 30")
	require.NoError(t, srv.Start())
	// ip netns exec enters the namespace, then execs the command.
	assert.Eventually(t, func() bool {
		pids, err := exec.Command("ip", "netns", "pids", l.NS).Output()
		return err == nil && strings.TrimSpace(string(pids)) != ""
	}, 5*time.Second, 10*time.Millisecond, "the command runs inside the namespace")
	d := net.Dialer{Timeout: 2 * time.Second}
	_, err = d.Dial("tcp", net.JoinHostPort(l.NSIP, "9"))
	assert.ErrorContains(t, err, "refused", "the address answers (nothing listens on port 9)")

	require.NoError(t, l.Close()) // kills what runs inside
	werr := srv.Wait()
	assert.Error(t, werr, "killed with the namespace")
	assert.NotContains(t, netnsNames(t), l.NS)
	_, err = exec.Command("ip", "link", "show", l.HostIf).Output()
	assert.Error(t, err, "the veth is gone with the namespace")
}

// A namespace left by a run whose process is gone is removed; one of a
// live run is not.
func TestRemoveStaleLinks(t *testing.T) {
	needNetAdmin(t)
	dead := NetnsPrefix + "999999999" // above any pid_max
	require.NoError(t, exec.Command("ip", "netns", "add", dead).Run())
	defer exec.Command("ip", "netns", "del", dead).Run()
	live := NetnsPrefix + "1" // init never exits
	require.NoError(t, exec.Command("ip", "netns", "add", live).Run())
	defer exec.Command("ip", "netns", "del", live).Run()

	removed, err := RemoveStaleLinks(context.Background())
	require.NoError(t, err)
	assert.Contains(t, removed, dead)
	assert.NotContains(t, removed, live)
	names := netnsNames(t)
	assert.NotContains(t, names, dead)
	assert.Contains(t, names, live)
}

// TestRegistryInNamespace: the benchmark's registry serves inside the
// namespace and answers from the host through the veth.
func TestRegistryInNamespace(t *testing.T) {
	needNetAdmin(t)
	if _, err := os.Stat(testimage.DockerRegistryBinary); err != nil {
		t.Skipf("%s not found: install the docker-registry package (apt-get install docker-registry)", testimage.DockerRegistryBinary)
	}
	ctx := context.Background()
	l, err := NewLink(ctx)
	require.NoError(t, err)
	defer l.Close()
	dir := t.TempDir()
	r, err := StartRegistry(ctx, l, filepath.Join(dir, "storage"), dir)
	require.NoError(t, err)
	defer r.Stop()
	resp, err := http.Get("http://" + r.Host + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}
