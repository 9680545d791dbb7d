package main

import (
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// wrapperImage is a static program /usr/bin/app behind an entrypoint
// wrapper script, with ENTRYPOINT ["docker-entrypoint.sh"], CMD ["app", "serve"].
func wrapperImage(t *testing.T, wrapper string) *testimage.Spec {
	fx := testimage.CFixtures(t)
	static, err := os.ReadFile(fx.HostPath(fx.Static))
	require.NoError(t, err)
	return &testimage.Spec{
		Name: "wrapper",
		Config: v1.Config{Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"app", "serve"},
			Env: []string{testimage.DefaultPath}},
		Layers: []testimage.LayerInput{{Entries: []testimage.Entry{
			testimage.Dir("usr", 0o755), testimage.Dir("usr/bin", 0o755),
			testimage.Dir("usr/local", 0o755), testimage.Dir("usr/local/bin", 0o755),
			testimage.File("usr/bin/app", 0o755, string(static)),
			testimage.File("usr/local/bin/docker-entrypoint.sh", 0o755, wrapper),
		}}},
	}
}

const (
	okWrapper = `#!/bin/sh
set -e
if [ "$1" = app ]; then
  set -- "$@" --port 80
fi
exec "$@"
`
	initdbWrapper = `#!/bin/sh
set -e

initdb --pgdata /data
exec "$@"
`
)

// TestBuildWrapper: build says which program the entrypoint wrapper
// resolved to (and --json carries it); a wrapper that needs a real process
// stops the build naming the script, the line and --entry.
func TestBuildWrapper(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")

	ok := reg.Push(t, "wrapper/ok", wrapperImage(t, okWrapper).Image(t, testimage.EStargz)).String()
	sum := runBuildCLI(t, ok, "--no-bootloader", "-o", filepath.Join(dir, "ok.img"), "--cache-dir", cache)
	assert.Equal(t, "/usr/bin/app", sum.Program)
	assert.Equal(t, []string{"app", "serve", "--port", "80"}, sum.Args)
	require.NotNil(t, sum.Wrapper)
	assert.Equal(t, "/usr/local/bin/docker-entrypoint.sh", sum.Wrapper.Script)
	assert.Equal(t, []string{"app", "serve", "--port", "80"}, sum.Wrapper.Exec)

	bad := reg.Push(t, "wrapper/bad", wrapperImage(t, initdbWrapper).Image(t, testimage.EStargz)).String()
	code, _, stderr := kernelCLI(t, "build", bad, "--no-bootloader", "-o", filepath.Join(dir, "bad.img"), "--cache-dir", cache)
	assert.Equal(t, 1, code)
	for _, want := range []string{"/usr/local/bin/docker-entrypoint.sh line 4", "initdb --pgdata /data", "--entry"} {
		assert.Contains(t, stderr, want)
	}
	_, err := os.Stat(filepath.Join(dir, "bad.img"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no disk")

	// --entry skips the wrapper.
	sum = runBuildCLI(t, bad, "--entry", "app", "--no-bootloader", "-o", filepath.Join(dir, "entry.img"), "--cache-dir", cache)
	assert.Equal(t, []string{"app"}, sum.Args)
	assert.Nil(t, sum.Wrapper)
}
