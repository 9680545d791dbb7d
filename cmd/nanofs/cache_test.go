package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// TestCacheVerify: a chunk damaged in the cache after it was stored is
// found by `cache verify`, removed, and fetched again by the next read.
func TestCacheVerify(t *testing.T) {
	cache := t.TempDir()
	layout := testimage.WriteOCILayout(t, testimage.EdgeSpec().Image(t, testimage.EStargz))
	cat := func() []byte {
		t.Helper()
		var out, errb bytes.Buffer
		require.Equal(t, 0, run(context.Background(), []string{"cat", layout, "/data/big.bin", "--cache-dir", cache}, &out, &errb), errb.String())
		return out.Bytes()
	}
	want := sha256.Sum256(cat())

	damaged := 0
	require.NoError(t, filepath.WalkDir(filepath.Join(cache, "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		data[len(data)/2] ^= 0xff
		require.NoError(t, os.WriteFile(p, data, 0o644))
		damaged++
		return nil
	}))
	require.Positive(t, damaged)

	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"cache", "verify", "--cache-dir", cache}, &out, &errb)
	assert.Equal(t, exitFailure, code, errb.String())
	assert.Contains(t, errb.String(), "damaged, removed: chunks/sha256:")
	assert.Contains(t, errb.String(), "damaged cache entries removed")

	assert.Equal(t, want, sha256.Sum256(cat()), "the damaged chunks are fetched again")

	errb.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"cache", "verify", "--cache-dir", cache}, &out, &errb), errb.String())
	assert.Contains(t, errb.String(), ": 0 damaged")
}
