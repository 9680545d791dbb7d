package hostfs

import (
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// prefetchingImage is an image that records what it is asked to fetch
// ahead, as a lazily read image would fetch it.
type prefetchingImage struct {
	fstest.MapFS
	asked []string
}

func (p *prefetchingImage) PrefetchLater(names ...string) { p.asked = append(p.asked, names...) }

// TestPrefetchLater: names the image shows go on to it; added files (on
// the host already) and image files an added entry hides do not.
func TestPrefetchLater(t *testing.T) {
	host := hostTree(t, map[string]string{"hi.js": "hi\n", "conf": "x=1\n"})
	base := &prefetchingImage{MapFS: image()}
	fsys, err := New(base, []Add{
		{Src: filepath.Join(host, "hi.js"), Dst: "/app/hello.js"},
		{Src: filepath.Join(host, "conf"), Dst: "/opt"},
	}, WithOverwrite())
	require.NoError(t, err)
	fsys.PrefetchLater("usr/bin/node", "app/hello.js", "app/lib/util.js", "opt/conf", "usr/lib/libc.so")
	assert.Equal(t, []string{"usr/bin/node", "app/lib/util.js", "usr/lib/libc.so"}, base.asked)

	// A base that cannot fetch ahead is left alone.
	plain, err := New(image(), nil)
	require.NoError(t, err)
	plain.PrefetchLater("usr/bin/node")
}
