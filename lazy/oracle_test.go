package lazy_test

import (
	"testing"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOracleInProcess checks the merged tree of the cheap catalog images
// against mutate.Extract on go-containerregistry's in-process registry.
func TestOracleInProcess(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	for _, name := range []string{testimage.CatalogEdge, testimage.CatalogFixtures, testimage.CatalogDistroless} {
		spec := testimage.CatalogSpec(t, name)
		for _, enc := range testimage.Encodings {
			t.Run(name+"/"+enc.String(), func(t *testing.T) {
				img := spec.Image(t, enc)
				repo := name + "-" + enc.String()
				reg.Push(t, repo, img)
				li, err := lazy.Open(t.Context(), reg.Ref(repo), lazy.WithCacheDir(t.TempDir()))
				require.NoError(t, err)
				defer li.Close()
				got := treeOf(t, li)
				requireTreesEqual(t, testimage.ExtractTree(t, img).WithoutEStargzMeta(), got, "lazy vs mutate.Extract")
				requireTreesEqual(t, spec.Expected(t), got, "lazy vs the image's inputs")
				cfg := li.Config()
				assert.Equal(t, spec.Config.Entrypoint, cfg.Entrypoint)
				assert.Equal(t, spec.Config.Cmd, cfg.Cmd)
				assert.Equal(t, spec.Config.Env, cfg.Env)
				assert.Equal(t, spec.Config.WorkingDir, cfg.WorkingDir)
				for _, l := range li.Stats().Layers {
					assert.Equal(t, enc == testimage.EStargz, l.Lazy, "layer %s", l.Digest)
				}
			})
		}
	}
}

// TestOracleDockerRegistry is the acceptance test: every catalog image in
// every encoding, pushed to Debian's docker-registry, shows exactly the
// tree mutate.Extract makes of it (paths, types, modes, owners, sizes,
// link targets, hard links, the SHA-256 of every file).
func TestOracleDockerRegistry(t *testing.T) {
	reg := testimage.StartDockerRegistry(t)
	for _, name := range testimage.CatalogNames {
		t.Run(name, func(t *testing.T) {
			spec := testimage.CatalogSpec(t, name)
			for _, enc := range testimage.Encodings {
				t.Run(enc.String(), func(t *testing.T) {
					img := spec.Image(t, enc)
					repo := name + "-" + enc.String()
					reg.Push(t, repo, img)
					li, err := lazy.Open(t.Context(), reg.Ref(repo), lazy.WithCacheDir(t.TempDir()))
					require.NoError(t, err)
					defer li.Close()
					got := treeOf(t, li)
					requireTreesEqual(t, testimage.ExtractTree(t, img).WithoutEStargzMeta(), got, "lazy vs mutate.Extract")
					t.Logf("%s %s: %d paths, %d blob requests, %d bytes", name, enc, len(got), li.Stats().Requests, li.Stats().Bytes)
				})
			}
		})
	}
}
