package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/nanofs/nanofs/internal/testimage"
)

// TestBuildAndBootNodeZstdChunked builds node out of the Debian-node image
// re-encoded as zstd:chunked (read lazily: the build fetches about the
// plan's compressed bytes, not whole layers) and runs a script with it.
func TestBuildAndBootNodeZstdChunked(t *testing.T) {
	if len(kernelFlags()) != 0 {
		t.Skip("booting needs a Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT to kernel.img and boot.img (see `nanofs kernel fetch`)")
	}
	if testing.Short() {
		t.Skip("builds the Debian-node image; skipped with -short")
	}
	reg := testimage.StartDockerRegistry(t)
	img := testimage.ZstdChunkedImage(t, testimage.DebianNodeSpec(t).Image(t, testimage.Gzip), testimage.ZstdChunkedOptions{})
	ref := reg.Push(t, "boot/node-zstd-chunked", img).String()
	dir := t.TempDir()
	disk := filepath.Join(dir, "node.img")
	sum := runBuildCLI(t, ref, "--entry", "node", "-a", "-e", "-a", `console.log("hi from Nanos!")`, "-o", disk, "--cache-dir", filepath.Join(dir, "cache"))
	t.Logf("built %s: %d files, %d plan bytes, fetched %d bytes (min %d, TOCs %d) in %d requests, %.1fs",
		disk, sum.Files, sum.PlanBytes, sum.FetchedBytes, sum.MinFetch, sum.TOCBytes, sum.Requests, sum.Seconds)
	assert.LessOrEqual(t, float64(sum.FetchedBytes-sum.TOCBytes), 1.2*float64(sum.MinFetch),
		"a zstd:chunked build fetches at most 1.2x the plan's compressed bytes (besides the TOCs)")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := run(ctx, []string{"run", "--memory", "1G", disk}, &stdout, &stderr)
	t.Logf("console:\n%s", stdout.String())
	assert.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "hi from Nanos!")
}
