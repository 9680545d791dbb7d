package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// TestBuildDirectoryAndMount: a directory is a source (with --entry), and
// inside a nanofs mount no IMAGE is needed: the design card's usage.
func TestBuildDirectoryAndMount(t *testing.T) {
	fx := testimage.CFixtures(t)
	out := filepath.Join(t.TempDir(), "dir.img")
	sum, stderr, code := buildCLI(t, fx.Root, "--entry", fx.Dynamic, "--no-bootloader", "-o", out)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, fx.Dynamic, sum.Program)

	_, stderr, code = buildCLI(t, fx.Root, "--no-bootloader", "-o", out)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "name the program with --entry")

	requireFUSEForMount(t)
	mnt := t.TempDir()
	mountInProcess(t, fx.Root, mnt)
	t.Chdir(mnt)
	fromMount := filepath.Join(t.TempDir(), "mount.img")
	sum2, stderr, code := buildCLI(t, "--entry", fx.Dynamic, "--no-bootloader", "-o", fromMount)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, mnt, sum2.Image)
	assert.Equal(t, sum.Files, sum2.Files)
	assert.Equal(t, sum.PlanBytes, sum2.PlanBytes)
	testimage.OpenDisk(t, fromMount)
}
