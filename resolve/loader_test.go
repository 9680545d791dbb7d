package resolve

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The loaders' search rules, each checked against the real loader: a copy
// of the C fixtures tree is changed (files moved, copied, linked; the
// fixtures' own dynamic strings patched in place), then glibc's or musl's
// loader lists, in a chroot of it, what it would load (ld.so --list, what
// ldd runs). Nothing of the fixture program runs.

const (
	glibcLoader = "/lib64/ld-linux-x86-64.so.2"
	muslLoader  = "/lib/ld-musl-x86_64.so.1"
)

type loaderScenario struct {
	name   string
	prog   func(fx *testimage.Fixtures) string
	setup  func(t *testing.T, fx *testimage.Fixtures, dir string)
	env    []string
	loader string
	// samePaths also compares the paths as the loader opens them (not
	// only where they lead).
	samePaths bool
	want      []string // canonical libraries expected, beyond the loader's word
	missing   []string
}

func fixturesFile(fx *testimage.Fixtures, dir, p string) string {
	return filepath.Join(dir, filepath.FromSlash(p))
}

func writeFile(t *testing.T, dir, p, content string) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(p))
	require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
	require.NoError(t, os.WriteFile(full, []byte(content), 0o644))
}

func cp(t *testing.T, dir, from, to string) {
	t.Helper()
	dst := filepath.Join(dir, filepath.FromSlash(to))
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	out, err := exec.Command("cp", "-L", filepath.Join(dir, filepath.FromSlash(from)), dst).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func mv(t *testing.T, dir, from, to string) {
	t.Helper()
	dst := filepath.Join(dir, filepath.FromSlash(to))
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	require.NoError(t, os.Rename(filepath.Join(dir, filepath.FromSlash(from)), dst))
}

func rm(t *testing.T, dir, p string) {
	t.Helper()
	require.NoError(t, os.RemoveAll(filepath.Join(dir, filepath.FromSlash(p))))
}

func ldconfig(t *testing.T, dir string) {
	t.Helper()
	bin, err := exec.LookPath("ldconfig")
	if err != nil {
		bin = "/sbin/ldconfig"
	}
	out, err := exec.Command(bin, "-r", dir, "-X").CombinedOutput()
	require.NoError(t, err, "ldconfig: %s", out)
}

func rpathProg(fx *testimage.Fixtures) string   { return fx.RpathOrigin }
func runpathProg(fx *testimage.Fixtures) string { return fx.RunpathOrigin }
func decoyProg(fx *testimage.Fixtures) string   { return fx.DecoyUser }
func dynProg(fx *testimage.Fixtures) string     { return fx.Dynamic }
func muslProg(fx *testimage.Fixtures) string    { return fx.Musl }

// libmOnlyInAppLib makes libprivate.so need libm.so.6 (instead of
// libc.so.6, which the program needs itself) and moves libm into the
// program's $ORIGIN/../lib, where only the program's run path leads.
func libmOnlyInAppLib(t *testing.T, fx *testimage.Fixtures, dir string) {
	patchDynString(t, fixturesFile(fx, dir, fx.PrivateLib), "libc.so.6", "libm.so.6")
	mv(t, dir, "/usr/lib/x86_64-linux-gnu/libm.so.6", "/opt/app/lib/libm.so.6")
}

func privateInLLP(t *testing.T, fx *testimage.Fixtures, dir string) {
	cp(t, dir, fx.PrivateLib, "/opt/llp/libprivate.so")
}

var loaderScenarios = []loaderScenario{
	{name: "decoy of the wrong class skipped", prog: decoyProg, loader: glibcLoader, samePaths: true},
	{name: "RPATH serves the dependencies of dependencies", prog: rpathProg, setup: libmOnlyInAppLib, loader: glibcLoader, samePaths: true,
		want: []string{"/opt/app/lib/libm.so.6"}},
	{name: "RUNPATH serves only direct dependencies", prog: runpathProg, setup: libmOnlyInAppLib, loader: glibcLoader, samePaths: true,
		missing: []string{"libm.so.6"}},
	{name: "RPATH before LD_LIBRARY_PATH", prog: rpathProg, setup: privateInLLP, env: []string{"LD_LIBRARY_PATH=/opt/llp"},
		loader: glibcLoader, samePaths: true, want: []string{"/opt/app/lib/libprivate.so"}},
	{name: "LD_LIBRARY_PATH before RUNPATH", prog: runpathProg, setup: privateInLLP, env: []string{"LD_LIBRARY_PATH=/opt/nothing;/opt/llp"},
		loader: glibcLoader, samePaths: true, want: []string{"/opt/llp/libprivate.so"}},
	{name: "ld.so.conf include glob through the cache", prog: rpathProg, loader: glibcLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			mv(t, dir, fx.PrivateLib, "/opt/conf/libprivate.so")
			writeFile(t, dir, "/etc/ld.so.conf", "# comment\ninclude /etc/ld.so.conf.d/*.conf\n")
			writeFile(t, dir, "/etc/ld.so.conf.d/app.conf", "/opt/conf/  # trailing slash and comment\n")
			writeFile(t, dir, "/etc/ld.so.conf.d/other.disabled", "/opt/other\n")
			cp(t, dir, "/opt/conf/libprivate.so", "/opt/other/libprivate.so")
			ldconfig(t, dir)
		}, want: []string{"/opt/conf/libprivate.so"}},
	{name: "ld.so.conf without a cache is not read", prog: rpathProg, loader: glibcLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			mv(t, dir, fx.PrivateLib, "/opt/conf/libprivate.so")
			writeFile(t, dir, "/etc/ld.so.conf", "/opt/conf\n")
		}, missing: []string{"libprivate.so"}},
	{name: "$LIB", prog: decoyProg, loader: glibcLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			patchDynString(t, fixturesFile(fx, dir, fx.DecoyUser), "$ORIGIN/../lib32:$ORIGIN/../lib", "/opt/$LIB:/opt/${PLATFORM}")
			mv(t, dir, fx.PrivateLib, "/opt/lib/x86_64-linux-gnu/libprivate.so")
			cp(t, dir, "/opt/lib/x86_64-linux-gnu/libprivate.so", "/opt/x86_64/libprivate.so")
		}, want: []string{"/opt/lib/x86_64-linux-gnu/libprivate.so"}},
	{name: "${PLATFORM}", prog: decoyProg, loader: glibcLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			patchDynString(t, fixturesFile(fx, dir, fx.DecoyUser), "$ORIGIN/../lib32:$ORIGIN/../lib", "/opt/$LIB:/opt/${PLATFORM}")
			mv(t, dir, fx.PrivateLib, "/opt/x86_64/libprivate.so")
		}, want: []string{"/opt/x86_64/libprivate.so"}},
	{name: "${ORIGIN} in braces", prog: rpathProg, loader: glibcLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			patchDynString(t, fixturesFile(fx, dir, fx.RpathOrigin), "$ORIGIN/../lib", "${ORIGIN}")
			mv(t, dir, fx.PrivateLib, "/opt/app/bin/libprivate.so")
		}, want: []string{"/opt/app/bin/libprivate.so"}},
	{name: "DT_NEEDED with a path and $ORIGIN", prog: rpathProg, loader: glibcLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			patchDynString(t, fixturesFile(fx, dir, fx.RpathOrigin), "libprivate.so", "$ORIGIN/p.so")
			mv(t, dir, fx.PrivateLib, "/opt/app/bin/p.so")
		}, want: []string{"/opt/app/bin/p.so"}},
	{name: "absolute link re-rooted at the image root", prog: rpathProg, loader: glibcLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			mv(t, dir, "/opt/app/lib", "/srv/lib")
			require.NoError(t, os.Symlink("/srv/lib", filepath.Join(dir, "opt/app/lib")))
		}, want: []string{"/srv/lib/libprivate.so"}},
	{name: ".. is physical, after links", prog: rpathProg, loader: glibcLoader,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			// /opt/app/bin -> /srv/x/bin: $ORIGIN/../lib is /srv/x/lib, not
			// the /opt/app/lib a textual clean-up would give.
			mv(t, dir, "/opt/app/bin", "/srv/x/bin")
			cp(t, dir, fx.PrivateLib, "/srv/x/lib/libprivate.so")
			require.NoError(t, os.Symlink("/srv/x/bin", filepath.Join(dir, "opt/app/bin")))
		}, want: []string{"/srv/x/lib/libprivate.so"}},
	{name: "DF_1_NODEFLIB skips the cache and default directories", prog: rpathProg, loader: glibcLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			setDynFlags1(t, fixturesFile(fx, dir, fx.RpathOrigin), elf.DF_1_NODEFLIB)
		}, missing: []string{"libc.so.6"}},
	{name: "LD_PRELOAD", prog: dynProg, loader: glibcLoader, samePaths: true, env: []string{"LD_PRELOAD=libprivate.so /opt/app/lib/libplugin.so"},
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			cp(t, dir, fx.PrivateLib, "/usr/lib/x86_64-linux-gnu/libprivate.so")
		}, want: []string{"/usr/lib/x86_64-linux-gnu/libprivate.so", "/opt/app/lib/libplugin.so"}},
	{name: "/etc/ld.so.preload", prog: dynProg, loader: glibcLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			writeFile(t, dir, "/etc/ld.so.preload", "/opt/app/lib/libplugin.so\n")
		}, want: []string{"/opt/app/lib/libplugin.so"}},
	{name: "musl path file", prog: muslProg, loader: muslLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			patchDynString(t, fixturesFile(fx, dir, fx.Musl), "libc.so", "libq.so")
			cp(t, dir, fx.PrivateLib, "/opt/musl/libq.so")
			cp(t, dir, fx.PrivateLib, "/usr/lib/libq.so")
			writeFile(t, dir, "/etc/ld-musl-x86_64.path", "/opt/none:/opt/musl\n")
		}, want: []string{"/opt/musl/libq.so"}},
	{name: "musl default path", prog: muslProg, loader: muslLoader, samePaths: true,
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			patchDynString(t, fixturesFile(fx, dir, fx.Musl), "libc.so", "libq.so")
			cp(t, dir, fx.PrivateLib, "/opt/musl/libq.so")
			cp(t, dir, fx.PrivateLib, "/usr/lib/libq.so")
		}, want: []string{"/usr/lib/libq.so"}},
	{name: "musl LD_LIBRARY_PATH", prog: muslProg, loader: muslLoader, samePaths: true, env: []string{"LD_LIBRARY_PATH=/opt/musl"},
		setup: func(t *testing.T, fx *testimage.Fixtures, dir string) {
			patchDynString(t, fixturesFile(fx, dir, fx.Musl), "libc.so", "libq.so")
			cp(t, dir, fx.PrivateLib, "/opt/musl/libq.so")
			cp(t, dir, fx.PrivateLib, "/usr/lib/libq.so")
		}, want: []string{"/opt/musl/libq.so"}},
}

func TestLoaderScenarios(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the loader oracle runs ld.so --list in a chroot, which needs root")
	}
	fx := testimage.CFixtures(t)
	for _, sc := range loaderScenarios {
		t.Run(sc.name, func(t *testing.T) {
			prog := sc.prog(fx)
			if prog == "" {
				t.Skip("fixture not built: install musl-tools (musl-gcc)")
			}
			dir := t.TempDir()
			copyTree(t, fx.Root, dir)
			if sc.setup != nil {
				sc.setup(t, fx, dir)
			}
			out, err := loaderList(dir, sc.loader, prog, sc.env)
			require.NoError(t, err, "%s %s: %s", sc.loader, prog, out)
			ldd := parseLdd(out)
			require.Empty(t, ldd.Errors, "%s", out)

			plan, err := Resolve(os.DirFS(dir), Config{Entrypoint: []string{prog}, Env: sc.env}, WithoutExtras(), WithAllowMissing())
			require.NoError(t, err)
			assert.Equal(t, hostCanonicals(t, dir, ldd.Found), libraryFiles(plan), "canonical libraries; loader said:\n%s", out)
			if sc.samePaths {
				assert.Equal(t, ldd.Found, sortedPaths(plan), "paths as opened; loader said:\n%s", out)
			}
			assert.Equal(t, nilIfEmpty(ldd.Missing), nilIfEmpty(missingNames(plan)))
			for _, w := range sc.want {
				assert.Contains(t, libraryFiles(plan), w)
			}
			assert.Equal(t, nilIfEmpty(sc.missing), nilIfEmpty(missingNames(plan)))
			if len(plan.Missing) > 0 {
				_, err := Resolve(os.DirFS(dir), Config{Entrypoint: []string{prog}, Env: sc.env}, WithoutExtras())
				var miss *MissingLibraryError
				require.ErrorAs(t, err, &miss)
				assert.Contains(t, err.Error(), "needed by")
			}
		})
	}
}

// loaderList runs the loader in list mode, as ldd does, inside a chroot
// of dir (the chroot(2) is made by the child itself, so no host program
// sees env).
func loaderList(dir, loader, prog string, env []string) (string, error) {
	cmd := exec.Command(loader, prog)
	if loader == muslLoader {
		cmd = exec.Command(loader, "--list", prog)
	}
	cmd.Env = append([]string{"LC_ALL=C", "LD_TRACE_LOADED_OBJECTS=1"}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func sortedPaths(p *Plan) []string {
	var out []string
	for _, o := range p.Libraries() {
		out = append(out, o.Path)
	}
	sortStrings(out)
	return out
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && strings.Compare(s[j-1], s[j]) > 0; j-- {
			s[j-1], s[j] = s[j], s[j-1]
		}
	}
}
