package hostfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// image is a small image root: merged-/usr style links, a file, a
// directory with contents.
func image() fstest.MapFS {
	return fstest.MapFS{
		"bin":              {Mode: fs.ModeSymlink | 0o777, Data: []byte("usr/bin")},
		"lib":              {Mode: fs.ModeSymlink | 0o777, Data: []byte("/usr/lib")},
		"usr/bin/node":     {Mode: 0o755, Data: []byte("\x7fELF node")},
		"usr/lib/libc.so":  {Mode: 0o644, Data: []byte("libc")},
		"etc/passwd":       {Mode: 0o644, Data: []byte("root:x:0:0::/:/bin/sh\n")},
		"etc/hosts":        {Mode: 0o644, Data: []byte("127.0.0.1 localhost\n")},
		"app/hello.js":     {Mode: 0o644, Data: []byte("console.log('hello')\n")},
		"app/lib/util.js":  {Mode: 0o644, Data: []byte("exports.x = 1\n")},
		"srv":              {Mode: fs.ModeDir | 0o700},
		"opt/conf":         {Mode: 0o600, Data: []byte("image conf\n")},
		"run/resolv.conf":  {Mode: 0o644, Data: []byte("nameserver 10.0.2.3\n")},
		"etc/resolv.conf":  {Mode: fs.ModeSymlink | 0o777, Data: []byte("../run/resolv.conf")},
		"usr/share/doc/xy": {Mode: 0o644, Data: []byte("doc")},
	}
}

// hostTree writes files (name -> content; a value starting with "->" is
// a symbolic link) under a new temporary directory.
func hostTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		if target, ok := cutPrefix(content, "->"); ok {
			require.NoError(t, os.Symlink(target, p))
			continue
		}
		if name[len(name)-1] == '/' {
			require.NoError(t, os.MkdirAll(p, 0o755))
			continue
		}
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

func read(t *testing.T, fsys fs.FS, name string) string {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	require.NoError(t, err, name)
	return string(b)
}

// TestFSConformance runs the standard library's file system checks over
// an image with files, a directory and links laid over it.
func TestFSConformance(t *testing.T) {
	host := hostTree(t, map[string]string{
		"hi.js":             "console.log('hi from Nanos!')\n",
		"site/index.html":   "<p>hi</p>\n",
		"site/css/main.css": "p{}\n",
		"site/up":           "->../../app/hi.js",
		"site/abs":          "->/etc/hosts",
		"conf/extra.conf":   "x=1\n",
	})
	fsys, err := New(image(), []Add{
		{Src: filepath.Join(host, "hi.js"), Dst: "/app/hi.js"},
		{Src: filepath.Join(host, "site"), Dst: "/srv/www"},
		{Src: filepath.Join(host, "conf"), Dst: "/etc"},
		{Src: filepath.Join(host, "hi.js"), Dst: "/lib/node/hi.js"},
	})
	require.NoError(t, err)
	require.NoError(t, fstest.TestFS(fsys,
		"app/hi.js", "app/hello.js", "app/lib/util.js", "srv/www/index.html", "srv/www/css/main.css",
		"etc/extra.conf", "etc/passwd", "usr/lib/node/hi.js", "usr/bin/node"))
}

func TestPlacement(t *testing.T) {
	host := hostTree(t, map[string]string{
		"hi.js":           "console.log('hi from Nanos!')\n",
		"site/index.html": "<p>hi</p>\n",
		"conf/extra.conf": "x=1\n",
		"empty/":          "",
	})
	for _, tc := range []struct {
		name     string
		add      Add
		wantPath string   // where it landed
		read     []string // names that read as the host file
	}{
		{"file into an image dir", Add{Src: "hi.js", Dst: "/app/hi.js"}, "/app/hi.js", []string{"app/hi.js"}},
		{"missing parents made", Add{Src: "hi.js", Dst: "/new/deep/hi.js"}, "/new/deep/hi.js", []string{"new/deep/hi.js"}},
		{"parent through an absolute image link", Add{Src: "hi.js", Dst: "/lib/x/hi.js"}, "/usr/lib/x/hi.js", []string{"usr/lib/x/hi.js", "lib/x/hi.js"}},
		{"parent through a relative image link", Add{Src: "hi.js", Dst: "/bin/hi.js"}, "/usr/bin/hi.js", []string{"usr/bin/hi.js", "bin/hi.js"}},
		{"directory onto a link to a directory", Add{Src: "site", Dst: "/lib"}, "/usr/lib", []string{"usr/lib/index.html", "lib/index.html"}},
		{"directory merged into the root", Add{Src: "conf", Dst: "/"}, "/", []string{"extra.conf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.add
			a.Src = filepath.Join(host, a.Src)
			fsys, err := New(image(), []Add{a})
			require.NoError(t, err)
			p := fsys.Placed()
			require.Len(t, p, 1)
			assert.Equal(t, tc.wantPath, p[0].Path)
			want, err := os.ReadFile(filepath.Join(host, "hi.js"))
			require.NoError(t, err)
			for _, name := range tc.read {
				got := read(t, fsys, name)
				if filepath.Base(name) == "hi.js" {
					assert.Equal(t, string(want), got)
				}
			}
			// The image is still all there.
			assert.Equal(t, "libc", read(t, fsys, "lib/libc.so"))
			assert.Equal(t, "\x7fELF node", read(t, fsys, "bin/node"))
		})
	}

	t.Run("merged directory keeps the image's mode and entries", func(t *testing.T) {
		fsys, err := New(image(), []Add{{Src: filepath.Join(host, "empty"), Dst: "/srv"}, {Src: filepath.Join(host, "conf"), Dst: "/etc"}})
		require.NoError(t, err)
		st, err := fs.Stat(fsys, "srv")
		require.NoError(t, err)
		assert.Equal(t, fs.ModeDir|0o700, st.Mode())
		names := dirNames(t, fsys, "etc")
		assert.Equal(t, []string{"extra.conf", "hosts", "passwd", "resolv.conf"}, names)
		for _, e := range fsys.Entries() {
			if e.Path == "/etc" {
				assert.True(t, e.Merged)
				assert.False(t, e.Implicit, "/etc was added by name")
			}
		}
	})
}

func dirNames(t *testing.T, fsys fs.FS, name string) []string {
	t.Helper()
	entries, err := fs.ReadDir(fsys, name)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestCollisions(t *testing.T) {
	host := hostTree(t, map[string]string{
		"hi.js":           "console.log('hi')\n",
		"other.js":        "console.log('other')\n",
		"conf":            "host conf\n",
		"app/":            "",
		"app/hello.js":    "console.log('replaced')\n",
		"opt/conf/x":      "nested\n",
		"etc/resolv.conf": "nameserver 1.1.1.1\n",
	})
	h := func(name string) string { return filepath.Join(host, name) }
	for _, tc := range []struct {
		name string
		adds []Add
		// without WithOverwrite
		wantErr string
		// with WithOverwrite: what the image then reads, and what it replaced
		check    func(t *testing.T, fsys *FS)
		replaced []string
	}{
		{
			name:    "file over an image file",
			adds:    []Add{{Src: h("conf"), Dst: "/opt/conf"}},
			wantErr: "/opt/conf: the image has a file there, which the file added from " + h("conf") + " would replace",
			check: func(t *testing.T, fsys *FS) {
				assert.Equal(t, "host conf\n", read(t, fsys, "opt/conf"))
				st, err := fs.Stat(fsys, "opt/conf")
				require.NoError(t, err)
				assert.Equal(t, fs.FileMode(0o644), st.Mode(), "the host file's mode")
			},
			replaced: []string{"/opt/conf"},
		},
		{
			name:    "file over an image directory",
			adds:    []Add{{Src: h("hi.js"), Dst: "/app"}},
			wantErr: "/app: the image has a directory there",
			check: func(t *testing.T, fsys *FS) {
				assert.Equal(t, "console.log('hi')\n", read(t, fsys, "app"))
				_, err := fs.Stat(fsys, "app/hello.js")
				assert.ErrorIs(t, err, syscall.ENOTDIR, "the directory's contents went with it")
			},
			replaced: []string{"/app"},
		},
		{
			name:    "directory over an image file",
			adds:    []Add{{Src: h("opt/conf"), Dst: "/opt/conf"}},
			wantErr: "/opt/conf: the image has a file there, which the directory added from",
			check: func(t *testing.T, fsys *FS) {
				assert.Equal(t, "nested\n", read(t, fsys, "opt/conf/x"))
			},
			replaced: []string{"/opt/conf"},
		},
		{
			name:    "file in a directory over an image file",
			adds:    []Add{{Src: h("app"), Dst: "/app"}},
			wantErr: "/app/hello.js: the image has a file there",
			check: func(t *testing.T, fsys *FS) {
				assert.Equal(t, "console.log('replaced')\n", read(t, fsys, "app/hello.js"))
				assert.Equal(t, "exports.x = 1\n", read(t, fsys, "app/lib/util.js"), "the rest of the image's /app stays")
			},
			replaced: []string{"/app/hello.js"},
		},
		{
			name:    "parent is an image file",
			adds:    []Add{{Src: h("hi.js"), Dst: "/opt/conf/hi.js"}},
			wantErr: "/opt/conf: the image has a file there, which the directory added from",
			check: func(t *testing.T, fsys *FS) {
				assert.Equal(t, "console.log('hi')\n", read(t, fsys, "opt/conf/hi.js"))
			},
			replaced: []string{"/opt/conf"},
		},
		{
			name:    "file over an image link",
			adds:    []Add{{Src: h("etc"), Dst: "/etc"}},
			wantErr: "/etc/resolv.conf: the image has a symbolic link there",
			check: func(t *testing.T, fsys *FS) {
				st, err := fsys.Lstat("etc/resolv.conf")
				require.NoError(t, err)
				assert.True(t, st.Mode().IsRegular(), "the link itself is replaced, not followed")
				assert.Equal(t, "root:x:0:0::/:/bin/sh\n", read(t, fsys, "etc/passwd"))
			},
			replaced: []string{"/etc/resolv.conf"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(image(), tc.adds)
			var ce *CollisionError
			require.ErrorAs(t, err, &ce)
			assert.Contains(t, err.Error(), tc.wantErr)

			fsys, err := New(image(), tc.adds, WithOverwrite())
			require.NoError(t, err)
			tc.check(t, fsys)
			var replaced []string
			for _, p := range fsys.Placed() {
				replaced = append(replaced, p.Replaced...)
			}
			assert.Equal(t, tc.replaced, replaced)
			require.NoError(t, fstest.TestFS(fsys, "usr/bin/node"))
		})
	}

	t.Run("two adds at one path", func(t *testing.T) {
		_, err := New(image(), []Add{{Src: h("hi.js"), Dst: "/x.js"}, {Src: h("other.js"), Dst: "/x.js"}}, WithOverwrite())
		var ce *ConflictError
		require.ErrorAs(t, err, &ce, "--overwrite is for the image's files, not for each other")
		assert.Equal(t, "/x.js", ce.Path)
	})
	t.Run("the same file named twice", func(t *testing.T) {
		fsys, err := New(image(), []Add{{Src: h("hi.js"), Dst: "/x.js"}, {Src: h("hi.js"), Dst: "/x.js"}})
		require.NoError(t, err)
		assert.Equal(t, "console.log('hi')\n", read(t, fsys, "x.js"))
	})
	t.Run("a file where an add made a directory", func(t *testing.T) {
		_, err := New(image(), []Add{{Src: h("hi.js"), Dst: "/d/x.js"}, {Src: h("other.js"), Dst: "/d"}})
		var ce *ConflictError
		require.ErrorAs(t, err, &ce)
	})
	t.Run("a directory under an added file", func(t *testing.T) {
		_, err := New(image(), []Add{{Src: h("hi.js"), Dst: "/d"}, {Src: h("other.js"), Dst: "/d/x.js"}}, WithOverwrite())
		var ce *ConflictError
		require.ErrorAs(t, err, &ce)
	})
	t.Run("link loop in the destination", func(t *testing.T) {
		img := image()
		img["loop/a"] = &fstest.MapFile{Mode: fs.ModeSymlink | 0o777, Data: []byte("b")}
		img["loop/b"] = &fstest.MapFile{Mode: fs.ModeSymlink | 0o777, Data: []byte("a")}
		_, err := New(img, []Add{{Src: h("hi.js"), Dst: "/loop/a/x.js"}})
		assert.ErrorIs(t, err, syscall.ELOOP)
	})
	t.Run("relative or .. destinations", func(t *testing.T) {
		for _, dst := range []string{"x.js", "/a/../x.js", ""} {
			_, err := New(image(), []Add{{Src: h("hi.js"), Dst: dst}})
			assert.Error(t, err, dst)
		}
	})
}

// TestSymlinks: links inside an added directory are kept as links and
// resolve inside the image, never on the host.
func TestSymlinks(t *testing.T) {
	outside := hostTree(t, map[string]string{"secret": "host secret\n"})
	host := hostTree(t, map[string]string{
		"dir/rel":      "->../../../../../../etc/hosts",
		"dir/abs":      "->/etc/passwd",
		"dir/out":      "->" + filepath.Join(outside, "secret"),
		"dir/dangling": "->/nowhere",
		"dir/file":     "data\n",
		"dir/self":     "->file",
		"named":        "->dir/file",
	})
	fsys, err := New(image(), []Add{
		{Src: filepath.Join(host, "dir"), Dst: "/d"},
		{Src: filepath.Join(host, "named"), Dst: "/followed"},
		{Src: filepath.Join(host, "named"), Dst: "/kept", Shallow: true},
	})
	require.NoError(t, err)
	for name, target := range map[string]string{
		"d/rel": "../../../../../../etc/hosts", "d/abs": "/etc/passwd", "d/out": filepath.Join(outside, "secret"),
		"d/dangling": "/nowhere", "d/self": "file", "kept": "dir/file",
	} {
		got, err := fsys.ReadLink(name)
		require.NoError(t, err, name)
		assert.Equal(t, target, got, name)
	}
	assert.Equal(t, "127.0.0.1 localhost\n", read(t, fsys, "d/rel"), ".. stops at the image root")
	assert.Equal(t, "root:x:0:0::/:/bin/sh\n", read(t, fsys, "d/abs"), "absolute targets start at the image root")
	_, err = fs.ReadFile(fsys, "d/out")
	assert.ErrorIs(t, err, fs.ErrNotExist, "a link out of the directory is not followed on the host")
	_, err = fs.ReadFile(fsys, "d/dangling")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.Equal(t, "data\n", read(t, fsys, "d/self"))
	assert.Equal(t, "data\n", read(t, fsys, "followed"), "a named link is what it points to")
	st, err := fsys.Lstat("followed")
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular())

	// A directory whose entries are swapped for links after New: reads
	// stay inside the added directory.
	require.NoError(t, os.Remove(filepath.Join(host, "dir/file")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(host, "dir/file")))
	_, err = fs.ReadFile(fsys, "d/file")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "host secret")
}

func TestSpecialFilesAndChanges(t *testing.T) {
	host := hostTree(t, map[string]string{"dir/a": "aaaa\n", "solo": "12345\n"})
	require.NoError(t, syscall.Mkfifo(filepath.Join(host, "dir/fifo"), 0o644))
	fsys, err := New(image(), []Add{{Src: filepath.Join(host, "dir"), Dst: "/d"}, {Src: filepath.Join(host, "solo"), Dst: "/solo"}})
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(host, "dir/fifo")}, fsys.Skipped())
	assert.Equal(t, []string{"a"}, dirNames(t, fsys, "d"))

	_, err = New(image(), []Add{{Src: filepath.Join(host, "dir/fifo"), Dst: "/fifo"}})
	assert.ErrorContains(t, err, "cannot hold")

	require.NoError(t, os.WriteFile(filepath.Join(host, "solo"), []byte("longer now\n"), 0o644))
	_, err = fs.ReadFile(fsys, "solo")
	assert.ErrorContains(t, err, "changed since it was added")

	_, err = New(image(), []Add{{Src: filepath.Join(host, "missing"), Dst: "/x"}})
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestEntries(t *testing.T) {
	host := hostTree(t, map[string]string{"hi.js": "hi\n", "site/a/b.html": "b\n", "site/l": "->a"})
	fsys, err := New(image(), []Add{
		{Src: filepath.Join(host, "hi.js"), Dst: "/app/hi.js"},
		{Src: filepath.Join(host, "site"), Dst: "/new/site"},
	})
	require.NoError(t, err)
	type row struct {
		Path            string
		Implicit, Merge bool
	}
	var got []row
	for _, e := range fsys.Entries() {
		got = append(got, row{e.Path, e.Implicit, e.Merged})
	}
	assert.Equal(t, []row{
		{"/app", true, true},
		{"/app/hi.js", false, false},
		{"/new", true, false},
		{"/new/site", false, false},
		{"/new/site/a", false, false},
		{"/new/site/a/b.html", false, false},
		{"/new/site/l", false, false},
	}, got)
	p := fsys.Placed()
	assert.Equal(t, 2, p[1].Files)
	assert.Equal(t, int64(2), p[1].Bytes)
}

// TestLargeFileStreams reads a 64 MiB sparse file through the layer: the
// bytes are streamed, never held whole.
func TestLargeFileStreams(t *testing.T) {
	const size = 64 << 20
	host := t.TempDir()
	big := filepath.Join(host, "big.bin")
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	_, err = f.WriteAt([]byte("end"), size-3)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	fsys, err := New(image(), []Add{{Src: big, Dst: "/data/big.bin"}})
	require.NoError(t, err)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fl, err := fsys.Open("data/big.bin")
	require.NoError(t, err)
	n, err := io.CopyBuffer(io.Discard, fl, make([]byte, 1<<20))
	require.NoError(t, err)
	tail := make([]byte, 3)
	_, err = fl.(io.ReaderAt).ReadAt(tail, size-3)
	require.NoError(t, err)
	require.NoError(t, fl.Close())
	runtime.ReadMemStats(&after)
	assert.Equal(t, int64(size), n)
	assert.Equal(t, "end", string(tail))
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "bytes allocated while reading 64 MiB")
}

func TestErrorsAreWrappedOnce(t *testing.T) {
	fsys, err := New(image(), nil)
	require.NoError(t, err)
	_, err = fsys.Open("no/such")
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
	assert.False(t, errors.As(pe.Err, new(*fs.PathError)), "nested: %v", err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = fsys.Open("../x")
	assert.ErrorIs(t, err, fs.ErrInvalid)
}

func TestDotNames(t *testing.T) {
	host := hostTree(t, map[string]string{".env": "A=1\n", ".config/x": "x"})
	fsys, err := New(image(), []Add{
		{Src: filepath.Join(host, ".env"), Dst: "/app/.env"},
		{Src: filepath.Join(host, ".config"), Dst: "/.config"},
	})
	require.NoError(t, err)
	p := fsys.Placed()
	assert.Equal(t, "/app/.env", p[0].Path)
	assert.Equal(t, "/.config", p[1].Path)
	assert.Equal(t, "x", read(t, fsys, ".config/x"))
	require.NoError(t, fstest.TestFS(fsys, "app/.env", ".config/x"))
}
