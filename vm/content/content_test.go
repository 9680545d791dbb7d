package content

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/vm/content/hostfs"
	"github.com/nanofs/nanofs/vm/opsconfig"
)

// writeTree writes a host tree (testimage.WriteTree).
var writeTree = testimage.WriteTree

func TestParseAdd(t *testing.T) {
	cwd := t.TempDir()
	writeTree(t, cwd, map[string]string{"hi.js": "x", "sub/a.txt": "a", "dir/": "", "odd:name": "colon"})
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"o.txt": "o"})
	for _, tc := range []struct {
		spec, src, dst, wantErr string
	}{
		{spec: "hi.js", src: "hi.js", dst: "/hi.js"},
		{spec: "./hi.js", src: "hi.js", dst: "/hi.js"},
		{spec: "sub/a.txt", src: "sub/a.txt", dst: "/sub/a.txt"},
		{spec: "dir", src: "dir", dst: "/dir"},
		{spec: filepath.Join(cwd, "sub"), src: "sub", dst: "/sub"},
		{spec: "hi.js:/app/x.js", src: "hi.js", dst: "/app/x.js"},
		{spec: "hi.js:/app/", src: "hi.js", dst: "/app/hi.js"},
		{spec: "dir:/", src: "dir", dst: "/dir"},
		{spec: ".:/app", src: ".", dst: "/app"},
		{spec: filepath.Join(outside, "o.txt") + ":/etc/o.txt", dst: "/etc/o.txt"},
		{spec: "odd:name", src: "odd:name", dst: "/odd:name"},
		{spec: "odd:name:/x", src: "odd:name", dst: "/x"},
		{spec: filepath.Join(outside, "o.txt"), wantErr: "is outside the working directory"},
		{spec: "../x", wantErr: "no such file"},
		{spec: ".", wantErr: "whole working directory"},
		{spec: "missing.js", wantErr: "no such file"},
		{spec: "hi.js:app/x.js", wantErr: "must be an absolute path in the image"},
		{spec: "hi.js:/a/../b", wantErr: `may not hold ".."`},
		{spec: ":/x", wantErr: "no SRC"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			a, _, err := ParseAdd(tc.spec, cwd)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.dst, a.Dst)
			if tc.src != "" {
				assert.Equal(t, filepath.Join(cwd, tc.src), a.Src)
			}
		})
	}
}

func TestAutoAdd(t *testing.T) {
	parent := t.TempDir()
	cwd := filepath.Join(parent, "work")
	writeTree(t, parent, map[string]string{
		"up.js":             "up",
		"work/hi.js":        "hi",
		"work/src/main.py":  "main",
		"work/app.js":       "local app.js",
		"work/-e":           "a file named like an option",
		"work/data/":        "",
		"work/through/../x": "",
	})
	img := fstest.MapFS{
		"app/app.js": {Data: []byte("the image's app.js")},
		"usr/bin/x":  {Data: []byte("x")},
	}
	for _, tc := range []struct {
		name    string
		args    []string
		workdir string
		want    map[string]string // dst -> src relative to cwd
		note    string            // a -v line
	}{
		{name: "file", args: []string{"hi.js"}, workdir: "/app", want: map[string]string{"/app/hi.js": "hi.js"}},
		{name: "dot slash", args: []string{"./hi.js"}, workdir: "/", want: map[string]string{"/hi.js": "hi.js"}},
		{name: "nested path", args: []string{"src/main.py"}, workdir: "/srv", want: map[string]string{"/srv/src/main.py": "src/main.py"}},
		{name: "directory", args: []string{"data"}, workdir: "/app", want: map[string]string{"/app/data": "data"}},
		{name: "options and their values are arguments too", args: []string{"--require", "hi.js", "-e", "1"}, workdir: "/app",
			want: map[string]string{"/app/hi.js": "hi.js"}},
		{name: "not local", args: []string{"server.js", "8080", "", "http://x/y"}, workdir: "/app"},
		{name: "absolute", args: []string{filepath.Join(cwd, "hi.js")}, workdir: "/app"},
		{name: "dot dot", args: []string{"../up.js"}, workdir: "/app", note: "leads out of the working directory"},
		{name: "dot dot inside", args: []string{"src/../hi.js"}, workdir: "/app", note: "leads out of the working directory"},
		{name: "the working directory", args: []string{"."}, workdir: "/app", note: "whole working directory"},
		{name: "already in the image", args: []string{"app.js"}, workdir: "/app", note: "the image already has /app/app.js"},
		{name: "in the image elsewhere is no reason", args: []string{"app.js"}, workdir: "/srv", want: map[string]string{"/srv/app.js": "app.js"}},
		{name: "named twice", args: []string{"hi.js", "hi.js"}, workdir: "/", want: map[string]string{"/hi.js": "hi.js"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			debugf := func(format string, a ...any) { fmt.Fprintf(&stderr, format+"\n", a...) }
			adds, names := autoAdd(debugf, img, tc.args, tc.workdir, cwd)
			got := map[string]string{}
			for i, a := range adds {
				rel, err := filepath.Rel(cwd, a.Src)
				require.NoError(t, err)
				got[a.Dst] = rel
				assert.Equal(t, filepath.Clean(names[i]), rel)
			}
			if tc.want == nil {
				tc.want = map[string]string{}
			}
			assert.Equal(t, tc.want, got)
			assert.Contains(t, stderr.String(), tc.note)
		})
	}
}

func TestConfigAdds(t *testing.T) {
	cwd := t.TempDir()
	writeTree(t, cwd, map[string]string{"ex.js": "ex", "myapp/static/index.html": "i", "myapp/static/css/a.css": "a"})
	confDir := t.TempDir()
	writeTree(t, confDir, map[string]string{
		"certs/a.pem": "a", "certs/b.pem": "b", "certs/readme": "r", "certs/sub/c.pem": "c", "certs/l.pem": "->a.pem",
	})
	abs := t.TempDir()
	writeTree(t, abs, map[string]string{"lib/x.so": "x"})
	c := &opsconfig.Config{
		Files:   []string{"ex.js"},
		Dirs:    []string{"myapp/static"},
		MapDirs: map[string]string{"certs/*.pem": "/usr/lib/ssl/certs", filepath.Join(abs, "lib/*"): "/opt/lib"},
	}
	adds, _, err := configAdds(c, cwd, confDir)
	require.NoError(t, err)
	got := map[string]hostfs.Add{}
	for _, a := range adds {
		got[a.Dst] = a
	}
	assert.Equal(t, hostfs.Add{Src: filepath.Join(cwd, "ex.js"), Dst: "/ex.js"}, got["/ex.js"])
	assert.Equal(t, hostfs.Add{Src: filepath.Join(cwd, "myapp/static"), Dst: "/myapp/static"}, got["/myapp/static"])
	for _, dst := range []string{"/usr/lib/ssl/certs/a.pem", "/usr/lib/ssl/certs/b.pem", "/usr/lib/ssl/certs/sub/c.pem", "/usr/lib/ssl/certs/l.pem", "/opt/lib/x.so"} {
		if assert.Contains(t, got, dst) {
			assert.True(t, got[dst].Shallow, "%s: MapDirs entries come one by one, links as links", dst)
		}
	}
	assert.NotContains(t, got, "/usr/lib/ssl/certs/readme")
	assert.NotContains(t, got, "/usr/lib/ssl/certs/sub", "a directory whose name does not match is not made")

	_, _, err = configAdds(&opsconfig.Config{Files: []string{"missing.js"}}, cwd, confDir)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, _, err = configAdds(&opsconfig.Config{Files: []string{"../x"}}, cwd, confDir)
	assert.Error(t, err)
}

// FuzzParseAdd: any --add value gives an error or an absolute, clean
// destination without "..", from a source that exists.
func FuzzParseAdd(f *testing.F) {
	cwd := f.TempDir()
	for _, name := range []string{"hi.js", "a:b", "dir/x"} {
		p := filepath.Join(cwd, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for _, s := range []string{"hi.js", "hi.js:/app/", "a:b", "a:b:/x", "dir:/opt/d", "../x", ":/", "dir/x:/a/../b", "/etc/passwd:/p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		a, _, err := ParseAdd(spec, cwd)
		if err != nil {
			return
		}
		if !strings.HasPrefix(a.Dst, "/") || filepath.ToSlash(filepath.Clean(a.Dst)) != a.Dst || slices.Contains(strings.Split(a.Dst, "/"), "..") {
			t.Fatalf("%q: destination %q", spec, a.Dst)
		}
		if _, err := os.Stat(a.Src); err != nil {
			t.Fatalf("%q: source %q: %v", spec, a.Src, err)
		}
	})
}
