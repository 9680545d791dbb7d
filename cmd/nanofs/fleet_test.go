package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/vm/artifact"
	"github.com/nanofs/nanofs/vm/build"
)

// TestPushPullRun is a fleet's round trip through Debian's docker-registry
// (no Referrers API): build --push stores the disk as an artifact, a second
// build with an empty cache reuses it, pull fetches the same bytes, and
// run REF boots the artifact under the Nanos kernel (with other arguments:
// the fixture prints the cosine of their count).
func TestPushPullRun(t *testing.T) {
	fx := testimage.CFixtures(t)
	reg := testimage.StartDockerRegistry(t)
	ref := reg.Push(t, "fleet/fixtures:1", testimage.FixturesSpec(t).Image(t, testimage.EStargz)).String()
	target := reg.Ref("fleet/fixtures:1-nanofs")
	dir := t.TempDir()
	build := func(out string, extra ...string) build.Summary {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args := append([]string{"build", "--json", "--cache-dir", t.TempDir(), "-o", filepath.Join(dir, out), ref,
			"--entry", fx.Dynamic, "-a", "one", "--push", target}, kernelFlags()...)
		code := run(context.Background(), append(args, extra...), &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		var sum build.Summary
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &sum))
		return sum
	}
	first := build("first.img")
	assert.NotEmpty(t, first.Pushed)
	assert.Empty(t, first.Reused)
	second := build("second.img")
	assert.Equal(t, first.Pushed, second.Reused, "a second build fetches the pushed disk")
	assert.Equal(t, first.Pushed, second.Pushed, "and pushing it again changes nothing")
	assert.Equal(t, fx.Dynamic, second.Program)
	forced := build("forced.img", "--no-reuse")
	assert.Empty(t, forced.Reused)

	pulled := filepath.Join(dir, "pulled.img")
	code, _, stderr := kernelCLI(t, "pull", target, "-o", pulled)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "wrote "+pulled)
	a, err := os.ReadFile(first.Output)
	require.NoError(t, err)
	for _, other := range []string{second.Output, forced.Output, pulled} {
		b, err := os.ReadFile(other)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(a, b), "%s is the disk built first, byte for byte", other)
	}

	code, _, stderr = kernelCLI(t, "pull", ref, "-o", filepath.Join(dir, "image.img"))
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "is not a nanofs unikernel artifact")

	if len(kernelFlags()) != 0 {
		t.Skip("booting needs a Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT to kernel.img and boot.img (see `nanofs kernel fetch`)")
	}
	var stdout, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = run(ctx, []string{"run", "--memory", "1G", target, "--", "x", "y"}, &stdout, &errb)
	t.Logf("console:\n%s", stdout.String())
	assert.Equal(t, 0, code, errb.String())
	assert.Contains(t, stdout.String(), "hello from nanofs fixture: cos(2) = -0.4")
}

// TestBuildBatch converts seven images sharing a base layer, three at a
// time, from arguments and --images-from, pushing each: the base layer
// crosses the wire once, one JSON line reports each image, and the broken
// image fails alone, named in the exit message.
func TestBuildBatch(t *testing.T) {
	reg := testimage.StartDockerRegistry(t)
	refs, base, baseSize := testimage.PushFleet(t, reg, "batch", 7, 3)
	ctr := testimage.StartCounter(t, reg.Host)
	for i, r := range refs {
		refs[i] = ctr.Host + strings.TrimPrefix(r, reg.Host)
	}
	list := filepath.Join(t.TempDir(), "images.txt")
	require.NoError(t, os.WriteFile(list, []byte("# the rest\n"+strings.Join(refs[2:], "\n")+"\n\n"), 0o644))
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := append([]string{"build", "--json", "--jobs", "3", "--cache-dir", t.TempDir(), "--output-dir", out,
		"--push-to", ctr.Host + "/batch/unikernels", "--images-from", list, refs[0], refs[1]}, kernelFlags()...)
	code := run(context.Background(), args, &stdout, &stderr)
	assert.Equal(t, exitFailure, code)
	t.Logf("stderr:\n%s", stderr.String())
	assert.Contains(t, stderr.String(), "1 of 7 images failed")
	assert.Contains(t, stderr.String(), refs[3]+": ")
	assert.Contains(t, stderr.String(), "/no/such/program")
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.Len(t, lines, 7)
	seen := map[string]bool{}
	for _, l := range lines {
		var bl build.ItemReport
		require.NoError(t, json.Unmarshal([]byte(l), &bl), l)
		seen[bl.Image] = true
		if bl.Image == refs[3] {
			assert.False(t, bl.OK)
			assert.Contains(t, bl.Error, "/no/such/program")
			continue
		}
		require.True(t, bl.OK, bl.Error)
		assert.NotEmpty(t, bl.Summary.Pushed)
		assert.FileExists(t, bl.Summary.Output)
		assert.Equal(t, out, filepath.Dir(bl.Summary.Output))
	}
	assert.Len(t, seen, 7)
	st := ctr.Stats()
	assert.Equal(t, baseSize, st.Blobs[base].Bytes, "the shared base layer crossed the wire once")
}

// TestPkgPush pushes an ops package as an artifact: the archive written
// with -o, or a temporary one when the package is only installed.
func TestPkgPush(t *testing.T) {
	fx := testimage.CFixtures(t)
	reg := testimage.StartInProcessRegistry(t)
	ref := reg.Push(t, "fleet/pkg:1", testimage.FixturesSpec(t).Image(t, testimage.EStargz)).String()
	archive := filepath.Join(t.TempDir(), "app.tar.gz")
	target := reg.Ref("fleet/pkg:1-ops")
	code, stdout, stderr := kernelCLI(t, "pkg", "--json", "--cache-dir", t.TempDir(), ref, "--entry", fx.Dynamic, "-o", archive, "--push", target)
	require.Equal(t, 0, code, stderr)
	var sum build.PackageSummary
	require.NoError(t, json.Unmarshal([]byte(stdout), &sum))
	assert.NotEmpty(t, sum.Pushed)
	m, err := artifact.Get(context.Background(), target)
	require.NoError(t, err)
	require.Len(t, m.Manifest.Layers, 1)
	assert.Equal(t, artifact.PackageMediaType, m.Manifest.Layers[0].MediaType)
	assert.Equal(t, sum.Name, m.Manifest.Annotations[artifact.AnnotationPackage])
	st, err := os.Stat(archive)
	require.NoError(t, err)
	assert.Equal(t, st.Size(), m.Manifest.Layers[0].Size)

	code, _, stderr = kernelCLI(t, "pull", target, "-o", filepath.Join(t.TempDir(), "x.img"))
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "carries no disk image")

	t.Setenv("OPS_HOME", t.TempDir())
	code, stdout, stderr = kernelCLI(t, "pkg", "--json", "--cache-dir", t.TempDir(), ref, "--entry", fx.Dynamic, "--push", reg.Ref("fleet/pkg:installed"))
	require.Equal(t, 0, code, stderr)
	sum = build.PackageSummary{}
	require.NoError(t, json.Unmarshal([]byte(stdout), &sum))
	assert.NotEmpty(t, sum.Pushed)
	assert.Empty(t, sum.Archive, "the temporary archive is not reported")
	assert.NotEmpty(t, sum.Installed)
}
