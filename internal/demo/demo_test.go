// Package demo is the README's main job, end to end, on a built-in default
// image and without internet: `make demo` runs TestDemo verbosely, and
// `make test` runs it as an end-to-end test of the CLI.
package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// TestDemo builds a distroless-style image (a real glibc program compiled
// here, its loader and libraries; no shell, no ldd) as eStargz, serves it
// from a local registry, and drives the nanofs binary over it as a user
// would.
func TestDemo(t *testing.T) {
	bin := nanofsBinary(t)

	reg := registry(t)
	spec := testimage.DistrolessSpec(t)
	ref := reg.Push(t, "demo/hello", spec.Image(t, testimage.EStargz)).String()
	program := spec.Config.Entrypoint[0]
	say(t, "image %s: %d layers (eStargz), entrypoint %v, served by %s registry", ref, len(spec.Layers), spec.Config.Entrypoint, reg.Kind)

	cache := t.TempDir()
	out := filepath.Join(t.TempDir(), "hello.img")
	build := []string{"build", "--cache-dir", cache, ref, "-o", out}
	bootable := os.Getenv("NANOFS_KERNEL") != "" && os.Getenv("NANOFS_BOOT") != ""
	if !bootable {
		say(t, "(no Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT to boot the result; building a root-filesystem-only disk)")
		build = append(build, "--no-bootloader")
	}
	steps := []struct {
		args []string
		want string // a fragment the output must contain
	}{
		{[]string{"ls", "--cache-dir", cache, ref, "/"}, "usr"},
		{[]string{"--verbose", "ls", "--cache-dir", cache, ref, filepath.Dir(program)}, filepath.Base(program)},
		{[]string{"resolve", "--cache-dir", cache, ref}, "libc.so.6"},
		{build, "wrote " + out},
		{[]string{"inspect", "--manifest", out}, program},
		{[]string{"inspect", out, "/"}, "lib"},
		{[]string{"inspect", "--verify", out}, ""},
	}
	if bootable {
		steps = append(steps, struct {
			args []string
			want string
		}{[]string{"run", out}, "hello from nanofs fixture"})
	}
	for _, s := range steps {
		got := nanofs(t, bin, s.args...)
		require.Contains(t, got, s.want, "nanofs %s", strings.Join(s.args, " "))
	}
}

// nanofsBinary is $NANOFS_BIN (what `make demo` builds) or a fresh build.
func nanofsBinary(t *testing.T) string {
	if p := os.Getenv("NANOFS_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		require.NoError(t, err)
		return abs
	}
	p := filepath.Join(t.TempDir(), "nanofs")
	cmd := exec.Command("go", "build", "-o", p, "github.com/nanofs/nanofs/cmd/nanofs")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run(), "building nanofs")
	return p
}

// registry is Debian's docker-registry when installed, else the in-process one.
func registry(t *testing.T) *testimage.Registry {
	if _, err := exec.LookPath("docker-registry"); err == nil {
		return testimage.StartDockerRegistry(t)
	}
	return testimage.StartInProcessRegistry(t)
}

// nanofs runs the binary like a user at a shell, echoing the command and
// everything it prints, and returns stdout and stderr together.
func nanofs(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	say(t, "$ nanofs %s", strings.Join(args, " "))
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	fmt.Print(indent(buf.String()))
	require.NoError(t, err, "nanofs %s:\n%s", strings.Join(args, " "), buf.String())
	return buf.String()
}

func say(t *testing.T, format string, a ...any) {
	t.Helper()
	fmt.Printf(format+"\n", a...)
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

// TestDemoNode is the README's quick start, typed as written: the user's
// own script, in the current directory and not in the image, run by
// node:16.3.0, whose entrypoint is the official docker-entrypoint.sh. The
// image is one of Docker Hub's shape built here, served as
// library/node:16.3.0 by a local registry that NANOFS_REGISTRY_MIRROR
// names. Naming hi.js after -- copies it into the image's working
// directory. Without a Nanos kernel the disk is built without bootloader
// and inspected instead.
func TestDemoNode(t *testing.T) {
	bin := nanofsBinary(t)
	reg := registry(t)
	spec := testimage.OfficialNodeSpec(t) // skips under -short
	reg.Push(t, "library/node:16.3.0", spec.Image(t, testimage.EStargz))
	t.Setenv("NANOFS_REGISTRY_MIRROR", reg.Host)
	say(t, "node:16.3.0: an image of Docker Hub's shape (Node's official build, docker-entrypoint.sh), eStargz, served as library/node:16.3.0 by a local %s registry", reg.Kind)
	say(t, "$ export NANOFS_REGISTRY_MIRROR=%s", reg.Host)

	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "hi.js"), []byte("console.log(\"hi from Nanos!\");\n"), 0o644))
	t.Chdir(work)
	say(t, "$ echo 'console.log(\"hi from Nanos!\");' > hi.js")

	out := filepath.Join(t.TempDir(), "node.img")
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"build", "node:16.3.0", "-a", "hi.js", "-o", out, "--no-bootloader"}, "added hi.js (31 B) from the working directory"},
		{[]string{"inspect", out, "/hi.js"}, "/hi.js"},
		{[]string{"inspect", "--manifest", out}, `"/usr/local/bin/node"`},
	}
	if os.Getenv("NANOFS_KERNEL") != "" && os.Getenv("NANOFS_BOOT") != "" {
		steps = append(steps, struct {
			args []string
			want string
		}{[]string{"run", "node:16.3.0", "--", "hi.js"}, "hi from Nanos!"})
	} else {
		say(t, "(no Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT to run it; built a root-filesystem-only disk and inspected it)")
	}
	for _, s := range steps {
		got := nanofs(t, bin, s.args...)
		require.Contains(t, got, s.want, "nanofs %s", strings.Join(s.args, " "))
	}
}
