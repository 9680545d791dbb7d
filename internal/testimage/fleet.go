package testimage

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// PushFleet pushes n images to reg as REPO/appI:1 that share the fixtures'
// base layer, each with its own small top layer; the image at index broken
// names a program that does not exist (-1: none). It returns the
// references and the shared base layer's digest and compressed size, what a
// batch build should fetch once for them all.
func PushFleet(t testing.TB, reg *Registry, repo string, n, broken int) (refs []string, base string, baseSize int64) {
	t.Helper()
	for i := range n {
		spec := *FixturesSpec(t)
		spec.Layers = []LayerInput{spec.Layers[0], {Entries: []Entry{
			Dir("etc", 0o755),
			File("etc/app-release", 0o644, fmt.Sprintf("APP=%d\n", i)),
		}}}
		if i == broken {
			spec.Config.Entrypoint = []string{"/no/such/program"}
		}
		img := spec.Image(t, Gzip)
		layers, err := img.Layers()
		require.NoError(t, err)
		d, err := layers[0].Digest()
		require.NoError(t, err)
		base = d.String()
		baseSize, err = layers[0].Size()
		require.NoError(t, err)
		refs = append(refs, reg.Push(t, fmt.Sprintf("%s/app%d:1", repo, i), img).String())
	}
	return refs, base, baseSize
}
