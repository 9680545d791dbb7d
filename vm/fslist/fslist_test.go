package fslist

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// modeOf builds an fs.FileMode from unix permission bits plus special bits
// and, in bit 31, the directory flag.
func modeOf(m uint32) fs.FileMode {
	out := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	if m&(1<<31) != 0 {
		out |= fs.ModeDir
	}
	return out
}

func TestMode(t *testing.T) {
	for _, tc := range []struct {
		mode uint32
		want string
	}{
		{0o755, "-rwxr-xr-x"},
		{0o4755 | 1<<31, "drwsr-xr-x"},
		{0o2644, "-rw-r-Sr--"},
		{0o1777 | 1<<31, "drwxrwxrwt"},
		{0o1776 | 1<<31, "drwxrwxrwT"},
	} {
		m := modeOf(tc.mode)
		assert.Equal(t, tc.want, Mode(m), "%o", tc.mode)
	}
}

// TestList lists a real directory: a file as itself, a link with its
// target, a directory by its entries or, recursively, by absolute paths.
func TestList(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "d", "f"), []byte("hi"), 0o640))
	require.NoError(t, os.Symlink("d/f", filepath.Join(dir, "l")))
	fsys := os.DirFS(dir)
	for _, tc := range []struct {
		name string
		path string
		o    Options
		want string
	}{
		{"file", "d/f", Options{Format: Brief}, "-rw-r-----   1            2 /d/f\n"},
		{"link", "l", Options{Format: Brief}, "lrwxrwxrwx   1            3 /l -> d/f\n"},
		{"entries", "d", Options{Format: Brief}, "-rw-r-----   1            2 f\n"},
		{"recursive", "d", Options{Format: Brief, Recursive: true}, "drwxr-xr-x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, List(&out, fsys, tc.path, tc.o))
			if tc.o.Recursive {
				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				require.Len(t, lines, 2)
				assert.True(t, strings.HasPrefix(lines[0], tc.want), lines[0])
				assert.True(t, strings.HasSuffix(lines[0], " /d"), lines[0])
				assert.Equal(t, "-rw-r-----   1            2 /d/f", lines[1])
				return
			}
			assert.Equal(t, tc.want, out.String())
		})
	}
	_, err := Path("/../x")
	assert.ErrorContains(t, err, "invalid path")
	assert.ErrorIs(t, List(&bytes.Buffer{}, fsys, "nope", Options{}), fs.ErrNotExist)
}
