package lazy

import (
	"context"
	"fmt"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nanofs/nanofs/internal/testimage"
)

// BenchmarkWarmOpen measures opening an image of 28k files in 4 layers
// whose indexes are all cached: what every warm build pays before it
// reads a file.
func BenchmarkWarmOpen(b *testing.B) {
	for _, enc := range []struct {
		name string
		enc  testimage.Encoding
	}{{"gzip", testimage.Gzip}, {"estargz", testimage.EStargz}} {
		b.Run(enc.name, func(b *testing.B) {
			var layers []v1.Layer
			for l := range 4 {
				var entries []testimage.Entry
				for d := range 350 {
					dir := fmt.Sprintf("usr/lib/l%d/pkg%03d", l, d)
					entries = append(entries, testimage.Dir(dir, 0o755))
					for f := range 20 {
						entries = append(entries, testimage.File(fmt.Sprintf("%s/f%02d.so", dir, f), 0o644, dir))
					}
				}
				layers = append(layers, testimage.LayerFromEntries(b, enc.enc, entries...))
			}
			reg := testimage.StartInProcessRegistry(b)
			ref := reg.Push(b, "many", testimage.NewImage(b, v1.Config{Cmd: []string{"/bin/true"}}, layers...))
			cache := b.TempDir()
			ctx := context.Background()
			byDigest := ref.Context().Digest(digestOf(b, reg, "many")).String()
			open := func() {
				img, err := Open(ctx, byDigest, WithCacheDir(cache))
				if err != nil {
					b.Fatal(err)
				}
				img.Close()
			}
			open() // fills the cache
			for b.Loop() {
				open()
			}
		})
	}
}

func digestOf(b *testing.B, reg *testimage.Registry, repo string) string {
	img, err := Open(context.Background(), reg.Ref(repo), WithCacheDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	return img.Digest().String()
}
