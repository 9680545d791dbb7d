package lazy

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/nanofs/nanofs/internal/testimage"
)

// benchLazyRead measures reading a program and its libraries from an
// eStargz image with a cold cache, against the baseline of a full pull
// (go-containerregistry's remote.Image + mutate.Extract) of the same image
// in the same run, both through the counting proxy.
func benchLazyRead(b *testing.B, reg *testimage.Registry, repo, prog string) {
	c := testimage.StartCounter(b, reg.Host)
	ref, err := name.ParseReference(c.Ref(repo), name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var fullBytes, lazyBytes int64
	var fullTime, lazyTime time.Duration
	for b.Loop() {
		c.Reset()
		start := time.Now()
		img, err := remote.Image(ref, remote.WithContext(ctx))
		if err != nil {
			b.Fatal(err)
		}
		rc := mutate.Extract(img)
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
		fullTime += time.Since(start)
		fullBytes += c.Stats().BlobBytes

		c.Reset()
		start = time.Now()
		li, err := Open(ctx, c.Ref(repo), WithCacheDir(b.TempDir()))
		if err != nil {
			b.Fatal(err)
		}
		readAll(b, li, elfClosure(b, li, prog))
		li.Close()
		lazyTime += time.Since(start)
		lazyBytes += c.Stats().BlobBytes
	}
	b.ReportMetric(float64(lazyBytes)/float64(b.N), "lazy-bytes/op")
	b.ReportMetric(float64(fullBytes)/float64(b.N), "full-pull-bytes/op")
	b.ReportMetric(float64(lazyBytes)/float64(fullBytes), "bytes-ratio")
	b.ReportMetric(lazyTime.Seconds()/fullTime.Seconds(), "time-ratio")
}

func BenchmarkLazyReadFixtures(b *testing.B) {
	fx := testimage.CFixtures(b)
	if fx.Dynamic == "" {
		b.Skip("needs gcc for the C fixtures (apt-get install gcc)")
	}
	reg := testimage.StartInProcessRegistry(b)
	reg.Push(b, "fixtures", testimage.CatalogImage(b, testimage.CatalogFixtures, testimage.EStargz))
	benchLazyRead(b, reg, "fixtures", fx.Dynamic)
}

func BenchmarkLazyReadDebianNode(b *testing.B) {
	img := testimage.CatalogImage(b, testimage.CatalogDebianNode, testimage.EStargz)
	reg := testimage.StartDockerRegistry(b)
	reg.Push(b, "node", img)
	benchLazyRead(b, reg, "node", "/usr/bin/node")
}
