package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/build"
	nanobuild "github.com/nanofs/nanofs/vm/build"
	"github.com/nanofs/nanofs/vm/content"
)

// writeTree writes a host tree (testimage.WriteTree).
var writeTree = testimage.WriteTree

// fixturesRef pushes the fixtures image to an in-process registry.
func fixturesRef(t *testing.T) string {
	t.Helper()
	reg := testimage.StartInProcessRegistry(t)
	return reg.Push(t, "add/fixtures", testimage.FixturesSpec(t).Image(t, testimage.EStargz)).String()
}

// buildCLI runs `nanofs build --json` in-process; it returns the summary,
// or the error output when the build fails.
func buildCLI(t *testing.T, args ...string) (build.Summary, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"build", "--json"}, args...), &stdout, &stderr)
	var sum build.Summary
	if code == 0 {
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &sum), stdout.String())
	}
	return sum, stderr.String(), code
}

// TestBuildAdd builds disks with local files added to the fixtures image
// and reads them back with the TFS reader.
func TestBuildAdd(t *testing.T) {
	fx := testimage.CFixtures(t)
	ref := fixturesRef(t)
	cache := t.TempDir()
	work := t.TempDir()
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret": "host secret"})
	writeTree(t, work, map[string]string{
		"hi.txt":                "hi there\n",
		"site/index.html":       "<p>hi</p>\n",
		"site/css/main.css":     "p{}\n",
		"site/link-rel":         "->index.html",
		"site/link-image":       "->/etc/nanofs-fixtures-release",
		"site/link-out":         "->" + filepath.Join(outside, "secret"),
		"conf/extra.conf":       "x=1\n",
		"release":               "NAME=local\n",
		"opt/extra/hello.txt/x": "under a file of the image",
	})
	require.NoError(t, os.Chmod(filepath.Join(work, "hi.txt"), 0o751))
	t.Chdir(work)
	build := func(t *testing.T, args ...string) (*tfs.FS, build.Summary, string) {
		t.Helper()
		disk := filepath.Join(t.TempDir(), "d.img")
		sum, stderr, code := buildCLI(t, append([]string{ref, "--entry", fx.Dynamic, "--no-bootloader", "--cache-dir", cache, "-o", disk}, args...)...)
		require.Equal(t, 0, code, stderr)
		return openDisk(t, disk), sum, stderr
	}

	t.Run("files, directories, links and modes", func(t *testing.T) {
		disk, sum, _ := build(t, "--add", "hi.txt", "--add", "site:/srv/www", "--add", "conf:/etc")
		for name, want := range map[string]string{
			"hi.txt": "hi there\n", "srv/www/index.html": "<p>hi</p>\n", "srv/www/css/main.css": "p{}\n",
			"etc/extra.conf": "x=1\n", "etc/nanofs-fixtures-release": "NAME=nanofs fixtures\nLAYER=2\n",
		} {
			got, err := fs.ReadFile(disk, name)
			if assert.NoError(t, err, name) {
				assert.Equal(t, want, string(got), name)
			}
		}
		// TFS keeps no modes, the plan does (an ops package needs them).
		res, err := nanobuild.Resolve(context.Background(), ref, nanobuild.WithEntry(fx.Dynamic), nanobuild.WithAdd("hi.txt"),
			nanobuild.WithImageOptions(lazy.WithCacheDir(cache)))
		require.NoError(t, err)
		e, ok := res.Plan.Lookup("/hi.txt")
		require.True(t, ok)
		assert.Equal(t, fs.FileMode(0o751), e.Mode)
		assert.Equal(t, "added from "+filepath.Join(work, "hi.txt"), e.Reason)
		for name, target := range map[string]string{
			"srv/www/link-rel": "index.html", "srv/www/link-image": "/etc/nanofs-fixtures-release",
			"srv/www/link-out": filepath.Join(outside, "secret"),
		} {
			got, err := fs.ReadLink(disk, name)
			if assert.NoError(t, err, name) {
				assert.Equal(t, target, got, "%s is kept as a link", name)
			}
		}
		require.Len(t, sum.Added, 3)
		assert.Equal(t, content.Source{Src: "site", Path: "/srv/www", From: "--add", Files: 5, Bytes: 14}, sum.Added[1])
	})

	t.Run("collision", func(t *testing.T) {
		disk := filepath.Join(t.TempDir(), "d.img")
		_, stderr, code := buildCLI(t, ref, "--entry", fx.Dynamic, "--no-bootloader", "--cache-dir", cache, "-o", disk,
			"--add", "release:/etc/nanofs-fixtures-release")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "/etc/nanofs-fixtures-release: the image has a file there, which the file added from "+filepath.Join(work, "release")+" would replace (--overwrite replaces it)")
		_, err := os.Stat(disk)
		assert.ErrorIs(t, err, fs.ErrNotExist, "nothing written")

		_, stderr, code = buildCLI(t, ref, "--entry", fx.Dynamic, "--no-bootloader", "--cache-dir", cache, "-o", disk,
			"--add", "opt:/opt")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "/opt/extra/hello.txt: the image has a file there, which the directory added from")

		d, _, stderr := build(t, "--overwrite", "--add", "release:/etc/nanofs-fixtures-release", "--add", "opt:/opt")
		got, err := fs.ReadFile(d, "etc/nanofs-fixtures-release")
		require.NoError(t, err)
		assert.Equal(t, "NAME=local\n", string(got))
		got, err = fs.ReadFile(d, "opt/extra/hello.txt/x")
		require.NoError(t, err)
		assert.Equal(t, "under a file of the image", string(got))
		assert.Contains(t, stderr, "replaced /etc/nanofs-fixtures-release of the image with release (--overwrite)")
	})

	t.Run("arguments naming local files", func(t *testing.T) {
		disk, sum, stderr := build(t, "-a", "hi.txt", "-a", "-o", "-a", "release", "--workdir", "/work")
		assert.Contains(t, stderr, "added hi.txt (9 B) from the working directory")
		assert.Contains(t, stderr, "added release (11 B) from the working directory")
		for _, name := range []string{"work/hi.txt", "work/release"} {
			_, err := fs.Stat(disk, name)
			assert.NoError(t, err, name)
		}
		assert.Equal(t, tfs.String("/work"), disk.Manifest()["cwd"])
		assert.Len(t, sum.Added, 2)

		disk, sum, _ = build(t, "-a", "hi.txt", "--no-auto-add")
		_, err := fs.Stat(disk, "hi.txt")
		assert.ErrorIs(t, err, fs.ErrNotExist)
		assert.Empty(t, sum.Added)

		// A flag value that names a local file is not an argument of the
		// program: nothing is added for --include or -o.
		disk, sum, _ = build(t, "--include", "/opt/extra/hello.txt")
		assert.Empty(t, sum.Added)
		_, err = fs.Stat(disk, "hi.txt")
		assert.ErrorIs(t, err, fs.ErrNotExist)
	})

	t.Run("deterministic, and different adds give different disks", func(t *testing.T) {
		dir := t.TempDir()
		once := func(name string, args ...string) []byte {
			out := filepath.Join(dir, name)
			_, stderr, code := buildCLI(t, append([]string{ref, "--entry", fx.Dynamic, "--no-bootloader", "--cache-dir", cache, "-o", out}, args...)...)
			require.Equal(t, 0, code, stderr)
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			return b
		}
		a := once("a.img", "--add", "site:/srv")
		b := once("b.img", "--add", "site:/srv")
		assert.True(t, bytes.Equal(a, b), "the same adds give the same bytes")
		c := once("c.img", "--add", "site:/srv2")
		require.NoError(t, os.WriteFile(filepath.Join(work, "site/index.html"), []byte("<p>ho</p>\n"), 0o644))
		d := once("d.img", "--add", "site:/srv")
		assert.NotEqual(t, uuidOf(t, a), uuidOf(t, c), "another destination, another UUID")
		assert.NotEqual(t, uuidOf(t, a), uuidOf(t, d), "other contents of the same size, another UUID")
		e := once("e.img", "--add", "site:/srv", "--workdir", "/srv")
		assert.NotEqual(t, uuidOf(t, d), uuidOf(t, e), "another working directory, another UUID")
	})

	t.Run("added program resolved from the image", func(t *testing.T) {
		// A copy of the dynamic fixture, added under another name and run
		// as the entry: its loader and libraries come from the image.
		body, err := os.ReadFile(fx.HostPath(fx.Dynamic))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(work, "myprog"), body, 0o755))
		disk := filepath.Join(t.TempDir(), "d.img")
		sum, stderr, code := buildCLI(t, ref, "--entry", "/opt/myprog", "--add", "myprog:/opt/myprog", "--no-bootloader", "--cache-dir", cache, "-o", disk)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, "/opt/myprog", sum.Program)
		d := openDisk(t, disk)
		for _, lib := range fx.Expected[fx.Dynamic] {
			_, err := fs.Stat(d, strings.TrimPrefix(lib, "/"))
			assert.NoError(t, err, "myprog needs %s (ldd)", lib)
		}
	})
}

// uuidOf reads the root filesystem's UUID of a direct-boot disk.
func uuidOf(t *testing.T, disk []byte) [16]byte {
	t.Helper()
	fsys, err := tfs.Open(bytes.NewReader(disk), int64(len(disk)))
	require.NoError(t, err)
	return fsys.UUID()
}

// TestBuildAddLargeFile adds a 64 MiB sparse file: it is streamed into the
// disk, so what the build allocates does not grow with it.
func TestBuildAddLargeFile(t *testing.T) {
	fx := testimage.CFixtures(t)
	ref := fixturesRef(t)
	cache := t.TempDir()
	work := t.TempDir()
	t.Chdir(work)
	small := filepath.Join(work, "small.bin")
	require.NoError(t, os.WriteFile(small, []byte("small"), 0o644))
	big := filepath.Join(work, "big.bin")
	f, err := os.Create(big)
	require.NoError(t, err)
	const size = 64 << 20
	require.NoError(t, f.Truncate(size))
	_, err = f.WriteAt([]byte("the end"), size-7)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	allocated := func(file string) uint64 {
		out := filepath.Join(t.TempDir(), "d.img")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, stderr, code := buildCLI(t, ref, "--entry", fx.Dynamic, "--no-bootloader", "--cache-dir", cache, "-o", out, "--add", file+":/data/file.bin")
		runtime.ReadMemStats(&after)
		require.Equal(t, 0, code, stderr)
		d := openDisk(t, out)
		st, err := fs.Stat(d, "data/file.bin")
		require.NoError(t, err)
		if file == big {
			assert.Equal(t, int64(size), st.Size())
			fl, err := d.Open("data/file.bin")
			require.NoError(t, err)
			tail := make([]byte, 7)
			_, err = fl.(interface {
				ReadAt([]byte, int64) (int, error)
			}).ReadAt(tail, size-7)
			require.NoError(t, err)
			assert.Equal(t, "the end", string(tail))
			fl.Close()
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	allocated(small) // warm the cache
	base := allocated(small)
	withBig := allocated(big)
	t.Logf("allocated: %d bytes building with a 5-byte file, %d with a 64 MiB one", base, withBig)
	assert.Less(t, withBig, base+16<<20, "a 64 MiB file must not be held in memory")
}
