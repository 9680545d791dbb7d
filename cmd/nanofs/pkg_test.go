package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/vm/build"
)

// runPkgCLI runs `nanofs pkg --json` in-process and decodes the summary.
func runPkgCLI(t *testing.T, args ...string) build.PackageSummary {
	t.Helper()
	return runJSONCLI[build.PackageSummary](t, "pkg", args...)
}

// TestPkg makes a package of the distroless image's program and checks it
// against mutate.Extract of the image: every file of sysroot is the
// image's file, the manifest is the image's entrypoint, and the archive
// and the installed directory hold the same package.
func TestPkg(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	spec := testimage.DistrolessSpec(t)
	img := spec.Image(t, testimage.EStargz)
	ref := reg.Push(t, "pkg/distroless:1.0", img).String()
	extracted := testimage.ExtractTree(t, img)
	dir := t.TempDir()
	home := filepath.Join(dir, "ops")
	archive := filepath.Join(dir, "d.tar.gz")

	sum := runPkgCLI(t, ref, "-o", archive, "--ops-home", home, "--cache-dir", filepath.Join(dir, "cache"), "-e", "MODE=test")
	assert.Equal(t, "distroless_1.0", sum.Name)
	assert.Equal(t, archive, sum.Archive)
	pkgDir := filepath.Join(home, "local_packages", "amd64", "distroless_1.0")
	assert.Equal(t, pkgDir, sum.Installed)
	assert.Equal(t, spec.Config.Entrypoint[0], sum.Manifest.Program)
	assert.Equal(t, "1.0", sum.Manifest.Version)
	assert.Equal(t, "test", sum.Manifest.Env["MODE"])
	assert.Positive(t, sum.Files)

	data, err := os.ReadFile(filepath.Join(pkgDir, "package.manifest"))
	require.NoError(t, err)
	var manifest map[string]any
	require.NoError(t, json.Unmarshal(data, &manifest))
	assert.Equal(t, spec.Config.Entrypoint[0], manifest["Program"], "the key ops reads")
	assert.Equal(t, "1.0", manifest["Version"])

	sysroot := filepath.Join(pkgDir, "sysroot")
	got, err := testimage.TreeFromFS(os.DirFS(sysroot))
	require.NoError(t, err)
	files := 0
	for p, n := range got {
		switch {
		case runtimeProvided[p] || n.Mode.IsDir():
		case n.Mode.IsRegular():
			files++
			want, ok := extracted[p]
			if assert.True(t, ok, "sysroot has %s, which the image does not", p) {
				assert.Equal(t, want.SHA256, n.SHA256, p)
			}
		default: // links (some moved into spread top-level directories): they resolve inside sysroot
			real, err := filepath.EvalSymlinks(filepath.Join(sysroot, p))
			require.NoError(t, err, p)
			assert.True(t, strings.HasPrefix(real, sysroot+"/"), "%s leaves sysroot", p)
		}
	}
	assert.Equal(t, sum.Files-len(runtimeProvided), files, "every file but the generated /etc files comes from the image")

	x := filepath.Join(dir, "x")
	require.NoError(t, os.Mkdir(x, 0o755))
	out, err := exec.Command("tar", "-xzf", archive, "-C", x).CombinedOutput()
	require.NoError(t, err, string(out))
	fromArchive, err := testimage.TreeFromFS(os.DirFS(x))
	require.NoError(t, err)
	installed, err := testimage.TreeFromFS(os.DirFS(pkgDir))
	require.NoError(t, err)
	assert.Empty(t, testimage.DiffTrees(installed.WithoutOwners(), fromArchive.WithoutOwners()), "archive vs installed package")
}

// TestPkgErrors: bad input is refused before anything is written.
func TestPkgErrors(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	ref := reg.Push(t, "pkg/err", testimage.DistrolessSpec(t).Image(t, testimage.Gzip)).String()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"size", []string{ref, "--size", "1G", "--ops-home", dir}, "--size"},
		{"bad name", []string{ref, "--name", "no-version", "--ops-home", dir}, "NAME_VERSION"},
		{"missing entry", []string{ref, "--entry", "/nope", "--ops-home", dir}, "/nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"pkg", "--cache-dir", filepath.Join(dir, "cache")}, tc.args...), &stdout, &stderr)
			want := exitFailure
			if tc.name == "missing entry" {
				want = exitBadInput
			}
			assert.Equal(t, want, code)
			assert.Contains(t, stderr.String(), tc.want)
			assert.NoDirExists(t, filepath.Join(dir, "local_packages"))
		})
	}
}

// TestPkgBootsWithOps is the oracle for the package format: ops itself
// loads the package nanofs wrote and boots it. It needs an ops binary
// (NANOFS_OPS or ops on PATH) and a Nanos kernel (NANOFS_KERNEL,
// NANOFS_BOOT), which ops is given as an installed release.
func TestPkgBootsWithOps(t *testing.T) {
	ops := os.Getenv("NANOFS_OPS")
	if ops == "" {
		ops, _ = exec.LookPath("ops")
	}
	kernel, boot := os.Getenv("NANOFS_KERNEL"), os.Getenv("NANOFS_BOOT")
	if ops == "" || kernel == "" || boot == "" {
		t.Skip("needs ops (NANOFS_OPS=/path/to/ops, or ops on PATH) and a Nanos kernel (NANOFS_KERNEL, NANOFS_BOOT)")
	}
	reg := testimage.StartInProcessRegistry(t)
	ref := reg.Push(t, "pkg/boot:1.0", testimage.DistrolessSpec(t).Image(t, testimage.EStargz)).String()
	home := t.TempDir()
	opsHome := filepath.Join(home, ".ops")
	runPkgCLI(t, ref, "--ops-home", opsHome, "--cache-dir", filepath.Join(home, "cache"), "-a", "x", "-a", "y")
	opsLoad(t, ops, home, kernel, boot, "boot_1.0", "hello from nanofs fixture: cos(2) = -0.4", nil)

	// An archive, installed by ops itself.
	archive := filepath.Join(home, "boot.tar.gz")
	runPkgCLI(t, ref, "-o", archive, "--name", "archived_1.0", "--cache-dir", filepath.Join(home, "cache"), "-a", "x", "-a", "y")
	add := exec.Command(ops, "pkg", "add", archive, "--name", "archived_1.0")
	add.Env = opsEnv(home)
	out, err := add.CombinedOutput()
	require.NoError(t, err, "ops pkg add: %s", out)
	opsLoad(t, ops, home, kernel, boot, "archived_1.0", "hello from nanofs fixture: cos(2) = -0.4", nil)

	// The seed's own example, without Docker: node from the Debian-node
	// image, and a script of the user's that ops copies in.
	if testing.Short() {
		return
	}
	dreg := testimage.StartDockerRegistry(t)
	nodeRef := dreg.Push(t, "pkg/node:18", testimage.DebianNodeSpec(t).Image(t, testimage.EStargz)).String()
	runPkgCLI(t, nodeRef, "--entry", "node", "--ops-home", opsHome, "--cache-dir", filepath.Join(home, "cache"))
	opsLoad(t, ops, home, kernel, boot, "node_18", "hi from Nanos!", map[string]string{"hi.js": `console.log("hi from Nanos!");`}, "-a", "hi.js")
}

// opsLoad runs `ops pkg load -l NAME` offline, with ops's home in home and
// the kernel installed there as a release, and checks the console. ops
// exits 0 whenever QEMU ran; with debug_exit passed through from a config
// it prints the program's status as "exit status (code<<1)|1".
func opsLoad(t *testing.T, ops, home, kernel, boot, name, want string, files map[string]string, args ...string) {
	t.Helper()
	dotOps := filepath.Join(home, ".ops")
	release := filepath.Join(dotOps, opsReleaseVersion)
	require.NoError(t, os.MkdirAll(release, 0o755))
	for src, dst := range map[string]string{kernel: "kernel.img", boot: "boot.img"} {
		data, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(release, dst), data, 0o644))
	}
	// ops looks the newest release up on the internet at every start and
	// falls back on latest.txt.
	require.NoError(t, os.WriteFile(filepath.Join(dotOps, "latest.txt"), []byte(opsReleaseVersion), 0o644))
	config := filepath.Join(home, "exit.json")
	require.NoError(t, os.WriteFile(config, []byte(`{"ManifestPassthrough":{"debug_exit":"t"}}`), 0o644))
	scratch := t.TempDir() // ops copies Args[1] from its working directory when it exists
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(scratch, name), []byte(body), 0o644))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ops, append([]string{"pkg", "load", "-l", name, "--accel=false", "-c", config, "-i", name}, args...)...)
	cmd.Env = opsEnv(home)
	cmd.Dir = scratch
	out, err := cmd.CombinedOutput()
	t.Logf("ops pkg load -l %s:\n%s", name, out)
	require.NoError(t, err)
	assert.Contains(t, string(out), want)
	status := regexp.MustCompile(`exit status (\d+)`).FindStringSubmatch(string(out))
	if assert.NotNil(t, status, "ops prints the program's status with debug_exit") {
		assert.Equal(t, "1", status[1], "the program exited 0")
	}
}

// opsEnv runs ops with its home in home, failing its release lookup at
// once (there is no internet here, and none is needed).
func opsEnv(home string) []string {
	return append(os.Environ(), "OPS_HOME="+home, "HOME="+home, "HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9")
}

// The release version ops is made to believe is installed.
const opsReleaseVersion = "0.1.99"

// TestPkgCorruptBlob: a registry that serves corrupted bytes makes pkg
// fail with a digest error, and the package installed before stays whole.
func TestPkgCorruptBlob(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "pkg/corrupt:1", testimage.DistrolessSpec(t).Image(t, testimage.Gzip))
	c := testimage.StartCounter(t, reg.Host)
	dir := t.TempDir()
	home := filepath.Join(dir, "ops")
	sum := runPkgCLI(t, c.Ref("pkg/corrupt:1"), "--ops-home", home, "--cache-dir", filepath.Join(dir, "cache1"))
	before, err := testimage.TreeFromFS(os.DirFS(sum.Installed))
	require.NoError(t, err)

	c.Inject(testimage.Fault{Kind: testimage.CorruptByte, Offset: 100})
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"pkg", c.Ref("pkg/corrupt:1"), "--ops-home", home,
		"--cache-dir", filepath.Join(dir, "cache2")}, &stdout, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "digest", "the error says what is wrong")
	after, err := testimage.TreeFromFS(os.DirFS(sum.Installed))
	require.NoError(t, err)
	assert.Empty(t, testimage.DiffTrees(before, after), "the installed package is untouched")
	entries, err := os.ReadDir(filepath.Dir(sum.Installed))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary package left")
}

// TestPkgOpsSpellings: ops users' command lines work as typed:
// `pkg from-docker IMAGE -f PROGRAM` (main said "unknown shorthand flag: 'f'"),
// and -f/--file is --entry on build too.
func TestPkgOpsSpellings(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	spec := testimage.DistrolessSpec(t)
	ref := reg.Push(t, "pkg/ops:1.0", spec.Image(t, testimage.EStargz)).String()
	program := spec.Config.Entrypoint[0]
	dir := t.TempDir()
	for _, args := range [][]string{
		{"from-docker", ref, "-f", program},
		{ref, "--file", program},
	} {
		sum := runPkgCLI(t, append(args, "-o", filepath.Join(dir, "p.tar.gz"), "--cache-dir", filepath.Join(dir, "cache"))...)
		assert.Equal(t, program, sum.Manifest.Program, "%q", args)
	}
	bsum := runBuildCLI(t, ref, "-f", program, "--no-bootloader", "-o", filepath.Join(dir, "d.img"), "--cache-dir", filepath.Join(dir, "cache"))
	assert.Equal(t, program, bsum.Program)

	code, _, stderr := kernelCLI(t, "pkg", "from-docker")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "name the IMAGE")
}
