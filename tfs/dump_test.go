package tfs

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nanosDump returns Nanos's own dump tool, the independent oracle for
// images (spec §9 item 12).
func nanosDump(t *testing.T) string {
	t.Helper()
	return nanosTool(t, "NANOS_DUMP", "dump", "", "to compare with Nanos's own reader")
}

// nanosTool returns the Nanos host tool that env names, or, when env is
// unset, the one called name beside the tool that sibling names (Nanos's
// build puts them in one directory). It skips saying what to set.
func nanosTool(t *testing.T, env, name, sibling, why string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" && sibling != "" {
		if d := os.Getenv(sibling); d != "" {
			p = filepath.Join(filepath.Dir(d), name)
		}
	}
	if p == "" {
		t.Skipf("set %s to Nanos's %s, built from github.com/nanovms/nanos (tools/%s.c), %s", env, name, name, why)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s=%s: %v", env, p, err)
	}
	return p
}

// dumpTree extracts an image with `dump -d` and returns its output.
func dumpTree(t *testing.T, dump, img string) (dir, out string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "x")
	b, err := exec.Command(dump, "-d", dir, img).CombinedOutput()
	require.NoError(t, err, "dump -d: %s", b)
	return dir, string(b)
}

// sameExtract compares what dump extracted with the source tree. dump
// writes directories and regular files (hard links as copies) and skips
// symlinks.
func sameExtract(t *testing.T, src, got string) {
	t.Helper()
	want := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(src, p)
		switch {
		case d.IsDir():
			want[rel+"/"] = nil
		case d.Type().IsRegular():
			want[rel], err = os.ReadFile(p)
		}
		return err
	}))
	have := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(got, p)
		switch {
		case d.IsDir():
			have[rel+"/"] = nil
		case d.Type().IsRegular():
			have[rel], err = os.ReadFile(p)
		}
		return err
	}))
	require.Equal(t, len(want), len(have), "entry count")
	for k, v := range want {
		h, ok := have[k]
		if assert.True(t, ok, "dump did not extract %s", k) {
			assert.True(t, bytes.Equal(v, h), "%s differs", k)
		}
	}
}

func TestNanosDumpOracle(t *testing.T) {
	dump := nanosDump(t)
	src := makeDir(t)
	require.NoError(t, os.Remove(filepath.Join(src, "fifo")))
	// dump builds extraction paths in a 256-byte buffer: keep them short.
	require.NoError(t, os.RemoveAll(filepath.Join(src, "level000")))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "a/b/c/d/e/f"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "a/b/c/d/e/f/leaf"), []byte("deep"), 0o644))
	for i := range 2000 {
		p := filepath.Join(src, "many", strings.Repeat("d", i%5+1), fmt.Sprintf("f%c%04d", 'a'+i%26, i))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, pseudo(uint64(i), i%3000), 0o644))
	}
	if !testing.Short() {
		require.NoError(t, os.WriteFile(filepath.Join(src, "big"), pseudo(99, 40<<20+3), 0o644))
	}
	img := filepath.Join(t.TempDir(), "root.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	w, err := NewWriter(f, WithLabel("oracle"), WithSeed([]byte("dump")))
	require.NoError(t, err)
	require.NoError(t, w.AddFS(context.Background(), os.DirFS(src), nil))
	require.NoError(t, w.SetProgram("/bin/app"))
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())

	got, out := dumpTree(t, dump, img)
	assert.Contains(t, out, "Label: oracle")
	assert.Contains(t, out, "UUID: "+FormatUUID(w.UUID()))
	sameExtract(t, src, got)

	tree, err := exec.Command(dump, "-t", img).CombinedOutput()
	require.NoError(t, err, "%s", tree)
	for _, name := range []string{"app-hardlink", "rel", "日本", "leaf"} {
		assert.Contains(t, string(tree), name)
	}
}

// dump picks the root filesystem of a whole disk like the kernel does.
func TestNanosDumpDisk(t *testing.T) {
	dump := nanosDump(t)
	for _, uefi := range []bool{false, true} {
		img := makeDisk(t, uefi, kernelBoot(t), appRoot(t))
		p := filepath.Join(t.TempDir(), "disk.img")
		require.NoError(t, os.WriteFile(p, img.b, 0o644))
		got, out := dumpTree(t, dump, p)
		assert.Contains(t, out, "detected filesystem at")
		data, err := os.ReadFile(filepath.Join(got, "bin/app"))
		require.NoError(t, err)
		assert.Equal(t, "app", string(data))
	}
}
