package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/build"
)

// TestRunLocalScripts is the job: the user's own script, in the
// current directory and not in the image, run by the image's runtime.
// Each script is named as an argument after --, so it is added at the
// same path under the image's WorkingDir (/app). Without a kernel the
// disk is built without bootloader and checked to hold the script where
// the program will look for it.
func TestRunLocalScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Debian-node image; skipped with -short")
	}
	reg := testimage.StartDockerRegistry(t)
	ref := reg.Push(t, "local/node", testimage.DebianNodeSpec(t).Image(t, testimage.EStargz)).String()
	cache := t.TempDir()
	work := t.TempDir()
	scripts := map[string]string{
		"hi.js":       "console.log(\"hi from Nanos!\");\n",
		"hi.py":       "import sys\nprint('hi from Python', sys.version_info[0], 'on Nanos!')\n",
		"lib/util.js": "exports.greet = () => 'hi from a local module';\n",
		"main.js":     "console.log(require('./lib/util.js').greet(), process.cwd());\n",
	}
	for name, body := range scripts {
		require.NoError(t, os.MkdirAll(filepath.Join(work, filepath.Dir(name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(work, name), []byte(body), 0o644))
	}
	t.Chdir(work)

	for _, tc := range []struct {
		name   string
		flags  []string // before --
		args   []string // after --
		added  string   // the summary line
		inDisk map[string]string
		want   string // console output
	}{
		{
			name:   "node script",
			flags:  []string{"--entry", "node"},
			args:   []string{"hi.js"},
			added:  "added hi.js (31 B) from the working directory",
			inDisk: map[string]string{"app/hi.js": scripts["hi.js"]},
			want:   "hi from Nanos!",
		},
		{
			name:   "python script",
			flags:  []string{"--entry", "python3", "--include", "/usr/lib/python3.11"},
			args:   []string{"hi.py"},
			added:  "added hi.py (",
			inDisk: map[string]string{"app/hi.py": scripts["hi.py"]},
			want:   "hi from Python 3 on Nanos!",
		},
		{
			name:  "node with --add and --workdir",
			flags: []string{"--entry", "node", "--add", "lib:/srv/lib", "--workdir", "/srv"},
			args:  []string{"main.js"},
			added: "added main.js (",
			inDisk: map[string]string{
				"srv/main.js": scripts["main.js"], "srv/lib/util.js": scripts["lib/util.js"],
			},
			want: "hi from a local module /srv",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := filepath.Join(t.TempDir(), "disk.img")
			var stdout, stderr bytes.Buffer
			args := append([]string{"build", "--json", "--cache-dir", cache, "--no-bootloader", "-o", disk, ref}, tc.flags...)
			for _, a := range tc.args {
				args = append(args, "-a", a)
			}
			code := run(context.Background(), args, &stdout, &stderr)
			require.Equal(t, 0, code, stderr.String())
			assert.Contains(t, stderr.String(), tc.added)
			var sum build.Summary
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &sum))
			require.NotEmpty(t, sum.Added)

			fsys := openDisk(t, disk)
			for name, body := range tc.inDisk {
				got, err := fs.ReadFile(fsys, name)
				require.NoError(t, err, name)
				assert.Equal(t, body, string(got), name)
			}
			m := fsys.Manifest()
			assert.Equal(t, tfs.Strings(append([]string{tc.flags[1]}, tc.args...)...), m["arguments"])
			wantCwd := "/app"
			for i, f := range tc.flags {
				if f == "--workdir" {
					wantCwd = tc.flags[i+1]
				}
			}
			assert.Equal(t, tfs.String(wantCwd), m["cwd"])

			if len(kernelFlags()) != 0 {
				t.Skip("the disk holds the script; running it needs a Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT to kernel.img and boot.img (see `nanofs kernel fetch`)")
			}
			stdout.Reset()
			stderr.Reset()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			args = append([]string{"run", "--memory", "1G", "--cache-dir", cache, ref}, tc.flags...)
			args = append(append(args, "--"), tc.args...)
			code = run(ctx, args, &stdout, &stderr)
			t.Logf("nanofs %v\nconsole:\n%s", args, stdout.String())
			assert.Equal(t, 0, code, stderr.String())
			assert.Contains(t, stderr.String(), tc.added)
			assert.Contains(t, stdout.String(), tc.want)
		})
	}
}
