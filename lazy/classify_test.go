package lazy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
)

func TestClassify(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "rootfs")
	require.NoError(t, os.Mkdir(plain, 0o755))
	layoutDir := filepath.Join(dir, "layout")
	require.NoError(t, os.Mkdir(layoutDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(layoutDir, "index.json"), []byte("{}"), 0o644))
	markerDir := filepath.Join(dir, "marker")
	require.NoError(t, os.Mkdir(markerDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(markerDir, "oci-layout"), []byte("{}"), 0o644))
	disk := filepath.Join(dir, "app.img")
	require.NoError(t, os.WriteFile(disk, make([]byte, 1024), 0o644))
	tarball := testimage.WriteDockerTarball(t, "classify/x:1", testimage.EdgeSpec().Image(t, testimage.Gzip))

	for _, tc := range []struct {
		ref     string
		kind    lazy.SourceKind
		path    string
		wantErr string
	}{
		{ref: "node:16.3.0", kind: lazy.KindRegistry},
		{ref: "localhost:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", kind: lazy.KindRegistry},
		{ref: "oci:" + plain, kind: lazy.KindOCILayout, path: plain},
		{ref: "docker-archive:/x.tar", kind: lazy.KindDockerArchive, path: "/x.tar"},
		{ref: layoutDir, kind: lazy.KindOCILayout, path: layoutDir},
		{ref: markerDir, kind: lazy.KindOCILayout, path: markerDir},
		{ref: plain, kind: lazy.KindDirectory, path: plain},
		{ref: disk, kind: lazy.KindDisk, path: disk},
		{ref: tarball, kind: lazy.KindDockerArchive, path: tarball},
		{ref: "/does/not/exist", wantErr: "no such file or directory"},
		{ref: "Not A Reference", wantErr: "nor an image reference"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			src, err := lazy.Classify(tc.ref)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, lazy.ErrNoSuchSource)
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.kind, src.Kind, src.Kind.String())
			assert.Equal(t, tc.path, src.Path)
			assert.Equal(t, tc.kind <= lazy.KindDockerArchive, src.IsImage())
		})
	}
}
