package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// arm64Program cross-compiles a tiny static Go program for linux/arm64: a
// real aarch64 ELF executable, without an aarch64 C toolchain.
func arm64Program(t *testing.T) []byte {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		t.Skipf("no go toolchain at %s to cross-compile an arm64 program", goBin)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"hi\") }\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hi\n\ngo 1.21\n"), 0o644))
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", "hi", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	data, err := os.ReadFile(filepath.Join(dir, "hi"))
	require.NoError(t, err)
	return data
}

// TestBuildWrongArchitecture: a program built for another machine or
// class than the unikernel's is refused by every verb that writes a disk
// or package, with an error naming the file, its machine and the target,
// and a non-zero exit; none of them leaves a disk behind.
func TestBuildWrongArchitecture(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the cases are written for an amd64 host")
	}
	fx := testimage.CFixtures(t)
	decoy, err := os.ReadFile(fx.HostPath(fx.Decoy)) // a 32-bit i386 shared object
	require.NoError(t, err)
	arm := arm64Program(t)
	reg := testimage.StartInProcessRegistry(t)
	image := func(repo string, platform v1.Platform, body []byte) string {
		spec := &testimage.Spec{
			Name: repo, Platform: platform,
			Config: v1.Config{Entrypoint: []string{"/bin/app"}},
			Layers: []testimage.LayerInput{{Entries: []testimage.Entry{
				testimage.Dir("bin", 0o755), testimage.File("bin/app", 0o755, string(body)),
			}}},
		}
		return reg.Push(t, repo, spec.Image(t, testimage.Gzip)).String()
	}
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64"}
	i386Ref := image("arch/i386", amd64, decoy)
	armRef := image("arch/arm64", arm64, arm)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"i386 program in an amd64 image", []string{"build", i386Ref, "--no-bootloader"},
			"/bin/app is a 32-bit i386 program, but the target is x86-64 (amd64)"},
		{"arm64 image without --platform", []string{"build", armRef, "--no-bootloader"},
			"/bin/app is a 64-bit aarch64 (arm64) program, but the target is x86-64 (amd64)"},
		{"arm64 image, --platform linux/arm64, disk for an amd64 host", []string{"build", armRef, "--platform", "linux/arm64", "--no-bootloader"},
			"/bin/app is a 64-bit aarch64 (arm64) program, but the target is x86-64 (amd64)"},
		{"run IMAGE", []string{"run", i386Ref},
			"/bin/app is a 32-bit i386 program"},
		{"pkg", []string{"pkg", i386Ref, "--name", "app_1.0"},
			"/bin/app is a 32-bit i386 program"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.args[0] == "run" && os.Getenv("NANOFS_KERNEL") == "" {
				t.Skip("run IMAGE needs a Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT")
			}
			dir := t.TempDir()
			t.Chdir(dir)
			code, _, stderr := imageRun(t, tt.args...)
			assert.Equal(t, exitBadInput, code)
			assert.Contains(t, stderr, tt.want)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing written")
		})
	}
}

// TestBuildAndBootHostileConfig: a config whose Entrypoint is [""] (cleared,
// as Docker reads it) and whose WorkingDir climbs above the root (cleaned
// to /etc) builds, and the unikernel boots and runs the Cmd.
func TestBuildAndBootHostileConfig(t *testing.T) {
	if len(kernelFlags()) != 0 {
		t.Skip("booting needs a Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT to kernel.img and boot.img (see `nanofs kernel fetch`)")
	}
	fx := testimage.CFixtures(t)
	spec := *testimage.FixturesSpec(t)
	spec.Name = "hostile-config"
	spec.Config = v1.Config{Entrypoint: []string{""}, Cmd: []string{fx.Static, "one"}, WorkingDir: "../../etc"}
	reg := testimage.StartInProcessRegistry(t)
	ref := reg.Push(t, "boot/hostile-config", spec.Image(t, testimage.Gzip)).String()
	dir := t.TempDir()
	disk := filepath.Join(dir, "boot.img")
	sum := runBuildCLI(t, ref, "-o", disk, "--cache-dir", filepath.Join(dir, "cache"))
	assert.Equal(t, fx.Static, sum.Program)
	assert.Equal(t, []string{fx.Static, "one"}, sum.Args)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"run", disk}, &stdout, &stderr)
	t.Logf("console:\n%s", stdout.String())
	assert.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "hello from nanofs fixture: cos(1) = 0.5")
	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"inspect", "--manifest", disk}, &stdout, &stderr), stderr.String())
	assert.Contains(t, stdout.String(), `"cwd": "/etc"`)
}
