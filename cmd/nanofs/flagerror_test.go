package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/vm"
	"github.com/nanofs/nanofs/vm/kernel"
)

// TestFlagErrorKernel: the library's "no kernel" instructions name the two
// files as options; the CLI says them with its flags, found by the error's
// type, and errors.Is still sees ErrNoKernel.
func TestFlagErrorKernel(t *testing.T) {
	root := t.TempDir()
	_, err := kernel.FindKernel(kernel.WithCacheDir(filepath.Join(root, "c")), kernel.WithOpsHome(filepath.Join(root, "o")),
		kernel.WithGetenv(func(string) string { return "" }), kernel.WithArch("amd64"))
	require.ErrorIs(t, err, kernel.ErrNoKernel)
	got := flagError(fmt.Errorf("build: %w", err))
	assert.ErrorIs(t, got, kernel.ErrNoKernel)
	assert.Contains(t, got.Error(), "(or pass --kernel and --boot)")
	assert.NotContains(t, got.Error(), kernel.FilesAsOptions)
}

// TestLogFlags: an option a library names in a log line is printed as the
// flag that sets it; other arguments are left as they are.
func TestLogFlags(t *testing.T) {
	var stderr bytes.Buffer
	g := &globals{stderr: &stderr, verbose: true}
	g.logf("replaced %s of the image with %s (%s)", "/etc/x", "x", vm.OptionName(vm.OptionOverwrite))
	g.debugf("add it with %s %s", vm.OptionName(vm.OptionAdd), "a:/b")
	g.logf("%s", vm.OptionName("no-such-option"))
	assert.Equal(t, "replaced /etc/x of the image with x (--overwrite)\nadd it with --add a:/b\nno-such-option\n", stderr.String())
}
