package resolve

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"path"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The C fixtures: real programs compiled at test time, with the host's
// real glibc and musl; the oracle is the host loader's own list (ldd)
// recorded by testimage.

func TestFixturesClosure(t *testing.T) {
	fx := testimage.CFixtures(t)
	fsys := os.DirFS(fx.Root)
	r := NewResolver(fsys)
	tests := []struct {
		name    string
		prog    string
		linkage Linkage
		libc    string
	}{
		{"dynamic", fx.Dynamic, Dynamic, "glibc"},
		{"static", fx.Static, Static, ""},
		{"static-pie", fx.StaticPIE, StaticPIE, ""},
		{"rpath $ORIGIN", fx.RpathOrigin, Dynamic, "glibc"},
		{"runpath $ORIGIN", fx.RunpathOrigin, Dynamic, "glibc"},
		{"dlopen", fx.Dlopen, Dynamic, "glibc"},
		{"class-mismatch decoy", fx.DecoyUser, Dynamic, "glibc"},
		{"musl", fx.Musl, Dynamic, "musl"},
		{"musl static", fx.MuslStatic, Static, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prog == "" {
				t.Skip("fixture not built: install musl-tools (musl-gcc)")
			}
			want, ok := fx.Expected[tt.prog]
			require.True(t, ok, "no expectation for %s", tt.prog)
			plan, err := r.Resolve(Config{Entrypoint: []string{tt.prog}}, WithoutExtras())
			require.NoError(t, err)
			assert.Equal(t, tt.prog, plan.Program)
			assert.Equal(t, tt.linkage, plan.Linkage)
			assert.Equal(t, tt.libc, plan.Libc)
			assert.Equal(t, hostCanonicals(t, fx.Root, want), libraryFiles(plan), "canonical library set")
			assert.Equal(t, cleanAll(want), libraryPaths(plan), "library paths as the loader opens them")
			assert.Empty(t, plan.Warnings)
			// Every library's file, and the links on the way, are in the plan.
			for _, lib := range want {
				for p := lib; p != "/"; p = path.Dir(p) {
					e, ok := plan.Lookup(hostCanonical(t, fx.Root, p))
					require.True(t, ok, "%s (for %s) not in the plan", p, lib)
					assert.NotEmpty(t, e.Reason)
				}
			}
			if tt.linkage == Static || tt.linkage == StaticPIE {
				assert.Empty(t, plan.Interpreter)
				assert.Len(t, plan.Objects, 1)
			}
		})
	}
}

func cleanAll(paths []string) []string {
	out := []string{}
	for _, p := range paths {
		out = append(out, path.Clean(p))
	}
	return out
}

func TestFixturesSymlinksBothWays(t *testing.T) {
	fx := testimage.CFixtures(t)
	plan, err := Resolve(os.DirFS(fx.Root), Config{Entrypoint: []string{fx.Dynamic}}, WithoutExtras())
	require.NoError(t, err)
	// /lib64/ld-linux-x86-64.so.2 goes through lib64 -> usr/lib64 and an
	// absolute link in usr/lib64, re-rooted at the image root.
	lib64, ok := plan.Lookup("/lib64")
	require.True(t, ok)
	assert.Equal(t, KindSymlink, lib64.Kind)
	assert.Equal(t, "usr/lib64", lib64.Target)
	ld, ok := plan.Lookup("/usr/lib64/ld-linux-x86-64.so.2")
	require.True(t, ok)
	assert.Equal(t, KindSymlink, ld.Kind)
	assert.True(t, strings.HasPrefix(ld.Target, "/"), "absolute link target %q", ld.Target)
	assert.Contains(t, ld.NeededBy, "/lib64/ld-linux-x86-64.so.2")
	real, ok := plan.Lookup(hostCanonical(t, fx.Root, "/lib64/ld-linux-x86-64.so.2"))
	require.True(t, ok)
	assert.Equal(t, KindFile, real.Kind)
	assert.Equal(t, reasonInterp, real.Reason)
	info, err := os.Stat(fx.HostPath(real.Path))
	require.NoError(t, err)
	assert.Equal(t, info.Size(), real.Size)
	assert.Equal(t, info.Mode().Perm(), real.Mode.Perm())
	// Parents come before children, each once.
	seen := map[string]bool{}
	for _, e := range plan.Entries {
		assert.False(t, seen[e.Path], "duplicate %s", e.Path)
		seen[e.Path] = true
		if d := path.Dir(e.Path); d != "/" {
			assert.True(t, seen[d], "%s listed before its parent", e.Path)
		}
	}
}

func TestFixturesShebang(t *testing.T) {
	fx := testimage.CFixtures(t)
	r := NewResolver(os.DirFS(fx.Root))
	tests := []struct {
		name     string
		script   string
		wantArgs []string
	}{
		{"#!/bin/sh", fx.ShebangSh, []string{"/bin/sh", fx.ShebangSh, "a1"}},
		// env's command is run directly: a unikernel cannot exec.
		{"#!/usr/bin/env sh", fx.ShebangEnv, []string{"sh", fx.ShebangEnv, "a1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			interps := fx.Interpreters[tt.script]
			require.NotEmpty(t, interps)
			plan, err := r.Resolve(Config{Cmd: []string{tt.script, "a1"}}, WithoutExtras())
			require.NoError(t, err)
			assert.Equal(t, []string{tt.script}, plan.Scripts)
			assert.Equal(t, interps[len(interps)-1], plan.Program)
			assert.Equal(t, tt.wantArgs, plan.Args)
			assert.Equal(t, hostCanonicals(t, fx.Root, fx.Expected[tt.script]), libraryFiles(plan))
			e, ok := plan.Lookup(tt.script)
			require.True(t, ok, "the script itself is in the plan")
			assert.Contains(t, e.Reason, reasonScript)
			// The script is found through PATH too.
			byName, err := r.Resolve(Config{Entrypoint: []string{path.Base(tt.script)}, Env: []string{"PATH=/usr/local/bin:/usr/bin"}}, WithoutExtras())
			require.NoError(t, err)
			assert.Equal(t, plan.Program, byName.Program)
		})
	}
}

func TestFixturesDecoyRejected(t *testing.T) {
	fx := testimage.CFixtures(t)
	// Without the right library only the 32-bit decoy is left: it is
	// rejected for its class, and the error says where it looked.
	fsys := hidingFS{fsys: os.DirFS(fx.Root), hide: []string{strings.TrimPrefix(fx.PrivateLib, "/")}}
	_, err := Resolve(fsys, Config{Entrypoint: []string{fx.DecoyUser}}, WithoutExtras())
	var miss *MissingLibraryError
	require.ErrorAs(t, err, &miss)
	assert.Equal(t, "libprivate.so", miss.Name)
	assert.Equal(t, fx.DecoyUser, miss.NeededBy)
	require.NotEmpty(t, miss.Rejected)
	assert.Contains(t, miss.Rejected[0], "lib32/libprivate.so: 32-bit ELF, want 64-bit")
	assert.Contains(t, miss.Searched[0], "/opt/app/bin/../lib32 (RPATH of "+fx.DecoyUser+")")
	assert.NotContains(t, err.Error(), "--", "a library's error names no CLI flag: the CLI adds the --env/--include hint")
	assert.Contains(t, err.Error(), "/usr/lib (default)")
}

func TestFixturesDlopenInclude(t *testing.T) {
	fx := testimage.CFixtures(t)
	fsys := os.DirFS(fx.Root)
	plan, err := Resolve(fsys, Config{Entrypoint: []string{fx.Dlopen}}, WithoutExtras())
	require.NoError(t, err)
	_, ok := plan.Lookup(fx.Plugin)
	assert.False(t, ok, "nothing in the headers names the plugin")

	plan, err = Resolve(fsys, Config{Entrypoint: []string{fx.Dlopen}}, WithoutExtras(), WithInclude("/opt/app/lib/libplug*.so"))
	require.NoError(t, err)
	e, ok := plan.Lookup(fx.Plugin)
	require.True(t, ok)
	assert.Equal(t, "include pattern /opt/app/lib/libplug*.so", e.Reason)
	var roles []Role
	for _, o := range plan.Objects {
		if o.Path == fx.Plugin {
			roles = append(roles, o.Role)
			assert.Equal(t, []Dependency{{Name: "libc.so.6", Path: "/lib/x86_64-linux-gnu/libc.so.6"}}, o.Needed)
		}
	}
	assert.Equal(t, []Role{RoleIncluded}, roles)

	_, err = Resolve(fsys, Config{Entrypoint: []string{fx.Dlopen}}, WithInclude("/opt/nothing/*"))
	assert.ErrorContains(t, err, "include /opt/nothing/* matches nothing")
	var ie *IncludeError
	assert.ErrorAs(t, err, &ie, "a typed error the CLI words as --include")
}

func TestFixturesArch(t *testing.T) {
	fx := testimage.CFixtures(t)
	_, err := Resolve(os.DirFS(fx.Root), Config{Entrypoint: []string{fx.Dynamic}}, WithMachine(elf.EM_AARCH64))
	var arch *ArchError
	require.ErrorAs(t, err, &arch)
	assert.Equal(t, elf.EM_X86_64, arch.Machine)
	assert.Contains(t, err.Error(), "x86-64 (amd64)")
	assert.Contains(t, err.Error(), "linux/arm64")

	plan, err := Resolve(os.DirFS(fx.Root), Config{Entrypoint: []string{fx.Dynamic}}, WithMachine(elf.EM_X86_64))
	require.NoError(t, err)
	assert.Equal(t, fx.Dynamic, plan.Program)
}

func TestFixturesExtras(t *testing.T) {
	fx := testimage.CFixtures(t)
	plan, err := Resolve(os.DirFS(fx.Root), Config{Entrypoint: []string{fx.Dynamic}, WorkingDir: "/srv/app"},
		WithNameservers("192.0.2.53"))
	require.NoError(t, err)
	// The fixture root has no /etc: resolv.conf is generated in a
	// generated /etc, the working directory is created.
	rc, ok := plan.Lookup("/etc/resolv.conf")
	require.True(t, ok)
	assert.Equal(t, KindGenerated, rc.Kind)
	assert.Contains(t, string(rc.Content), "nameserver 192.0.2.53\n")
	assert.EqualValues(t, len(rc.Content), rc.Size)
	etc, ok := plan.Lookup("/etc")
	require.True(t, ok)
	assert.Equal(t, KindDir, etc.Kind)
	wd, ok := plan.Lookup("/srv/app")
	require.True(t, ok)
	assert.Equal(t, KindDir, wd.Kind)
	assert.Equal(t, "/srv/app", plan.WorkingDir)

	var buf bytes.Buffer
	require.NoError(t, plan.WriteJSON(&buf))
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &decoded))
	assert.Equal(t, fx.Dynamic, decoded["program"])
	assert.Contains(t, buf.String(), `"kind": "generated"`)
	assert.Contains(t, buf.String(), `"content": "# generated by nanofs`)

	buf.Reset()
	require.NoError(t, plan.WriteTree(&buf))
	tree := buf.String()
	assert.Contains(t, tree, fx.Dynamic+" (interpreter => /lib64/ld-linux-x86-64.so.2)\n")
	assert.Contains(t, tree, "    libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6\n")
	assert.Contains(t, tree, "/etc/resolv.conf (generated: DNS resolver configuration, as a container runtime provides it)\n")

	// musl and static programs read /etc files themselves: no NSS modules.
	for _, prog := range []string{fx.Musl, fx.Static} {
		if prog == "" {
			continue
		}
		p, err := Resolve(os.DirFS(fx.Root), Config{Entrypoint: []string{prog}})
		require.NoError(t, err)
		assert.Empty(t, pathsOf(p, RoleRuntime), prog)
		_, ok := p.Lookup("/etc/resolv.conf")
		assert.True(t, ok, prog)
	}

	// The same inputs give the same plan.
	again, err := Resolve(os.DirFS(fx.Root), Config{Entrypoint: []string{fx.Dynamic}, WorkingDir: "/srv/app"},
		WithNameservers("192.0.2.53"))
	require.NoError(t, err)
	assert.Equal(t, plan, again)
}

func TestFixturesMissingProgram(t *testing.T) {
	fx := testimage.CFixtures(t)
	fsys := os.DirFS(fx.Root)
	tests := []struct {
		name string
		cfg  Config
		opts []Option
		want string
	}{
		{"no entrypoint", Config{}, nil, "names no program"},
		{"not in PATH", Config{Cmd: []string{"nonesuch"}}, nil, "no executable named nonesuch in PATH " + DefaultPath},
		{"missing path", Config{Cmd: []string{"/usr/bin/nonesuch"}}, nil, "/usr/bin/nonesuch: not found in the image"},
		{"a library is not a program", Config{}, []Option{WithEntry(fx.PrivateLib)}, "is a shared library, not a program"},
		{"a directory", Config{Cmd: []string{"/usr"}}, nil, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(fsys, tt.cfg, tt.opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			if tt.name == "no entrypoint" {
				assert.True(t, errors.Is(err, ErrNoEntrypoint))
			}
		})
	}
}

func TestFixturesIncludeSatisfiesMissing(t *testing.T) {
	fx := testimage.CFixtures(t)
	libm, err := os.ReadFile(fx.HostPath("/usr/lib/x86_64-linux-gnu/libm.so.6"))
	require.NoError(t, err)
	fsys := overlayFS{
		top:    fstest.MapFS{"opt/extra/libm.so.6": &fstest.MapFile{Data: libm, Mode: 0o644}},
		bottom: hidingFS{fsys: os.DirFS(fx.Root), hide: []string{"usr/lib/x86_64-linux-gnu/libm.so.6"}},
	}
	_, err = Resolve(fsys, Config{Entrypoint: []string{fx.Dynamic}})
	var miss *MissingLibraryError
	require.ErrorAs(t, err, &miss)
	assert.Equal(t, "libm.so.6", miss.Name)

	plan, err := Resolve(fsys, Config{Entrypoint: []string{fx.Dynamic}}, WithInclude("/opt/extra/*"))
	require.NoError(t, err)
	assert.Contains(t, libraryFiles(plan), "/opt/extra/libm.so.6")
	require.Len(t, plan.Warnings, 1)
	assert.Contains(t, plan.Warnings[0], "libm.so.6 (needed by "+fx.Dynamic+") is not on the loader's search path; using /opt/extra/libm.so.6")

	// Or with LD_LIBRARY_PATH, as the loader will find it at run time.
	plan, err = Resolve(fsys, Config{Entrypoint: []string{fx.Dynamic}}, WithEnv("LD_LIBRARY_PATH=/opt/extra"))
	require.NoError(t, err)
	assert.Contains(t, libraryFiles(plan), "/opt/extra/libm.so.6")
	assert.Empty(t, plan.Warnings)
}

func TestFixturesClosureOfLibrary(t *testing.T) {
	fx := testimage.CFixtures(t)
	r := NewResolver(os.DirFS(fx.Root))
	plan, err := r.Closure(fx.PrivateLib, WithoutExtras())
	require.NoError(t, err)
	assert.Equal(t, Library, plan.Linkage)
	assert.Equal(t, glibcLoader, plan.Interpreter)
	assert.Equal(t, hostCanonicals(t, fx.Root, []string{"/lib/x86_64-linux-gnu/libc.so.6", glibcLoader}), libraryFiles(plan))

	plan, err = r.Closure(fx.Decoy, WithoutExtras())
	require.NoError(t, err)
	assert.Equal(t, StaticPIE, plan.Linkage, "no interpreter, no libraries")

	_, err = r.Closure("relative/path")
	assert.ErrorContains(t, err, "not an absolute path")
}
