package resolve

import (
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// Entrypoint wrappers in the shapes of the official images'
// docker-entrypoint.sh (node, redis, postgres, nginx, httpd, mongo).
const (
	nodeWrapper = `#!/bin/sh
set -e

# Run command with node if the first argument contains a "-" or is not a system command. The last
# part inside the "{}" is a workaround for the following bug in ash/dash:
# https://bugs.debian.org/cgi-bin/bugreport.cgi?bug=874264
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
`
	redisWrapper = `#!/bin/sh
set -e

# first arg is ` + "`-f` or `--some-option`" + `
# or first arg is ` + "`something.conf`" + `
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# allow the container to be started with ` + "`--user`" + `
if [ "$1" = 'redis-server' -a "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec gosu redis "$0" "$@"
fi

# set an appropriate umask (if one isn't set already)
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

exec "$@"
`
	nginxWrapper = `#!/bin/sh
# vim:sw=4:ts=4:et

set -e

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    if /usr/bin/find "/docker-entrypoint.d/" -mindepth 1 -maxdepth 1 -type f -print -quit 2>/dev/null | read v; then
        entrypoint_log "$0: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"
    fi
fi

exec "$@"
`
	hooksWrapper = `#!/bin/bash
set -Eeo pipefail

docker_process_init_files() {
	local f
	for f; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					echo "$0: running $f"
				else
					echo "$0: sourcing $f"
					. "$f"
				fi
				;;
			*) echo "$0: ignoring $f" ;;
		esac
	done
}

_main() {
	if [ "${1:0:1}" = '-' ]; then
		set -- mongod "$@"
	fi
	if [ "$1" = 'mongod' ]; then
		mkdir -p /data/db
		docker_process_init_files /docker-entrypoint.d/*
	fi
	exec "$@"
}

_main "$@"
`
	httpdWrapper = `#!/bin/sh
set -e
# Apache gets grumpy about PID files pre-existing
rm -f /usr/local/apache2/logs/httpd.pid
exec httpd -DFOREGROUND "$@"
`
	daemonWrapper = `#!/bin/sh
set -e
if [ "$1" = 'postgres' ]; then
	initdb --username=postgres
fi
exec "$@"
`
	substWrapper = `#!/bin/sh
VERSION=$(myapp --version)
exec myapp --tag "$VERSION" "$@"
`
	writeWrapper = `#!/bin/sh
echo "listen 80" > /etc/app.conf
exec "$@"
`
)

func wrapperFS(t testing.TB) fstest.MapFS {
	fx := testimage.CFixtures(t)
	static, err := os.ReadFile(fx.HostPath(fx.Static))
	require.NoError(t, err)
	prog := &fstest.MapFile{Mode: 0o755, Data: static}
	return fstest.MapFS{
		"bin":                                  link("usr/bin"),
		"usr/bin/sh":                           link("dash"),
		"usr/bin/dash":                         prog,
		"usr/bin/bash":                         prog,
		"usr/local/bin/node":                   prog,
		"usr/local/bin/redis-server":           prog,
		"usr/local/bin/gosu":                   prog,
		"usr/sbin/nginx":                       prog,
		"usr/local/bin/mongod":                 prog,
		"usr/local/apache2/bin/httpd":          prog,
		"usr/local/bin/myapp":                  prog,
		"app/hi.js":                            file("console.log('hi')\n", 0o644),
		"etc/passwd":                           file("root:x:0:0:root:/root:/bin/sh\nredis:x:999:999::/home/redis:/bin/sh\n", 0o644),
		"docker-entrypoint.d/10-env.sh":        file("export MONGO_HOOKED=yes\n", 0o644),
		"docker-entrypoint.d/20-notes.txt":     file("not a script\n", 0o644),
		"usr/local/bin/node-entrypoint.sh":     file(nodeWrapper, 0o755),
		"usr/local/bin/redis-entrypoint.sh":    file(redisWrapper, 0o755),
		"usr/local/bin/nginx-entrypoint.sh":    file(nginxWrapper, 0o755),
		"usr/local/bin/mongo-entrypoint.sh":    file(hooksWrapper, 0o755),
		"usr/local/bin/httpd-foreground":       file(httpdWrapper, 0o755),
		"usr/local/bin/postgres-entrypoint.sh": file(daemonWrapper, 0o755),
		"usr/local/bin/subst-entrypoint.sh":    file(substWrapper, 0o755),
		"usr/local/bin/write-entrypoint.sh":    file(writeWrapper, 0o755),
		"usr/local/bin/no-exec.sh":             file("#!/bin/sh\nset -e\nmyapp --mode \"$@\"\n", 0o755),
	}
}

// TestWrappers evaluates wrapper scripts in the shapes of the official
// images at build time: the final exec's argv is the program.
func TestWrappers(t *testing.T) {
	r := NewResolver(wrapperFS(t))
	env := []string{"PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	tests := []struct {
		name    string
		cfg     Config
		opts    []Option
		program string
		args    []string
		user    string
		effects int
		env     string // a variable the program must get
		dir     string // the working directory the program gets
	}{
		{name: "node: script file goes to node", cfg: Config{Entrypoint: []string{"node-entrypoint.sh"}, Cmd: []string{"node"}, Env: env, WorkingDir: "/app"},
			opts: []Option{WithArgs("hi.js")}, program: "/usr/local/bin/node", args: []string{"node", "hi.js"}},
		{name: "node: default command", cfg: Config{Entrypoint: []string{"node-entrypoint.sh"}, Cmd: []string{"node"}, Env: env},
			program: "/usr/local/bin/node", args: []string{"node"}},
		{name: "node: option goes to node", cfg: Config{Entrypoint: []string{"node-entrypoint.sh"}, Cmd: []string{"node"}, Env: env},
			opts: []Option{WithArgs("-e", "1+1")}, program: "/usr/local/bin/node", args: []string{"node", "-e", "1+1"}},
		{name: "node: a command runs itself", cfg: Config{Entrypoint: []string{"node-entrypoint.sh"}, Cmd: []string{"node"}, Env: env},
			opts: []Option{WithArgs("redis-server", "--port", "1")}, program: "/usr/local/bin/redis-server", args: []string{"redis-server", "--port", "1"}},
		{name: "redis: gosu drop re-runs the script", cfg: Config{Entrypoint: []string{"redis-entrypoint.sh"}, Cmd: []string{"redis-server"}, Env: env},
			program: "/usr/local/bin/redis-server", args: []string{"redis-server"}, user: "redis", effects: 3},
		{name: "redis: option test", cfg: Config{Entrypoint: []string{"redis-entrypoint.sh"}, Cmd: []string{"redis-server"}, Env: env},
			opts: []Option{WithArgs("--appendonly", "yes")}, program: "/usr/local/bin/redis-server", args: []string{"redis-server", "--appendonly", "yes"}, user: "redis", effects: 3},
		{name: "nginx: log function and find hook", cfg: Config{Entrypoint: []string{"/usr/local/bin/nginx-entrypoint.sh"}, Cmd: []string{"nginx", "-g", "daemon off;"}, Env: env},
			program: "/usr/sbin/nginx", args: []string{"nginx", "-g", "daemon off;"}, effects: 1},
		{name: "mongo: bash, *.d hooks sourced", cfg: Config{Entrypoint: []string{"mongo-entrypoint.sh"}, Cmd: []string{"mongod"}, Env: env},
			opts: []Option{WithArgs("--bind_ip_all")}, program: "/usr/local/bin/mongod", args: []string{"mongod", "--bind_ip_all"}, effects: 1, env: "MONGO_HOOKED=yes"},
		{name: "httpd: fixed exec", cfg: Config{Cmd: []string{"httpd-foreground"}, Env: env},
			program: "/usr/local/apache2/bin/httpd", args: []string{"httpd", "-DFOREGROUND"}, effects: 1},
		{name: "shell form CMD", cfg: Config{Cmd: []string{"/bin/sh", "-c", "cd /app && NODE_ENV=production exec node hi.js"}, Env: env},
			program: "/usr/local/bin/node", args: []string{"node", "hi.js"}, env: "NODE_ENV=production", dir: "/app"},
		{name: "shell form without exec", cfg: Config{Cmd: []string{"/bin/sh", "-c", "echo starting; node hi.js --port $PORT"}, Env: append(env, "PORT=8080"), WorkingDir: "/app"},
			program: "/usr/local/bin/node", args: []string{"node", "hi.js", "--port", "8080"}, dir: "/app"},
		{name: "script ending without exec", cfg: Config{Entrypoint: []string{"no-exec.sh"}, Cmd: []string{"x"}, Env: env},
			program: "/usr/local/bin/myapp", args: []string{"myapp", "--mode", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := r.Resolve(tt.cfg, append(tt.opts, WithoutExtras())...)
			require.NoError(t, err)
			assert.Equal(t, tt.program, plan.Program)
			assert.Equal(t, tt.args, plan.Args)
			require.NotNil(t, plan.Wrapper)
			assert.Equal(t, tt.args, plan.Wrapper.Exec)
			assert.Equal(t, tt.user, plan.Wrapper.User)
			assert.Len(t, plan.Wrapper.Effects, tt.effects, "%q", plan.Wrapper.Effects)
			assert.Empty(t, plan.Scripts, "the wrapper does not go on the disk")
			if tt.env != "" {
				assert.Contains(t, plan.Env, tt.env)
			}
			assert.Contains(t, plan.Env, "HOME=/root")
			if tt.dir != "" {
				assert.Equal(t, tt.dir, plan.WorkingDir)
			}
		})
	}
}

// TestWrapperRefused: a wrapper that needs a real process stops the
// build with the script and its line.
func TestWrapperRefused(t *testing.T) {
	r := NewResolver(wrapperFS(t))
	tests := []struct {
		name, script string
		cmd          []string
		line         uint
		msg          string
	}{
		{name: "daemon setup", script: "/usr/local/bin/postgres-entrypoint.sh", cmd: []string{"postgres"}, line: 4, msg: "runs initdb --username=postgres, which needs a real process"},
		{name: "command substitution", script: "/usr/local/bin/subst-entrypoint.sh", cmd: []string{"x"}, line: 2, msg: "runs myapp --version"},
		{name: "writes a file", script: "/usr/local/bin/write-entrypoint.sh", cmd: []string{"myapp"}, msg: "writes /etc/app.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Resolve(Config{Entrypoint: []string{tt.script}, Cmd: tt.cmd}, WithoutExtras())
			var werr *WrapperError
			require.ErrorAs(t, err, &werr)
			assert.Equal(t, tt.script, werr.Script)
			if tt.line > 0 {
				assert.Equal(t, tt.line, werr.Line)
			}
			assert.Contains(t, err.Error(), tt.msg)
			assert.Contains(t, err.Error(), tt.script)
		})
	}
}
