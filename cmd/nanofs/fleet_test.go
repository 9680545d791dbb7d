package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
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
	build := func(out string, extra ...string) buildSummary {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args := append([]string{"build", "--json", "--cache-dir", t.TempDir(), "-o", filepath.Join(dir, out), ref,
			"--entry", fx.Dynamic, "-a", "one", "--push", target}, kernelFlags()...)
		code := run(context.Background(), append(args, extra...), &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		var sum buildSummary
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
