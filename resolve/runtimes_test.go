package resolve

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

func runtimesFS(t *testing.T) fstest.MapFS {
	fx := testimage.CFixtures(t)
	static, err := os.ReadFile(fx.HostPath(fx.Static))
	require.NoError(t, err)
	prog := &fstest.MapFile{Mode: 0o755, Data: static}
	return fstest.MapFS{
		"usr/bin/python3.11":                                                   prog,
		"usr/bin/python3":                                                      link("python3.11"),
		"usr/lib/python3.11/os.py":                                             file("import sys\n", 0o644),
		"usr/lib/python3.11/json/__init__.py":                                  file("x = 1\n", 0o644),
		"usr/lib/python3.11/__pycache__/os.cpython-311.pyc":                    file("bytecode311", 0o644),
		"usr/lib/python3.11/__pycache__/os.cpython-39.pyc":                     file("bytecode39", 0o644),
		"usr/lib/python3.11/test/test_os.py":                                   file("tests\n", 0o644),
		"usr/lib/python3.11/idlelib/idle.py":                                   file("ide\n", 0o644),
		"usr/lib/python3.11/config-3.11-x86_64-linux-gnu/libpython3.11.a":      file("static lib", 0o644),
		"usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so": file("not really ELF", 0o644),
		"usr/lib/python3/dist-packages/six.py":                                 file("six\n", 0o644),
		"usr/lib/python3/dist-packages/pkg/tests/t.py":                         file("tests\n", 0o644),
		"srv/app/main.py":                                                      file("import helper\n", 0o644),
		"srv/app/helper.py":                                                    file("x = 2\n", 0o644),

		"usr/local/bin/node":                              prog,
		"usr/local/bin/cowsay":                            link("../lib/node_modules/cowsay/cli.js"),
		"usr/local/lib/node_modules/cowsay/cli.js":        file("#!/usr/bin/env node\nrequire('yargs')\n", 0o755),
		"usr/local/lib/node_modules/cowsay/package.json":  file(`{"name": "cowsay", "dependencies": {"yargs": "^17", "@scope/util": "1"}}`, 0o644),
		"usr/local/lib/node_modules/cowsay/README.md":     file("docs\n", 0o644),
		"usr/local/lib/node_modules/yargs/index.js":       file("module.exports = 1\n", 0o644),
		"usr/local/lib/node_modules/yargs/package.json":   file(`{"name": "yargs"}`, 0o644),
		"usr/local/lib/node_modules/yargs/test/t.js":      file("tests\n", 0o644),
		"usr/local/lib/node_modules/@scope/util/index.js": file("module.exports = 2\n", 0o644),
		"usr/local/lib/node_modules/unrelated/index.js":   file("module.exports = 3\n", 0o644),
		"usr/bin/env": prog,
	}
}

func TestRuntimeRules(t *testing.T) {
	r := NewResolver(runtimesFS(t))
	tests := []struct {
		name    string
		cfg     Config
		want    []string // files in the plan
		notWant []string
		rules   []string
	}{
		{
			name: "python -c: stdlib, lib-dynload, dist-packages",
			cfg:  Config{Cmd: []string{"python3", "-c", "import json"}},
			want: []string{"/usr/lib/python3.11/os.py", "/usr/lib/python3.11/json/__init__.py",
				"/usr/lib/python3.11/__pycache__/os.cpython-311.pyc", "/usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so",
				"/usr/lib/python3/dist-packages/six.py"},
			notWant: []string{"/usr/lib/python3.11/__pycache__/os.cpython-39.pyc", "/usr/lib/python3.11/test/test_os.py",
				"/usr/lib/python3.11/idlelib/idle.py", "/usr/lib/python3.11/config-3.11-x86_64-linux-gnu/libpython3.11.a",
				"/usr/lib/python3/dist-packages/pkg/tests/t.py", "/srv/app/main.py"},
			rules: []string{"python", "python"},
		},
		{
			name:  "python script: its directory too",
			cfg:   Config{Cmd: []string{"python3", "-u", "main.py"}, WorkingDir: "/srv/app"},
			want:  []string{"/srv/app/main.py", "/srv/app/helper.py", "/usr/lib/python3.11/os.py"},
			rules: []string{"python", "python", "python"},
		},
		{
			name: "npm-installed command brings its package and dependencies",
			cfg:  Config{Cmd: []string{"cowsay", "moo"}},
			want: []string{"/usr/local/lib/node_modules/cowsay/cli.js", "/usr/local/lib/node_modules/cowsay/package.json",
				"/usr/local/lib/node_modules/yargs/index.js", "/usr/local/lib/node_modules/@scope/util/index.js"},
			notWant: []string{"/usr/local/lib/node_modules/cowsay/README.md", "/usr/local/lib/node_modules/yargs/test/t.js",
				"/usr/local/lib/node_modules/unrelated/index.js"},
			rules: []string{"node", "node", "node"},
		},
		{
			name:    "other programs: no rule",
			cfg:     Config{Cmd: []string{"node", "-e", "1"}},
			notWant: []string{"/usr/lib/python3.11/os.py", "/usr/local/lib/node_modules/yargs/index.js"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := r.Resolve(tt.cfg)
			require.NoError(t, err)
			for _, p := range tt.want {
				_, ok := plan.Lookup(p)
				assert.True(t, ok, "%s in the plan", p)
			}
			for _, p := range tt.notWant {
				_, ok := plan.Lookup(p)
				assert.False(t, ok, "%s left out", p)
			}
			var rules []string
			for _, u := range plan.Runtimes {
				rules = append(rules, u.Rule)
				assert.Positive(t, u.Files, u.Reason)
				assert.Positive(t, u.Bytes, u.Reason)
			}
			assert.Equal(t, tt.rules, rules)
		})
	}
}

func TestNodePackageOf(t *testing.T) {
	for file, want := range map[string][2]string{
		"/usr/lib/node_modules/npm/bin/npm-cli.js":  {"/usr/lib/node_modules", "npm"},
		"/app/node_modules/@scope/pkg/index.js":     {"/app/node_modules", "@scope/pkg"},
		"/a/node_modules/x/node_modules/y/lib/z.js": {"/a/node_modules/x/node_modules", "y"},
		"/app/server.js":             {"", ""},
		"/app/node_modules/loose.js": {"", ""},
	} {
		modules, pkg, ok := nodePackageOf(file)
		assert.Equal(t, want[0] != "", ok, file)
		assert.Equal(t, want, [2]string{modules, pkg}, file)
	}
}

// TestRuntimeTree: the tree output sums each runtime rule up in one line
// instead of listing its files, and shows the wrapper.
func TestRuntimeTree(t *testing.T) {
	plan, err := Resolve(runtimesFS(t), Config{Cmd: []string{"python3", "-c", "1"}})
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, plan.WriteTree(&b))
	assert.Contains(t, b.String(), "/usr/lib/python3.11/ (python runtime: Python 3.11 standard library and lib-dynload; ")
	assert.NotContains(t, b.String(), "/usr/lib/python3.11/os.py")

	plan, err = Resolve(wrapperFS(t), Config{Entrypoint: []string{"node-entrypoint.sh"}, Cmd: []string{"node"}})
	require.NoError(t, err)
	b.Reset()
	require.NoError(t, plan.WriteTree(&b))
	assert.Contains(t, b.String(), "/usr/local/bin/node-entrypoint.sh (entrypoint wrapper, evaluated: execs node)\n")
}
