package testimage

import (
	"bufio"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// debianTestPackages is the layer the project's tests use.
var debianTestPackages = []string{"nodejs", "python3", "redis-server"}

func TestParseAptSources(t *testing.T) {
	tests := []struct {
		name    string
		oneLine string
		deb822  string
		want    string // "" for no mirror
	}{
		{
			name:    "one-line",
			oneLine: "deb http://mirror.example/debian bookworm main\n",
			want:    "http://mirror.example/debian",
		},
		{
			name:    "one-line with options, comments and other suites first",
			oneLine: "# deb http://old.example/debian bookworm main\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://sec.example/debian-security bookworm-security main\ndeb [ arch=amd64 ] https://mirror.example/debian/ bookworm main contrib # trailing\n",
			want:    "https://mirror.example/debian/",
		},
		{
			name:    "one-line with unclosed options",
			oneLine: "deb [arch=amd64 http://mirror.example/debian bookworm main\n",
		},
		{
			name: "deb822 as Debian ships it",
			deb822: `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.example/debian-security
Suites: bookworm-security
Components: main
`,
			want: "http://deb.example/debian",
		},
		{
			name: "deb822 disabled, source-only, then folded fields in any case",
			deb822: `Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

types: deb-src
  deb
uris: cdrom:[Debian]/
 http://folded.example/debian
suites: trixie
 bookworm
`,
			want: "http://folded.example/debian",
		},
		{
			name:   "deb822 other release only",
			deb822: "Types: deb\nURIs: http://deb.example/debian\nSuites: trixie\n",
		},
		{
			name:    "one-line wins over deb822 (sources.list is read first)",
			oneLine: "deb http://first.example/debian bookworm main\n",
			deb822:  "Types: deb\nURIs: http://second.example/debian\nSuites: bookworm\n",
			want:    "http://first.example/debian",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources := append(parseOneLineSources(tt.oneLine), parseDeb822Sources(tt.deb822)...)
			got, ok := pickMirror(sources, "bookworm")
			assert.Equal(t, tt.want != "", ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDebianMirror(t *testing.T) {
	tests := []struct {
		env, want string
		err       bool
	}{
		{env: "http://mirror.example/debian/", want: "http://mirror.example/debian"},
		{env: "file:///srv/mirror/debian", want: "file:///srv/mirror/debian"},
		{env: "http://mirror.example/debian bookworm main", err: true},
		{env: "http://mirror.example/debian\ndeb http://evil.example/ x", err: true},
		{env: "mirror.example/debian", err: true},
		{env: "http:///debian", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv(DebianMirrorEnv, tt.env)
			got, err := debianMirror()
			if tt.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("host sources", func(t *testing.T) {
		t.Setenv(DebianMirrorEnv, "")
		m, err := debianMirror()
		if err != nil {
			t.Skipf("this host has no apt source for bookworm: %v", err)
		}
		_, err = checkMirror(m)
		assert.NoError(t, err)
		t.Logf("host mirror: %s", m)
	})
}

func TestNormalizePackages(t *testing.T) {
	got, err := normalizePackages([]string{"redis-server", "nodejs", "python3", "nodejs"})
	require.NoError(t, err)
	assert.Equal(t, []string{"nodejs", "python3", "redis-server"}, got)
	assert.Equal(t, layerKey("k", got), layerKey("k", []string{"nodejs", "python3", "redis-server"}))
	assert.NotEqual(t, layerKey("k", got), layerKey("k", []string{"nodejs"}))
	for _, bad := range [][]string{nil, {"Nodejs"}, {"a"}, {"x y"}, {"../etc"}, {"-o"}, {"x;rm"}} {
		_, err := normalizePackages(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func FuzzParseAptSources(f *testing.F) {
	f.Add("deb [arch=amd64] http://m.example/debian bookworm main\n", "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\n")
	f.Add("deb-src x y\n#c\n", "a:\n b\n\n:\n\tc\nEnabled: no\n")
	f.Fuzz(func(t *testing.T, oneLine, deb822 string) {
		sources := append(parseOneLineSources(oneLine), parseDeb822Sources(deb822)...)
		for _, s := range parseOneLineSources(oneLine) {
			require.Len(t, s.URIs, 1)
			require.Len(t, s.Suites, 1)
		}
		if m, ok := pickMirror(sources, "bookworm"); ok {
			_, err := checkMirror(m)
			require.NoError(t, err, "picked an unusable mirror %q", m)
		}
	})
}

func FuzzParseLoaderList(f *testing.F) {
	f.Add("\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n")
	f.Add("/x:\n\tlibp.so => /r/opt/app/bin/../lib/libp.so (0x1)\n\tlibq.so => not found\n")
	f.Add("\tstatically linked\n")
	f.Fuzz(func(t *testing.T, out string) {
		paths, err := parseLoaderList(out)
		if err != nil {
			return
		}
		for _, p := range paths {
			require.True(t, path.IsAbs(p), "%q", p)
			require.Equal(t, path.Clean(p), p)
		}
	})
}

func TestParseLoaderList(t *testing.T) {
	got, err := parseLoaderList("/r/opt/app/bin/rpath:\n\tlinux-vdso.so.1 (0x00007ffd5a1f3000)\n\tlibprivate.so => /r/opt/app/bin/../lib/libprivate.so (0x00007f1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n")
	require.NoError(t, err)
	assert.Equal(t, []string{"/r/opt/app/lib/libprivate.so", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}, got)
	_, err = parseLoaderList("\tlibmissing.so => not found\n")
	assert.ErrorContains(t, err, "libmissing.so")
	got, err = parseLoaderList("\tnot a dynamic executable\n")
	assert.NoError(t, err)
	assert.Nil(t, got)
}

func TestDebianRootfs(t *testing.T) {
	rootfs := DebianRootfs(t)
	version, err := os.ReadFile(filepath.Join(rootfs, "etc/debian_version"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(version), "12."), "bookworm is Debian 12, got %q", version)
	for link, target := range map[string]string{"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64", "sbin": "usr/sbin"} {
		got, err := os.Readlink(filepath.Join(rootfs, link))
		require.NoError(t, err, "usrmerge link %s", link)
		assert.Equal(t, target, got)
	}
	for _, p := range []string{"usr/bin/dash", "usr/bin/apt-get", "usr/bin/dpkg", "usr/lib/x86_64-linux-gnu/libc.so.6"} {
		assert.FileExists(t, filepath.Join(rootfs, p))
	}
	debs, _ := filepath.Glob(filepath.Join(rootfs, "var/cache/apt/archives/*.deb"))
	assert.Empty(t, debs, "downloaded packages left in the rootfs")
	assertNothingMountedUnder(t, filepath.Dir(filepath.Dir(rootfs)))

	// A second lookup is a cache hit: no build, same tree.
	builds := cacheBuilds.Load()
	again := DebianRootfs(t)
	assert.Equal(t, rootfs, again)
	assert.Equal(t, builds, cacheBuilds.Load(), "the second call rebuilt the rootfs")
	if bi, err := readBuildInfo(rootfs); err == nil {
		t.Logf("rootfs %s: %s took %.1fs (built %s)", rootfs, bi.Step, bi.Seconds, bi.Built)
	}
}

func TestDebianLayer(t *testing.T) {
	upper := DebianLayer(t, debianTestPackages...)
	lower := DebianRootfs(t)
	merged := DebianRootfsWith(t, debianTestPackages...)

	for _, p := range []string{"/usr/bin/node", "/usr/bin/python3.11", "/usr/bin/redis-server"} {
		_, err := os.Lstat(filepath.Join(upper, p))
		require.NoError(t, err, "%s in the layer", p)
		f, err := elf.Open(resolveIn(t, merged, p))
		require.NoError(t, err, "%s is an ELF program", p)
		f.Close()
	}
	installed := dpkgInstalled(t, filepath.Join(upper, "var/lib/dpkg/status"))
	for _, p := range debianTestPackages {
		assert.True(t, installed[p], "dpkg status says %s is installed", p)
	}

	ov := scanOverlayUpper(t, upper, lower)
	t.Logf("layer %s: %d entries, %d whiteouts, %d opaque dirs", upper, ov.entries, len(ov.whiteouts), len(ov.opaques))
	assert.NotEmpty(t, ov.whiteouts, "the clean-up of apt's lists leaves whiteouts over the rootfs's")

	// Cleaned like a Dockerfile's RUN: no package cache, no lists, no
	// policy-rc.d, no device nodes from the chroot's /dev.
	for _, pattern := range []string{"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "usr/sbin/policy-rc.d", "dev/*", "proc/*"} {
		m, _ := filepath.Glob(filepath.Join(upper, pattern))
		assert.Empty(t, m, pattern)
	}
	if lists, err := os.ReadDir(filepath.Join(upper, "var/lib/apt/lists")); err == nil {
		for _, e := range lists {
			assert.Contains(t, ov.whiteouts, path.Join("/var/lib/apt/lists", e.Name()), "only whiteouts in the lists dir")
		}
	}
	assertNothingMountedUnder(t, filepath.Dir(filepath.Dir(upper)))

	builds := cacheBuilds.Load()
	assert.Equal(t, upper, DebianLayer(t, "redis-server", "python3", "nodejs"), "package order does not matter")
	assert.Equal(t, builds, cacheBuilds.Load(), "the second call rebuilt the layer")
	if bi, err := readBuildInfo(upper); err == nil {
		t.Logf("layer: %s took %.1fs (built %s)", bi.Step, bi.Seconds, bi.Built)
	}
}

// TestDebianRootfsWith checks the merged tree against the layer's overlay
// semantics and uses it as designed: ldd in a chroot finds every library
// of the packages' programs.
func TestDebianRootfsWith(t *testing.T) {
	upper := DebianLayer(t, debianTestPackages...)
	lower := DebianRootfs(t)
	merged := DebianRootfsWith(t, debianTestPackages...)
	ov := scanOverlayUpper(t, upper, lower)
	for _, w := range ov.whiteouts {
		_, err := os.Lstat(filepath.Join(merged, w))
		assert.ErrorIs(t, err, fs.ErrNotExist, "whiteout %s applied", w)
	}
	for _, dir := range ov.opaques {
		want := map[string]bool{}
		entries, err := os.ReadDir(filepath.Join(upper, dir))
		require.NoError(t, err)
		for _, e := range entries {
			if !contains(ov.whiteouts, path.Join(dir, e.Name())) {
				want[e.Name()] = true
			}
		}
		got := map[string]bool{}
		entries, err = os.ReadDir(filepath.Join(merged, dir))
		require.NoError(t, err)
		for _, e := range entries {
			got[e.Name()] = true
		}
		assert.Equal(t, want, got, "opaque %s hides the rootfs's entries", dir)
	}
	// Files of the layer win over the rootfs's.
	for _, p := range []string{"var/lib/dpkg/status", "etc/passwd"} {
		want, err := os.ReadFile(filepath.Join(upper, p))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(merged, p))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), p)
	}
	for _, prog := range []string{"/usr/bin/node", "/usr/bin/python3.11", "/usr/bin/redis-server"} {
		out, err := exec.Command("chroot", merged, "ldd", prog).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.NotContains(t, string(out), "not found", prog)
		assert.Contains(t, string(out), "libc.so.6", prog)
	}
	assertNothingMountedUnder(t, filepath.Dir(filepath.Dir(merged)))

	builds := cacheBuilds.Load()
	assert.Equal(t, merged, DebianRootfsWith(t, debianTestPackages...))
	assert.Equal(t, builds, cacheBuilds.Load(), "the second call rebuilt the merged tree")
	if bi, err := readBuildInfo(merged); err == nil {
		t.Logf("merged %s: %s took %.1fs", merged, bi.Step, bi.Seconds)
	}
}

type overlayUpper struct {
	entries   int
	whiteouts []string // image paths
	opaques   []string
}

// scanOverlayUpper checks that upper is what overlayfs writes: whiteouts
// as 0:0 character devices over entries the lower dir has, opaque
// directories marked trusted.overlay.opaque=y, no AUFS-style .wh. files,
// no other device nodes, and nothing a tar layer could not express
// (redirect or metacopy xattrs).
func scanOverlayUpper(t *testing.T, upper, lower string) overlayUpper {
	t.Helper()
	var ov overlayUpper
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(upper, p)
		require.NoError(t, err)
		img := path.Clean("/" + filepath.ToSlash(rel))
		if img == "/" {
			return nil
		}
		ov.entries++
		assert.False(t, strings.HasPrefix(d.Name(), ".wh."), "AUFS whiteout %s in an overlay upper dir", img)
		info, err := d.Info()
		require.NoError(t, err)
		st := info.Sys().(*syscall.Stat_t)
		switch {
		case info.Mode()&fs.ModeCharDevice != 0:
			assert.Equal(t, uint64(0), st.Rdev, "%s: a character device that is not a whiteout", img)
			_, err := os.Lstat(filepath.Join(lower, rel))
			assert.NoError(t, err, "whiteout %s hides nothing in the rootfs", img)
			ov.whiteouts = append(ov.whiteouts, img)
		case info.Mode()&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
			t.Errorf("%s: unexpected %v in the layer", img, info.Mode().Type())
		case info.IsDir():
			if v, ok := getxattr(p, "trusted.overlay.opaque"); ok {
				assert.Equal(t, "y", v, "%s opaque xattr", img)
				ov.opaques = append(ov.opaques, img)
			}
			fallthrough
		case info.Mode().IsRegular():
			for _, x := range []string{"trusted.overlay.redirect", "trusted.overlay.metacopy"} {
				_, ok := getxattr(p, x)
				assert.False(t, ok, "%s has %s", img, x)
			}
		}
		return nil
	})
	require.NoError(t, err)
	return ov
}

func getxattr(p, name string) (string, bool) {
	buf := make([]byte, 256)
	n, err := syscall.Getxattr(p, name, buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

// dpkgInstalled reads which packages a dpkg status file has installed.
func dpkgInstalled(t *testing.T, status string) map[string]bool {
	t.Helper()
	f, err := os.Open(status)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]bool{}
	pkg := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Package: "):
			pkg = strings.TrimPrefix(line, "Package: ")
		case strings.HasPrefix(line, "Status: ") && strings.HasSuffix(line, " installed"):
			out[pkg] = true
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func assertNothingMountedUnder(t *testing.T, dir string) {
	t.Helper()
	mounts, err := mountsUnder(dir)
	require.NoError(t, err)
	assert.Empty(t, mounts, "left mounted")
}

// TestDebianLayerFailureLeavesNothing runs the layer recipe against a
// mirror that does not exist: apt fails, and neither a mount nor a
// half-built entry may remain.
func TestDebianLayerFailureLeavesNothing(t *testing.T) {
	rootfs := DebianRootfs(t)
	cfg := debianSetup(t)
	cfg.mirror = "file:///nonexistent-nanofs-mirror/debian"
	base := t.TempDir()
	_, err := cachedDir(base, "k", func(dir string) error { return buildLayer(cfg, rootfs, []string{"hello"}, dir) })
	require.Error(t, err)
	t.Logf("%v", err)
	assert.Contains(t, err.Error(), "nonexistent-nanofs-mirror", "the error shows apt's complaint")
	assertOnlyEntries(t, base, "k.lock")
	assertNothingMountedUnder(t, base)
	assertNothingMountedUnder(t, filepath.Dir(rootfs))
}
