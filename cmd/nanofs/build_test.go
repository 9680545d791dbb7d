package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/build"
)

// runBuildCLI runs `nanofs build` in-process and decodes its --json summary.
func runBuildCLI(t *testing.T, args ...string) build.Summary {
	t.Helper()
	return runJSONCLI[build.Summary](t, "build", args...)
}

// runJSONCLI runs a verb with --json in-process and decodes its summary.
func runJSONCLI[S any](t *testing.T, verb string, args ...string) S {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{verb, "--json"}, args...), &stdout, &stderr)
	require.Equal(t, 0, code, "nanofs %s %v: %s", verb, args, stderr.String())
	var sum S
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &sum), stdout.String())
	return sum
}

// kernelFlags builds bootable disks when a Nanos kernel is supplied through
// the environment, and root-filesystem-only disks otherwise.
func kernelFlags() []string {
	if os.Getenv("NANOFS_KERNEL") != "" && os.Getenv("NANOFS_BOOT") != "" {
		return nil
	}
	return []string{"--no-bootloader"}
}

// openDisk opens a built disk's root filesystem (testimage.OpenDisk).
var openDisk = testimage.OpenDisk

// TestBuildFixtures builds the fixture programs out of the fixtures image in
// every encoding and checks each disk against independent oracles: every
// library the host's ldd listed for the program is in the disk, and every
// file and link in the disk equals the one mutate.Extract gives for that
// path. Building twice gives identical bytes.
func TestBuildFixtures(t *testing.T) {
	fx := testimage.CFixtures(t)
	spec := testimage.FixturesSpec(t)
	reg := testimage.StartInProcessRegistry(t)
	for _, enc := range testimage.Encodings {
		img := spec.Image(t, enc)
		ref := reg.Push(t, "build/fixtures-"+enc.String(), img).String()
		extracted := testimage.ExtractTree(t, img)
		for _, program := range []string{fx.Dynamic, fx.RpathOrigin, fx.Musl, fx.Static} {
			if program == "" {
				continue
			}
			t.Run(enc.String()+path.Base(program), func(t *testing.T) {
				dir := t.TempDir()
				build := func(out string) build.Summary {
					return runBuildCLI(t, append([]string{ref, "--entry", program, "-a", "x", "-e", "GREETING=hi",
						"-o", out, "--cache-dir", filepath.Join(dir, "cache")}, kernelFlags()...)...)
				}
				out := filepath.Join(dir, "a.img")
				sum := build(out)
				assert.Equal(t, program, sum.Program)
				assert.Positive(t, sum.Files)

				disk := openDisk(t, out)
				m := disk.Manifest()
				assert.Equal(t, tfs.String(program), m["program"])
				assert.Equal(t, tfs.Strings(program, "x"), m["arguments"])
				env, ok := m["environment"].(tfs.Tuple)
				require.True(t, ok, "environment: %v", m["environment"])
				assert.Equal(t, tfs.String("hi"), env["GREETING"])

				for _, lib := range append(fx.Expected[program], program) {
					_, err := fs.Stat(disk, strings.TrimPrefix(lib, "/"))
					assert.NoError(t, err, "%s needs %s (ldd)", program, lib)
				}
				got, err := testimage.TreeFromFS(disk)
				require.NoError(t, err)
				for p, n := range got {
					if n.Mode.IsDir() || runtimeProvided[p] {
						continue
					}
					want, ok := extracted[p]
					if assert.True(t, ok, "the disk has %s, which the image does not", p) {
						assert.Equal(t, want.SHA256, n.SHA256, p)
						assert.Equal(t, want.Target, n.Target, p)
					}
				}

				again := filepath.Join(dir, "b.img")
				build(again)
				a, err := os.ReadFile(out)
				require.NoError(t, err)
				b, err := os.ReadFile(again)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(a, b), "two builds of the same image and flags differ")
			})
		}
	}
}

// TestBuildAndBoot is the job users come for: image reference in, program
// output from a booted unikernel out. It needs a Nanos kernel.
func TestBuildAndBoot(t *testing.T) {
	if len(kernelFlags()) != 0 {
		t.Skip("booting needs a Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT to kernel.img and boot.img (see `nanofs kernel fetch`)")
	}
	fx := testimage.CFixtures(t)
	reg := testimage.StartInProcessRegistry(t)
	ref := reg.Push(t, "boot/distroless", testimage.DistrolessSpec(t).Image(t, testimage.EStargz)).String()
	fixtures := reg.Push(t, "boot/fixtures", testimage.FixturesSpec(t).Image(t, testimage.Gzip)).String()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"distroless entrypoint", []string{ref}, "hello from nanofs fixture: cos(0) = 1.0"},
		{"static with args", []string{fixtures, "--entry", fx.Static, "-a", "one"}, "hello from nanofs fixture: cos(1) = 0.5"},
		{"sh script", []string{fixtures, "--entry", fx.ShebangSh, "-a", "a"}, "overwritten by the second layer"},
		// Nanos master b9c3671 drops the first iovec of a writev (musl's
		// printf): its output arrives as blank lines there.
		{"musl", []string{fixtures, "--entry", fx.Musl, "-a", "a", "-a", "b"}, "hello from nanofs fixture: cos(2) = -0.4"},
		{"musl static", []string{fixtures, "--entry", fx.MuslStatic}, "hello from nanofs fixture: cos(0) = 1.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if slices.Contains(tc.args, "") {
				t.Skip("the fixture was not compiled: musl programs need musl-gcc (apt-get install musl-tools)")
			}
			dir := t.TempDir()
			disk := filepath.Join(dir, "boot.img")
			runBuildCLI(t, append(tc.args, "-o", disk, "--cache-dir", filepath.Join(dir, "cache"))...)
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			code := run(ctx, []string{"run", disk}, &stdout, &stderr)
			t.Logf("console:\n%s", stdout.String())
			assert.Equal(t, 0, code, stderr.String())
			assert.Contains(t, stdout.String(), tc.want)
		})
	}
}

// TestBuildAndBootNode builds node out of the Debian-node image (whose
// entrypoint is the docker-entrypoint.sh wrapper) and runs a script with it.
func TestBuildAndBootNode(t *testing.T) {
	if len(kernelFlags()) != 0 {
		t.Skip("booting needs a Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT to kernel.img and boot.img (see `nanofs kernel fetch`)")
	}
	if testing.Short() {
		t.Skip("builds the Debian-node image; skipped with -short")
	}
	reg := testimage.StartDockerRegistry(t)
	ref := reg.Push(t, "boot/node", testimage.DebianNodeSpec(t).Image(t, testimage.EStargz)).String()
	dir := t.TempDir()
	disk := filepath.Join(dir, "node.img")
	sum := runBuildCLI(t, ref, "--entry", "node", "-a", "-e", "-a", `console.log("hi from Nanos!")`, "-o", disk, "--cache-dir", filepath.Join(dir, "cache"))
	t.Logf("built %s: %d files, %d plan bytes, fetched %d bytes in %d requests, %.1fs", disk, sum.Files, sum.PlanBytes, sum.FetchedBytes, sum.Requests, sum.Seconds)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := run(ctx, []string{"run", "--memory", "1G", disk}, &stdout, &stderr)
	t.Logf("console:\n%s", stdout.String())
	assert.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "hi from Nanos!")
}

// TestRunImage boots an image reference in one step: run builds a
// temporary disk with build's flags and the arguments after --.
func TestRunImage(t *testing.T) {
	if len(kernelFlags()) != 0 {
		t.Skip("booting needs a Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT to kernel.img and boot.img (see `nanofs kernel fetch`)")
	}
	fx := testimage.CFixtures(t)
	reg := testimage.StartInProcessRegistry(t)
	ref := reg.Push(t, "run/fixtures", testimage.FixturesSpec(t).Image(t, testimage.EStargz)).String()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"run", "--cache-dir", t.TempDir(), ref, "--entry", fx.Dynamic, "--", "one", "two"}, &stdout, &stderr)
	t.Logf("console:\n%s", stdout.String())
	assert.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "hello from nanofs fixture: cos(2) = -0.4")
}

// runtimeProvided are the files a build always generates, as a container
// runtime provides them.
var runtimeProvided = map[string]bool{"etc/resolv.conf": true, "etc/hosts": true, "etc/hostname": true}
