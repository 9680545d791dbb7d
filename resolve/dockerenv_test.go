package resolve

import (
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// runtimeFS is a static program in an image with a passwd file and the
// build machine's resolver configuration, as Debian's debootstrap leaves it.
func runtimeFS(t *testing.T) fstest.MapFS {
	fx := testimage.CFixtures(t)
	static, err := os.ReadFile(fx.HostPath(fx.Static))
	require.NoError(t, err)
	return fstest.MapFS{
		"usr/bin/app":     &fstest.MapFile{Mode: 0o755, Data: static},
		"etc/passwd":      file("root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0o644),
		"etc/resolv.conf": file("nameserver 10.255.255.53\n", 0o644),
		"etc/hosts":       file("127.0.0.1 builder\n", 0o644),
		"srv/resolv.conf": file("nameserver 192.0.2.1\n", 0o644),
	}
}

// TestDockerEnv: the environment is never empty (Nanos halts on a program
// reading it otherwise), and holds what Docker gives a container.
func TestDockerEnv(t *testing.T) {
	r := NewResolver(runtimeFS(t))
	tests := []struct {
		name string
		cfg  Config
		opts []Option
		want []string
	}{
		{name: "no Env at all", cfg: Config{Cmd: []string{"/usr/bin/app"}},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=nanos", "HOME=/root"}},
		{name: "image PATH kept", cfg: Config{Cmd: []string{"app"}, Env: []string{"PATH=/usr/bin", "A=1"}},
			want: []string{"PATH=/usr/bin", "A=1", "HOSTNAME=nanos", "HOME=/root"}},
		{name: "user by name", cfg: Config{Cmd: []string{"/usr/bin/app"}, User: "node"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=nanos", "HOME=/home/node"}},
		{name: "user by uid and group", cfg: Config{Cmd: []string{"/usr/bin/app"}, User: "1000:1000"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=nanos", "HOME=/home/node"}},
		{name: "unknown user", cfg: Config{Cmd: []string{"/usr/bin/app"}, User: "4242"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=nanos", "HOME=/"}},
		{name: "caller's variables win", cfg: Config{Cmd: []string{"/usr/bin/app"}},
			opts: []Option{WithEnv("HOME=/srv", "HOSTNAME=web"), WithHostname("box")},
			want: []string{"HOME=/srv", "HOSTNAME=web", "PATH=" + DefaultPath}},
		{name: "host name option", cfg: Config{Cmd: []string{"/usr/bin/app"}}, opts: []Option{WithHostname("box")},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=box", "HOME=/root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := r.Resolve(tt.cfg, append(tt.opts, WithoutExtras())...)
			require.NoError(t, err)
			assert.Equal(t, tt.want, plan.Env)
		})
	}

	t.Run("no passwd", func(t *testing.T) {
		fsys := runtimeFS(t)
		delete(fsys, "etc/passwd")
		plan, err := Resolve(fsys, Config{Cmd: []string{"/usr/bin/app"}}, WithoutExtras())
		require.NoError(t, err)
		assert.Contains(t, plan.Env, "HOME=/root")
	})
}

func TestPasswdHome(t *testing.T) {
	data := []byte("# comment\nbad line\nroot:x:0:0:root:/root:/bin/sh\napp:x:10:10::relative:/bin/sh\n")
	tests := []struct {
		user, home string
		ok         bool
	}{
		{"root", "/root", true},
		{"0", "/root", true},
		{"app", "", false}, // a relative home is no home
		{"nobody", "", false},
	}
	for _, tt := range tests {
		home, ok := passwdHome(data, tt.user)
		assert.Equal(t, tt.ok, ok, tt.user)
		assert.Equal(t, tt.home, home, tt.user)
	}
}

// TestRuntimeFiles: /etc/resolv.conf, /etc/hosts and /etc/hostname are
// always generated, replacing the image's copies, unless included on
// purpose.
func TestRuntimeFiles(t *testing.T) {
	fsys := runtimeFS(t)
	plan, err := Resolve(fsys, Config{Cmd: []string{"/usr/bin/app"}}, WithNameservers("10.0.2.2"), WithHostname("box"))
	require.NoError(t, err)
	want := map[string]string{
		"/etc/resolv.conf": "nameserver 10.0.2.2\n",
		"/etc/hosts":       "127.0.0.1\tlocalhost box\n",
		"/etc/hostname":    "box\n",
	}
	for p, content := range want {
		e, ok := plan.Lookup(p)
		require.True(t, ok, p)
		assert.Equal(t, KindGenerated, e.Kind, p)
		assert.Contains(t, string(e.Content), content, p)
		assert.NotContains(t, string(e.Content), "10.255.255.53", p)
	}
	assert.Equal(t, []GeneratedFile{
		{Path: "/etc/hostname"}, {Path: "/etc/hosts", Replaced: true}, {Path: "/etc/resolv.conf", Replaced: true},
	}, plan.Generated)
	e, _ := plan.Lookup("/etc/resolv.conf")
	assert.Contains(t, e.Reason, "replacing the image's copy")

	// A file included on purpose is kept.
	plan, err = Resolve(fsys, Config{Cmd: []string{"/usr/bin/app"}}, WithInclude("/etc/resolv.conf"))
	require.NoError(t, err)
	e, ok := plan.Lookup("/etc/resolv.conf")
	require.True(t, ok)
	assert.Equal(t, KindFile, e.Kind)
	assert.Len(t, plan.Generated, 2)

	// So is an added one (--add, an ops config's Files).
	plan, err = Resolve(fsys, Config{Cmd: []string{"/usr/bin/app"}}, WithAdded(Added{Path: "/etc/hosts", Src: "/host/hosts"}))
	require.NoError(t, err)
	e, ok = plan.Lookup("/etc/hosts")
	require.True(t, ok)
	assert.Equal(t, KindFile, e.Kind)
	assert.Equal(t, "added from /host/hosts", e.Reason)
	assert.Len(t, plan.Generated, 2)

	// Without extras nothing is generated.
	plan, err = Resolve(fsys, Config{Cmd: []string{"/usr/bin/app"}}, WithoutExtras())
	require.NoError(t, err)
	assert.Empty(t, plan.Generated)
	_, ok = plan.Lookup("/etc/hosts")
	assert.False(t, ok)
}
