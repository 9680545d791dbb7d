package tempfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	mine, err := Create(dir, ".disk.img")
	require.NoError(t, err)
	mine.Close()
	pid, ok := PID(filepath.Base(mine.Name()), ".disk.img")
	require.True(t, ok)
	assert.Equal(t, os.Getpid(), pid)

	dead := filepath.Join(dir, ".disk.img.tmp-"+strconv.Itoa(deadPID(t))+"-123")
	require.NoError(t, os.WriteFile(dead, []byte("leftover"), 0o644))
	live := filepath.Join(dir, ".disk.img.tmp-1-456") // init never dies
	require.NoError(t, os.WriteFile(live, nil, 0o644))
	other := filepath.Join(dir, ".other.img.tmp-"+strconv.Itoa(deadPID(t))+"-1")
	require.NoError(t, os.WriteFile(other, nil, 0o644))
	for _, name := range []string{"disk.img", ".disk.img.tmp-x-1", ".disk.img.tmp-12"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o644))
	}

	removed, n, err := RemoveStale(dir, ".disk.img")
	require.NoError(t, err)
	assert.Equal(t, []string{dead}, removed)
	assert.Equal(t, int64(len("leftover")), n)
	for _, p := range []string{mine.Name(), live, other, filepath.Join(dir, "disk.img")} {
		assert.FileExists(t, p)
	}
}

// FuzzPID: any name parses without panicking, and a name Create makes
// gives back its PID.
func FuzzPID(f *testing.F) {
	for _, s := range []string{".d.img.tmp-123-456", ".tmp-1-", ".tmp--1-2", ".tmp-99999999999999999999-1", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		pid, ok := PID(name, ".d.img")
		if ok {
			assert.Positive(t, pid)
			assert.Equal(t, ".d.img.tmp-"+strconv.Itoa(pid), name[:len(".d.img.tmp-")+len(strconv.Itoa(pid))])
		}
	})
}
