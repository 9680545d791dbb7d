package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/resolve"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveTree(t *testing.T) {
	fx := testimage.CFixtures(t)
	code, stdout, stderr := mkfsRun(t, "resolve", "--root", fx.Root, "--entry", fx.Dynamic, "-a", "x", "--arch", "amd64")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, fx.Dynamic+" (interpreter => /lib64/ld-linux-x86-64.so.2)\n")
	assert.Contains(t, stdout, "    libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6\n")
	assert.Contains(t, stdout, "/etc/resolv.conf (generated: ")
	assert.Empty(t, stderr)

	// The directory may be given as the argument too.
	code, again, stderr := mkfsRun(t, "resolve", fx.Root, "--entry", fx.Dynamic, "-a", "x")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, stdout, again)
}

func TestResolveJSON(t *testing.T) {
	fx := testimage.CFixtures(t)
	code, stdout, stderr := mkfsRun(t, "resolve", "--root", fx.Root, "--entry", "hello.sh", "-a", "a1",
		"-e", "PATH=/usr/local/bin:/usr/bin", "--include", "/opt/app/lib/*.so", "--json")
	require.Equal(t, 0, code, stderr)
	var plan struct {
		Program string   `json:"program"`
		Args    []string `json:"args"`
		Scripts []string `json:"scripts"`
		Env     []string `json:"env"`
		Entries []struct {
			Path     string   `json:"path"`
			Kind     string   `json:"kind"`
			Mode     string   `json:"mode"`
			Size     int64    `json:"size"`
			Reason   string   `json:"reason"`
			NeededBy []string `json:"neededBy"`
		} `json:"entries"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &plan))
	assert.Equal(t, "/bin/sh", plan.Program)
	assert.Equal(t, []string{"/bin/sh", fx.ShebangSh, "a1"}, plan.Args)
	assert.Equal(t, []string{fx.ShebangSh}, plan.Scripts)
	assert.Equal(t, []string{"PATH=/usr/local/bin:/usr/bin", "HOSTNAME=nanos", "HOME=/root"}, plan.Env)
	kinds := map[string]string{}
	for _, e := range plan.Entries {
		kinds[e.Path] = e.Kind
		assert.NotEmpty(t, e.Reason, e.Path)
		assert.Len(t, e.Mode, 4, e.Path)
	}
	assert.Equal(t, "symlink", kinds["/bin"])
	assert.Equal(t, "file", kinds[fx.ShebangSh])
	assert.Equal(t, "file", kinds[fx.Plugin])
	assert.Equal(t, "dir", kinds["/usr"])
	assert.Equal(t, "generated", kinds["/etc/resolv.conf"])
}

func TestResolveErrors(t *testing.T) {
	fx := testimage.CFixtures(t)
	// A copy of the fixtures without libm.
	noLibm := t.TempDir()
	out, err := exec.Command("cp", "-a", fx.Root+"/.", noLibm).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, os.Remove(filepath.Join(noLibm, "usr/lib/x86_64-linux-gnu/libm.so.6")))
	notDir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o644))

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"missing library", []string{"resolve", "--root", noLibm, "--entry", fx.Dynamic},
			[]string{"library libm.so.6 needed by " + fx.Dynamic + " not found in the image", "/usr/lib (default)", "--include GLOB"}},
		{"wrong architecture", []string{"resolve", "--root", fx.Root, "--entry", fx.Dynamic, "--arch", "arm64"},
			[]string{"is a 64-bit x86-64 (amd64) program, but the target is aarch64 (arm64)"}},
		{"unknown architecture", []string{"resolve", "--root", fx.Root, "--entry", fx.Dynamic, "--arch", "vax"}, []string{"--arch: unknown architecture"}},
		{"no entry for a directory", []string{"resolve", "--root", fx.Root}, []string{"has no image config: name the program with --entry"}},
		{"nothing to resolve", []string{"resolve"}, []string{"name what to resolve"}},
		{"both", []string{"resolve", "--root", fx.Root, fx.Root, "--entry", "x"}, []string{"not both"}},
		{"unreachable registry", []string{"resolve", "127.0.0.1:1/nope", "--entry", "node"}, []string{"registry 127.0.0.1:1", "connection refused"}},
		{"not a directory", []string{"resolve", "--root", notDir, "--entry", "x"}, []string{"--root"}},
		{"include matching nothing", []string{"resolve", "--root", fx.Root, "--entry", fx.Dynamic, "--include", "/nonesuch/*"},
			[]string{"--include /nonesuch/* matches nothing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := mkfsRun(t, tt.args...)
			want := map[string]int{"missing library": exitBadInput, "wrong architecture": exitBadInput, "unreachable registry": exitNetwork}[tt.name]
			if want == 0 {
				want = exitFailure
			}
			assert.Equal(t, want, code)
			assert.Empty(t, stdout)
			require.True(t, strings.HasPrefix(stderr, "nanofs: "), stderr)
			for _, w := range tt.want {
				assert.Contains(t, stderr, w)
			}
		})
	}
}

// TestResolveImage resolves the entrypoint of a distroless image straight
// from a registry: no --entry needed, the image config names the program.
func TestResolveImage(t *testing.T) {
	fx := testimage.CFixtures(t)
	reg := testimage.StartInProcessRegistry(t)
	ref := reg.Push(t, "resolve/distroless", testimage.DistrolessSpec(t).Image(t, testimage.EStargz)).String()
	code, stdout, stderr := mkfsRun(t, "resolve", "--cache-dir", t.TempDir(), "--json", ref)
	require.Equal(t, 0, code, stderr)
	var plan struct {
		Program string
		Objects []resolve.Object
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &plan))
	assert.Equal(t, fx.Dynamic, plan.Program)
	var libs []string
	for _, o := range plan.Objects {
		libs = append(libs, o.Path)
	}
	for _, lib := range fx.Expected[fx.Dynamic] {
		assert.Contains(t, libs, lib, "the plan of %s", ref)
	}
}
