package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// TestBuildTransferDebianNode measures what a cold build of node out of the
// eStargz Debian-node image costs on the wire, counted at the registry,
// against the plan's own compressed bytes, and next to a full pull of the
// same image with crane (what a converter without lazy reads must do).
func TestBuildTransferDebianNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Debian-node image; skipped with -short")
	}
	reg := testimage.StartDockerRegistry(t)
	reg.Push(t, "transfer/node", testimage.DebianNodeSpec(t).Image(t, testimage.EStargz))
	c := testimage.StartCounter(t, reg.Host)
	ref := c.Ref("transfer/node")
	dir := t.TempDir()

	sum := runBuildCLI(t, ref, "--entry", "node", "--no-bootloader",
		"-o", filepath.Join(dir, "node.img"), "--cache-dir", filepath.Join(dir, "cache"))
	built := c.Stats()
	require.Positive(t, sum.MinFetch)
	files := built.BlobBytes - sum.TOCBytes
	ratio := float64(files) / float64(sum.MinFetch)

	c.Reset()
	start := time.Now()
	img, err := crane.Pull(ref, crane.Insecure)
	require.NoError(t, err)
	require.NoError(t, crane.SaveOCI(img, filepath.Join(dir, "pulled")))
	pullTime := time.Since(start)
	pulled := c.Stats()

	t.Logf("nanofs build (eStargz, cold): %.2fs, %d blob bytes in %d requests: %d for the plan's files (%.3fx their %d compressed bytes; %d uncompressed) + %d of TOCs",
		sum.Seconds, built.BlobBytes, built.BlobRequests, files, ratio, sum.MinFetch, sum.PlanBytes, sum.TOCBytes)
	t.Logf("crane pull (whole image):   %.2fs, %d blob bytes in %d requests (%.1fx the build's bytes)",
		pullTime.Seconds(), pulled.BlobBytes, pulled.BlobRequests, float64(pulled.BlobBytes)/float64(built.BlobBytes))
	assert.LessOrEqual(t, ratio, 1.2, "a build fetches at most 1.2x the compressed bytes of the plan's files, plus TOCs")
	assert.Less(t, built.BlobBytes, pulled.BlobBytes)
}
