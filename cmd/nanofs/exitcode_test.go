package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

// TestExitCodes: an interruption by the user, a network failure, bad
// input and a missing image exit with distinct codes (see the README).
func TestExitCodes(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "edge", testimage.EdgeSpec().Image(t, testimage.Gzip))
	bomb := &testimage.Spec{Name: "bomb", Layers: []testimage.LayerInput{{Entries: []testimage.Entry{
		testimage.File("zeros", 0o644, strings.Repeat("\x00", 4<<20)),
	}}}}
	reg.Push(t, "bomb", bomb.Image(t, testimage.Gzip))
	c := testimage.StartCounter(t, reg.Host)
	c.Inject(testimage.Fault{Kind: testimage.Status500, Path: "/v2/"})
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	l.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name string
		ctx  context.Context
		args []string
		want int
		msg  string
	}{
		{"ok", context.Background(), []string{"ls", reg.Ref("edge"), "/"}, 0, ""},
		{"image not found", context.Background(), []string{"ls", reg.Ref("nope:1"), "/"}, exitNotFound, ""},
		{"registry unreachable", context.Background(), []string{"ls", closed + "/edge", "/"}, exitNetwork, ""},
		{"registry answers 500 to every ping", context.Background(), []string{"ls", c.Ref("edge"), "/"}, exitNetwork, ""},
		{"platform not in the image", context.Background(), []string{"ls", reg.Ref("edge"), "/", "--platform", "linux/s390x"}, exitBadInput, ""},
		{"no program", context.Background(), []string{"build", reg.Ref("bomb"), "--no-bootloader", "-o", t.TempDir() + "/x.img"}, exitBadInput, "no Entrypoint or Cmd"},
		{"program that cannot run", context.Background(), []string{"build", reg.Ref("edge"), "--no-bootloader", "-o", t.TempDir() + "/x.img"}, exitBadInput, "is not in the image"},
		{"interrupted", cancelled, []string{"ls", reg.Ref("edge"), "/"}, exitInterrupted, ""},
		{"decompression bomb", context.Background(), []string{"ls", reg.Ref("bomb"), "/", "--max-layer-size", "1M"}, exitBadInput, "raise the bound with --max-expansion or --max-layer-size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.ctx, append(tt.args, "--cache-dir", t.TempDir()), &out, &errb)
			assert.Equal(t, tt.want, code, errb.String())
			assert.Contains(t, errb.String(), tt.msg)
		})
	}
}

// TestExitCodeOfInnerCancellation: a cancellation inside a library (a
// dropped, stalled response) is not the user's interruption.
func TestExitCodeOfInnerCancellation(t *testing.T) {
	assert.Equal(t, exitFailure, exitCode(context.Background(), fmt.Errorf("reading: %w", context.Canceled)))
	assert.Equal(t, exitNetwork, exitCode(context.Background(), fmt.Errorf("x: %w: %w", lazy.ErrNetwork, context.Canceled)))
	assert.Equal(t, exitNetwork, exitCode(context.Background(), &lazy.SlowError{}))
}

// TestCachePrune runs the verb over a cache with a leftover of a killed run.
func TestCachePrune(t *testing.T) {
	cache := t.TempDir()
	layout := testimage.WriteOCILayout(t, testimage.EdgeSpec().Image(t, testimage.Gzip))
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"ls", layout, "--cache-dir", cache}, &out, &errb), errb.String())
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	require.NoError(t, os.MkdirAll(filepath.Join(cache, "layers", "ab"), 0o755))
	stale := filepath.Join(cache, "layers", "ab", fmt.Sprintf(".tmp-%d-1", dead.Process.Pid))
	require.NoError(t, os.WriteFile(stale, []byte("x"), 0o644))

	errb.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"cache", "prune", "--cache-dir", cache, "--max-size", "0"}, &out, &errb), errb.String())
	assert.Contains(t, errb.String(), "removed 1 temporary files (1 B)")
	assert.NoFileExists(t, stale)
	assert.Contains(t, errb.String(), "0 B left")

	errb.Reset()
	assert.Equal(t, exitFailure, run(context.Background(), []string{"cache", "prune", "--cache-dir", cache, "--max-size", "lots"}, &out, &errb))
	assert.Contains(t, errb.String(), "--max-size")
}
