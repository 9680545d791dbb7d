package tfs

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenFile(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "hello"), []byte("hi\n"), 0o644))
	img := filepath.Join(t.TempDir(), "v.img")
	_, err := WriteDirVolume(context.Background(), src, img, DirVolume{FreeSpace: 1 << 20})
	require.NoError(t, err)

	fsys, f, err := OpenFile(img)
	require.NoError(t, err)
	data, err := fs.ReadFile(fsys, "hello")
	require.NoError(t, err)
	assert.Equal(t, "hi\n", string(data))
	require.NoError(t, f.Close())
	require.NoError(t, VerifyFile(img))

	junk := filepath.Join(t.TempDir(), "junk")
	require.NoError(t, os.WriteFile(junk, make([]byte, 4096), 0o644))
	for _, tc := range []struct{ name, path, want string }{
		{"missing", img + ".nope", "no such file"},
		{"directory", src, "is not a regular file"},
		{"not TFS", junk, junk + ": "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := OpenFile(tc.path)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
