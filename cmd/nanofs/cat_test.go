package main

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCat(t *testing.T) {
	img := testimage.EdgeSpec().Image(t, testimage.EStargz)
	want := testimage.ExtractTree(t, img)
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "edge", img)
	c := testimage.StartCounter(t, reg.Host)

	code, stdout, stderr := imageRun(t, "-v", "cat", c.Ref("edge"), "/data/big.bin")
	require.Equal(t, 0, code, stderr)
	sum := sha256.Sum256([]byte(stdout))
	assert.Equal(t, want["data/big.bin"].SHA256, hex.EncodeToString(sum[:]))
	assert.Contains(t, stderr, "eStargz, read lazily")
	m, err := img.Manifest()
	require.NoError(t, err)
	st := c.Stats()
	// The layers not holding the file cost only the open's one read of
	// their end (footer and TOC: 64 KiB, so a smaller layer whole), no
	// chunk reads.
	for _, l := range m.Layers[:2] {
		b := st.Blobs[l.Digest.String()]
		assert.Equal(t, 1, b.Requests, "only the open's read of a layer not holding the file")
		assert.LessOrEqual(t, b.Bytes, min(l.Size, 64<<10), "only the open's read of a layer not holding the file")
	}

	// Symlinks are followed inside the image.
	code, stdout, stderr = imageRun(t, "cat", c.Ref("edge"), "new/deep/up")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "edge-v2\n", stdout)

	for _, tc := range []struct{ path, msg string }{
		{"/etc", "not a regular file"},
		{"/run/initctl", "not a regular file"},
		{"/new/dangling", "file does not exist"},
	} {
		code, _, stderr := imageRun(t, "cat", c.Ref("edge"), tc.path)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, tc.msg, tc.path)
	}
}

// TestCatCorruptChunk: a file with a chunk that never arrives intact fails
// before anything is written to stdout.
func TestCatCorruptChunk(t *testing.T) {
	img := testimage.EdgeSpec().Image(t, testimage.EStargz)
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "edge", img)
	m, err := img.Manifest()
	require.NoError(t, err)
	big := m.Layers[2] // holds /data/big.bin
	c := testimage.StartCounter(t, reg.Host)
	c.Inject(testimage.Fault{Kind: testimage.CorruptByte, Digest: big.Digest.String(), Offset: big.Size / 2})
	code, stdout, stderr := imageRun(t, "cat", c.Ref("edge"), "/data/big.bin")
	assert.NotEqual(t, 0, code)
	assert.Empty(t, stdout, "nothing written before the file verified")
	assert.Contains(t, stderr, "nothing written")
}
