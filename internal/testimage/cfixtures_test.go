package testimage

import (
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// elfWant describes what a fixture's ELF headers must say; zero values are
// not checked unless the field says otherwise.
type elfWant struct {
	class   elf.Class
	machine elf.Machine
	typ     elf.Type
	interp  string // "-" for no PT_INTERP
	needed  []string
	soname  string
	rpath   []string // nil: must have no DT_RPATH
	runpath []string // nil: must have no DT_RUNPATH
}

func TestCFixturesELFKinds(t *testing.T) {
	fx := CFixtures(t)
	const glibcInterp = "/lib64/ld-linux-x86-64.so.2"
	tests := []struct {
		name string
		path string
		want elfWant
	}{
		{"dynamic", fx.Dynamic, elfWant{class: elf.ELFCLASS64, machine: elf.EM_X86_64, interp: glibcInterp, needed: []string{"libm.so.6", "libc.so.6"}}},
		{"static", fx.Static, elfWant{class: elf.ELFCLASS64, machine: elf.EM_X86_64, typ: elf.ET_EXEC, interp: "-", needed: []string{}}},
		{"static-pie", fx.StaticPIE, elfWant{class: elf.ELFCLASS64, machine: elf.EM_X86_64, typ: elf.ET_DYN, interp: "-", needed: []string{}}},
		{"rpath", fx.RpathOrigin, elfWant{class: elf.ELFCLASS64, interp: glibcInterp, needed: []string{"libprivate.so", "libc.so.6"}, rpath: []string{"$ORIGIN/../lib"}}},
		{"runpath", fx.RunpathOrigin, elfWant{class: elf.ELFCLASS64, interp: glibcInterp, needed: []string{"libprivate.so", "libc.so.6"}, runpath: []string{"$ORIGIN/../lib"}}},
		{"private lib", fx.PrivateLib, elfWant{class: elf.ELFCLASS64, typ: elf.ET_DYN, interp: "-", needed: []string{"libc.so.6"}, soname: "libprivate.so"}},
		{"dlopen", fx.Dlopen, elfWant{class: elf.ELFCLASS64, interp: glibcInterp, needed: []string{"libc.so.6"}, runpath: []string{"$ORIGIN/../lib"}}},
		{"plugin", fx.Plugin, elfWant{class: elf.ELFCLASS64, typ: elf.ET_DYN, interp: "-", needed: []string{"libc.so.6"}, soname: "libplugin.so"}},
		{"decoy", fx.Decoy, elfWant{class: elf.ELFCLASS32, machine: elf.EM_386, typ: elf.ET_DYN, interp: "-", needed: []string{}, soname: "libprivate.so"}},
		{"decoy user", fx.DecoyUser, elfWant{class: elf.ELFCLASS64, interp: glibcInterp, needed: []string{"libprivate.so", "libc.so.6"}, rpath: []string{"$ORIGIN/../lib32:$ORIGIN/../lib"}}},
		{"musl", fx.Musl, elfWant{class: elf.ELFCLASS64, machine: elf.EM_X86_64, interp: "/lib/ld-musl-x86_64.so.1", needed: []string{"libc.so"}}},
		{"musl static", fx.MuslStatic, elfWant{class: elf.ELFCLASS64, machine: elf.EM_X86_64, interp: "-", needed: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path == "" {
				t.Skip("not built: install musl-tools for the musl fixtures")
			}
			f, err := elf.Open(fx.HostPath(tt.path))
			require.NoError(t, err)
			defer f.Close()
			w := tt.want
			assert.Equal(t, w.class, f.Class)
			if w.machine != 0 {
				assert.Equal(t, w.machine, f.Machine)
			}
			if w.typ != 0 {
				assert.Equal(t, w.typ, f.Type)
			}
			interp, err := elfInterp(fx.HostPath(tt.path))
			require.NoError(t, err)
			if w.interp == "-" {
				assert.Empty(t, interp, "PT_INTERP")
			} else {
				assert.Equal(t, w.interp, interp, "PT_INTERP")
			}
			if w.needed != nil {
				needed, err := f.ImportedLibraries()
				require.NoError(t, err)
				assert.ElementsMatch(t, w.needed, needed, "DT_NEEDED")
			}
			dynStrings := func(tag elf.DynTag) []string {
				s, err := f.DynString(tag)
				require.NoError(t, err)
				return s
			}
			if w.soname != "" {
				assert.Equal(t, []string{w.soname}, dynStrings(elf.DT_SONAME))
			}
			if f.Class == elf.ELFCLASS64 && interp != "" {
				assert.Equal(t, w.rpath, dynStrings(elf.DT_RPATH), "DT_RPATH")
				assert.Equal(t, w.runpath, dynStrings(elf.DT_RUNPATH), "DT_RUNPATH")
			}
		})
	}

	t.Run("decoy shadows the private lib", func(t *testing.T) {
		assert.Equal(t, path.Base(fx.PrivateLib), path.Base(fx.Decoy))
		assert.Equal(t, "/opt/app/lib32", path.Dir(fx.Decoy))
		assert.Equal(t, fx.PrivateLib, fx.Expected[fx.DecoyUser][slices.IndexFunc(fx.Expected[fx.DecoyUser], func(p string) bool {
			return path.Base(p) == "libprivate.so"
		})], "the right libprivate.so is the 64-bit one")
	})
	t.Run("dlopen names the plugin only in its data", func(t *testing.T) {
		data, err := os.ReadFile(fx.HostPath(fx.Dlopen))
		require.NoError(t, err)
		assert.Contains(t, string(data), path.Base(fx.Plugin))
		assert.NotContains(t, fx.Expected[fx.Dlopen], fx.Plugin)
	})
	t.Run("scripts", func(t *testing.T) {
		for script, shebang := range map[string]string{fx.ShebangSh: "#!/bin/sh\n", fx.ShebangEnv: "#!/usr/bin/env sh\n"} {
			data, err := os.ReadFile(fx.HostPath(script))
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(string(data), shebang), "%s starts with %q", script, shebang)
			info, err := os.Stat(fx.HostPath(script))
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o755), info.Mode().Perm())
		}
	})
}

// resolveIn follows p inside root as a chroot would (absolute link
// targets start again at root) and returns the host path of the result.
func resolveIn(t *testing.T, root, p string) string {
	t.Helper()
	cur := "/"
	rest := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
	for hops := 0; len(rest) > 0; {
		next := path.Join(cur, rest[0])
		rest = rest[1:]
		info, err := os.Lstat(filepath.Join(root, next))
		require.NoError(t, err, "%s (resolving %s)", next, p)
		if info.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		hops++
		require.Less(t, hops, 40, "link loop resolving %s", p)
		target, err := os.Readlink(filepath.Join(root, next))
		require.NoError(t, err)
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
	}
	return filepath.Join(root, cur)
}

func TestCFixturesLayout(t *testing.T) {
	fx := CFixtures(t)
	// usrmerge, as in Debian bookworm (and on the bookworm host it mirrors).
	for link, target := range map[string]string{"/lib": "usr/lib", "/lib64": "usr/lib64", "/bin": "usr/bin", "/sbin": "usr/sbin"} {
		got, err := os.Readlink(fx.HostPath(link))
		require.NoError(t, err, "%s must be a usrmerge link", link)
		assert.Equal(t, target, got, link)
	}
	dash := resolveIn(t, fx.Root, "/bin/sh")
	assert.Equal(t, "dash", filepath.Base(dash))
	for _, interp := range []string{"/bin/sh", "/usr/bin/env", "/usr/bin/sh"} {
		f, err := elf.Open(resolveIn(t, fx.Root, interp))
		require.NoError(t, err, interp)
		f.Close()
	}
	// Every expected path exists in the image, as an ELF file of the
	// program's class, reached without leaving the root.
	for prog, libs := range fx.Expected {
		for _, lib := range libs {
			real := resolveIn(t, fx.Root, lib)
			f, err := elf.Open(real)
			require.NoError(t, err, "%s needs %s", prog, lib)
			assert.Equal(t, elf.ELFCLASS64, f.Class, lib)
			f.Close()
		}
	}
	for _, prog := range fx.Programs() {
		_, ok := fx.Expected[prog]
		assert.True(t, ok, "Expected has an entry for %s", prog)
	}
	for _, static := range []string{fx.Static, fx.StaticPIE, fx.MuslStatic} {
		if static != "" {
			assert.Nil(t, fx.Expected[static], static)
		}
	}
	glibc := []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	assert.Equal(t, []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6", "/lib64/ld-linux-x86-64.so.2"}, fx.Expected[fx.Dynamic])
	assert.Equal(t, append([]string{"/lib/x86_64-linux-gnu/libc.so.6"}, "/lib64/ld-linux-x86-64.so.2", fx.PrivateLib), fx.Expected[fx.RpathOrigin])
	assert.Equal(t, fx.Expected[fx.RpathOrigin], fx.Expected[fx.RunpathOrigin])
	assert.Equal(t, fx.Expected[fx.RpathOrigin], fx.Expected[fx.DecoyUser])
	assert.Equal(t, glibc, fx.Expected[fx.Dlopen])
	assert.Equal(t, glibc, fx.Expected[fx.ShebangSh])
	assert.Equal(t, glibc, fx.Expected[fx.ShebangEnv])
	if fx.Musl != "" {
		assert.Equal(t, []string{"/lib/ld-musl-x86_64.so.1"}, fx.Expected[fx.Musl])
	}
}

// lddLine matches the lines of ldd output that name a file.
var lddLine = regexp.MustCompile(`^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$`)

// listLibs runs cmd (a loader in list mode) and returns the files it
// names, cleaned, with prefix cut off, sorted.
func listLibs(t *testing.T, cmd *exec.Cmd, prefix string) []string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s: %s", cmd.Args, out)
	set := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		m := lddLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		p := path.Clean(m[1])
		if prefix != "" && strings.HasPrefix(p, prefix+"/") {
			p = strings.TrimPrefix(p, prefix)
		}
		set[p] = true
	}
	var libs []string
	for p := range set {
		libs = append(libs, p)
	}
	sort.Strings(libs)
	return libs
}

// TestCFixturesExpectedMatchesLdd checks Expected against two oracles: the
// host's ldd on the programs, and (as root) each program's own loader from
// the image run with --list in a chroot of Root, where no ld.so.cache
// exists and only the image's files can be found.
func TestCFixturesExpectedMatchesLdd(t *testing.T) {
	fx := CFixtures(t)
	for _, prog := range []string{fx.Dynamic, fx.RpathOrigin, fx.RunpathOrigin, fx.Dlopen, fx.DecoyUser, fx.Musl} {
		if prog == "" {
			continue
		}
		t.Run(path.Base(prog), func(t *testing.T) {
			interp, err := elfInterp(fx.HostPath(prog))
			require.NoError(t, err)
			if !strings.Contains(interp, "musl") {
				got := listLibs(t, exec.Command("ldd", fx.HostPath(prog)), fx.Root)
				assert.Equal(t, fx.Expected[prog], got, "host ldd")
			}
			if os.Geteuid() != 0 {
				t.Log("not root: skipping the chroot oracle")
				return
			}
			got := listLibs(t, exec.Command("chroot", fx.Root, interp, "--list", prog), "")
			assert.Equal(t, fx.Expected[prog], got, "the image's own loader in a chroot")
		})
	}
	for _, static := range []string{fx.Static, fx.StaticPIE} {
		out, _ := exec.Command("ldd", fx.HostPath(static)).CombinedOutput()
		assert.Regexp(t, `not a dynamic executable|statically linked`, string(out), static)
	}
}

// TestCFixturesRun runs every fixture (they are ours) inside a chroot of
// Root as root, else on the host, to prove they are real, working
// programs: the decoy user loads past the 32-bit decoy, dlopen finds the
// plugin, the scripts find their interpreters in the image.
func TestCFixturesRun(t *testing.T) {
	fx := CFixtures(t)
	asRoot := os.Geteuid() == 0
	tests := []struct {
		prog string
		want string
	}{
		{fx.Dynamic, "hello from nanofs fixture: cos(1) = 0.5"},
		{fx.Static, "hello from nanofs fixture: cos(1) = 0.5"},
		{fx.StaticPIE, "hello from nanofs fixture: cos(1) = 0.5"},
		{fx.Musl, "hello from nanofs fixture: cos(1) = 0.5"},
		{fx.MuslStatic, "hello from nanofs fixture: cos(1) = 0.5"},
		{fx.RpathOrigin, "private library answers rpath"},
		{fx.RunpathOrigin, "private library answers rpath"},
		{fx.DecoyUser, "private library answers rpath"},
		{fx.Dlopen, "plugin loaded"},
		{fx.ShebangSh, "hello from a /bin/sh script: x"},
		{fx.ShebangEnv, "hello from an env script: x"},
	}
	for _, tt := range tests {
		if tt.prog == "" {
			continue
		}
		t.Run(path.Base(tt.prog), func(t *testing.T) {
			var cmd *exec.Cmd
			switch {
			case asRoot:
				// Through the image's loader: run directly, glibc takes
				// $ORIGIN from /proc/self/exe, and the chroot has no /proc.
				interp := ""
				if !strings.HasSuffix(tt.prog, ".sh") {
					var err error
					interp, err = elfInterp(fx.HostPath(tt.prog))
					require.NoError(t, err)
				}
				if interp != "" {
					cmd = exec.Command("chroot", fx.Root, interp, tt.prog, "x")
				} else {
					cmd = exec.Command("chroot", fx.Root, tt.prog, "x")
				}
			case strings.HasSuffix(tt.prog, ".sh"):
				t.Skip("scripts run in a chroot of the image only (needs root)")
			default:
				cmd = exec.Command(fx.HostPath(tt.prog), "x")
			}
			cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), tt.want)
		})
	}
}

// TestCFixturesCached loads the fixtures again, bypassing the per-process
// memo, and checks that the on-disk entry is reused, not rebuilt.
func TestCFixturesCached(t *testing.T) {
	fx := CFixtures(t)
	builds := cacheBuilds.Load()
	again, skip, err := loadCFixtures()
	require.NoError(t, err)
	require.Empty(t, skip)
	assert.Equal(t, builds, cacheBuilds.Load(), "second load rebuilt the fixtures")
	assert.Equal(t, fx, again)
	base, err := cacheBase("cfixtures")
	require.NoError(t, err)
	assert.Equal(t, base, filepath.Dir(filepath.Dir(fx.Root)))
	assert.FileExists(t, filepath.Join(filepath.Dir(fx.Root), completeMarker))
	t.Logf("C fixtures cached in %s", fx.Root)
}
