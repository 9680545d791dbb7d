package tfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOutputTempFiles: an Output's temporary name carries the writer's
// PID; the leftover of a killed writer of the same path goes when the
// next Output starts, one of a live process stays, and Commit leaves only
// the path.
func TestOutputTempFiles(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "v.img")
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	stale := filepath.Join(dir, fmt.Sprintf(".v.img.tmp-%d-1", dead.Process.Pid))
	live := filepath.Join(dir, ".v.img.tmp-1-2") // PID 1 is alive
	other := filepath.Join(dir, fmt.Sprintf(".w.img.tmp-%d-3", dead.Process.Pid))
	for _, p := range []string{stale, live, other} {
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	}

	o, err := CreateOutput(out, "volume")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(filepath.Base(o.Name()), fmt.Sprintf(".v.img.tmp-%d-", os.Getpid())), o.Name())
	assert.NoFileExists(t, stale)
	assert.FileExists(t, live)
	assert.FileExists(t, other, "another output's leftovers are its own to judge")
	_, err = o.WriteString("data")
	require.NoError(t, err)
	require.NoError(t, o.Commit())
	assert.NoFileExists(t, o.Name())
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "data", string(b))
}
