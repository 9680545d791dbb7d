package resolve

import (
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Runtime extras on a real Debian rootfs (nodejs, python3, redis-server).

// overlayFS shows top's paths over bottom's: a test image layer.
type overlayFS struct {
	top    fstest.MapFS
	bottom fs.FS
}

func (o overlayFS) pick(name string) fs.FS {
	if _, err := o.top.Lstat(name); err == nil {
		return o.top
	}
	return o.bottom
}

func (o overlayFS) Open(name string) (fs.File, error) { return o.pick(name).Open(name) }
func (o overlayFS) ReadLink(name string) (string, error) {
	return fs.ReadLink(o.pick(name), name)
}
func (o overlayFS) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(o.pick(name), name) }

func pathsOf(p *Plan, role Role) map[string]string {
	out := map[string]string{}
	for _, o := range p.Objects {
		if o.Role == role {
			out[o.Path] = o.Reason
		}
	}
	return out
}

func TestDebianExtras(t *testing.T) {
	root := testimage.DebianRootfsWith(t, "nodejs", "python3", "redis-server")
	const bundle = "-----BEGIN CERTIFICATE-----\n"
	tls := fstest.MapFS{
		"etc/ssl/certs/ca-certificates.crt": file(bundle, 0o644),
		"etc/ssl/certs/ca.pem":              file(bundle, 0o644),
		"etc/ssl/certs/3513523f.0":          link("ca.pem"),
		"etc/ssl/certs/README":              file("not a certificate", 0o644),
		"etc/ssl/openssl.cnf":               file("# openssl\n", 0o644),
		"usr/lib/ssl/certs":                 link("/etc/ssl/certs"),
		"usr/lib/ssl/openssl.cnf":           link("/etc/ssl/openssl.cnf"),
		"etc/nsswitch.conf":                 file("passwd: files\ngroup: files\nhosts: files mdns4_minimal [NOTFOUND=return] dns\n", 0o644),
	}
	r := NewResolver(overlayFS{top: tls, bottom: os.DirFS(root)})
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

	t.Run("node", func(t *testing.T) {
		plan, err := r.Resolve(Config{Entrypoint: []string{"node"}, Env: env})
		require.NoError(t, err)
		assert.Equal(t, "glibc", plan.Libc)
		runtime := pathsOf(plan, RoleRuntime)
		assert.Contains(t, runtime["/lib/x86_64-linux-gnu/libnss_files.so.2"], `NSS module "files" (hosts, passwd, group)`)
		assert.Contains(t, runtime["/lib/x86_64-linux-gnu/libnss_dns.so.2"], `NSS module "dns" (hosts)`)
		assert.Contains(t, runtime, "/lib/x86_64-linux-gnu/libresolv.so.2")
		assert.NotContains(t, runtime, "/lib/x86_64-linux-gnu/libgcc_s.so.1", "libstdc++ already needs it")
		assert.Contains(t, plan.Warnings, "NSS module libnss_mdns4_minimal.so.2 for hosts is not in the image: those lookups will fail")
		for p, kind := range map[string]Kind{
			"/etc/nsswitch.conf":                 KindFile,
			"/etc/ld.so.cache":                   KindFile,
			"/etc/resolv.conf":                   KindGenerated, // never the image's own
			"/etc/passwd":                        KindFile,
			"/etc/group":                         KindFile,
			"/etc/ssl/certs/ca-certificates.crt": KindFile,
			"/usr/lib/ssl/certs":                 KindSymlink, // OpenSSL's default CA path, libcrypto is loaded
			"/etc/ssl/certs/3513523f.0":          KindSymlink,
			"/etc/ssl/certs/ca.pem":              KindFile,
			"/usr/lib/ssl/openssl.cnf":           KindSymlink,
			"/etc/ssl/openssl.cnf":               KindFile,
		} {
			e, ok := plan.Lookup(p)
			if assert.True(t, ok, "%s missing", p) {
				assert.Equal(t, kind, e.Kind, p)
			}
		}
		_, ok := plan.Lookup("/etc/ssl/certs/README")
		assert.False(t, ok)
		for _, e := range plan.Entries {
			assert.NotEmpty(t, e.Reason, e.Path)
		}
	})
	t.Run("python3 gets libgcc_s for pthread_exit", func(t *testing.T) {
		plan, err := r.Resolve(Config{Cmd: []string{"python3"}, Env: env})
		require.NoError(t, err)
		runtime := pathsOf(plan, RoleRuntime)
		assert.Contains(t, runtime["/lib/x86_64-linux-gnu/libgcc_s.so.1"], "thread cancellation, used by /usr/bin/python3 (imports pthread_cancel or pthread_exit)")
		_, ok := plan.Lookup("/usr/lib/ssl/certs")
		assert.True(t, ok, "the Python rule brings lib-dynload's _ssl, which loads libcrypto")
		_, ok = plan.Lookup("/etc/ssl/certs/ca-certificates.crt")
		assert.True(t, ok)
	})
	t.Run("python3 with its extension modules", func(t *testing.T) {
		plan, err := r.Resolve(Config{Cmd: []string{"python3"}, Env: env}, WithInclude("/usr/lib/python3.11/lib-dynload"))
		require.NoError(t, err)
		included := pathsOf(plan, RoleIncluded)
		assert.Contains(t, included, "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so")
		assert.Contains(t, included, "/lib/x86_64-linux-gnu/libssl.so.3", "the modules' own libraries come along")
		e, ok := plan.Lookup("/usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so")
		require.True(t, ok)
		assert.Equal(t, "include pattern /usr/lib/python3.11/lib-dynload", e.Reason)
	})
	t.Run("redis-server", func(t *testing.T) {
		plan, err := r.Resolve(Config{Cmd: []string{"redis-server"}, Env: env})
		require.NoError(t, err)
		libs := map[string]bool{}
		for _, l := range plan.Libraries() {
			libs[l.Path] = true
		}
		assert.True(t, libs["/lib/x86_64-linux-gnu/libjemalloc.so.2"])
		for _, w := range plan.Warnings {
			assert.False(t, strings.Contains(w, "not found"), w)
		}
	})
}
