package main

import (
	"bytes"
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// mountImage mounts ref on a fresh directory in this process and returns it.
func mountImage(t *testing.T, ref, cache string, flags ...string) string {
	t.Helper()
	mnt := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	codec := make(chan int, 1)
	go func() {
		codec <- run(ctx, append(append([]string{"mount", "--cache-dir", cache}, flags...), ref, mnt), &bytes.Buffer{}, &stderr)
	}()
	for deadline := time.Now().Add(time.Minute); mountedFSType(t, mnt) != "fuse.nanofs"; time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-codec:
			t.Fatalf("mount %s exited with %d: %s", ref, code, stderr.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "mount of %s did not become ready", ref)
	}
	t.Cleanup(func() {
		cancel()
		assert.Equal(t, 0, <-codec, stderr.String())
	})
	return mnt
}

// TestMountImageEqualsExtract mounts every catalog image in every encoding
// from Debian's registry and walks the mount like any program would (lstat,
// readlink, sha256 of every file): the tree must equal go-containerregistry's
// mutate.Extract of the same image.
func TestMountImageEqualsExtract(t *testing.T) {
	requireFUSEForMount(t)
	if testing.Short() {
		t.Skip("mounts every catalog image; skipped with -short")
	}
	reg := testimage.StartDockerRegistry(t)
	for _, name := range testimage.CatalogNames {
		for _, enc := range testimage.Encodings {
			t.Run(name+"/"+enc.String(), func(t *testing.T) {
				img := testimage.CatalogImage(t, name, enc)
				ref := reg.Push(t, "mount/"+name+"-"+enc.String(), img).String()
				want := testimage.ExtractTree(t, img).WithoutEStargzMeta()
				mnt := mountImage(t, ref, t.TempDir())

				got, err := testimage.TreeFromFS(os.DirFS(mnt))
				require.NoError(t, err)
				// A flattened tar has no entry for a directory that only
				// deeper entries imply; the mount shows it. Drop those, but
				// only when something really is below them.
				for p, n := range got {
					if _, ok := want[p]; ok || !n.Mode.IsDir() {
						continue
					}
					require.True(t, hasDescendant(want, p), "the mount shows a directory %s that the image does not have", p)
					delete(got, p)
				}
				assert.Empty(t, testimage.DiffTrees(want, got))
			})
		}
	}
}

func hasDescendant(tree testimage.Tree, dir string) bool {
	for p := range tree {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// TestMountCatFetchesOnlyThatFile reads one file through the mount of an
// eStargz image and counts, at the registry, the blob bytes that cost.
func TestMountCatFetchesOnlyThatFile(t *testing.T) {
	requireFUSEForMount(t)
	spec := testimage.FixturesSpec(t)
	img := spec.Image(t, testimage.EStargz)
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "mount/cat", img)
	counter := testimage.StartCounter(t, reg.Host)

	mnt := mountImage(t, counter.Ref("mount/cat"), t.TempDir())
	entries, err := os.ReadDir(mnt)
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	listed := counter.Stats()

	const file = "opt/extra/data.bin"
	want := spec.Expected(t)[file]
	got, err := os.ReadFile(filepath.Join(mnt, file))
	require.NoError(t, err)
	require.Equal(t, want.Size, int64(len(got)))
	read := counter.Stats()

	layers, err := img.Layers()
	require.NoError(t, err)
	var imageBytes int64
	for _, l := range layers {
		n, err := l.Size()
		require.NoError(t, err)
		imageBytes += n
	}
	fetched := read.BlobBytes - listed.BlobBytes
	t.Logf("image layers %d B; mount + list root %d B; cat %s (%d B) fetched %d B in %d requests",
		imageBytes, listed.BlobBytes, path.Base(file), len(got), fetched, read.BlobRequests-listed.BlobRequests)
	assert.Positive(t, fetched)
	// The file's chunks compress to at most its size plus gzip framing.
	assert.LessOrEqual(t, fetched, want.Size+want.Size/20+4096, "reading one file fetched more than its chunks")
	assert.Less(t, listed.BlobBytes+fetched, imageBytes, "mounting and reading one file fetched the whole image")
}

// TestMountDebianNodeCosts measures what a user of `nanofs mount` waits for
// and what crosses the network: the time until the root of the Debian-node
// image is listable, and the blob bytes it takes to read node (Debian's
// /usr/bin/node is a small launcher; the runtime is libnode). eStargz must
// fetch less in all than gzip, which streams whole layers.
func TestMountDebianNodeCosts(t *testing.T) {
	requireFUSEForMount(t)
	if testing.Short() {
		t.Skip("builds the Debian-node image; skipped with -short")
	}
	spec := testimage.DebianNodeSpec(t)
	reg := testimage.StartDockerRegistry(t)
	counter := testimage.StartCounter(t, reg.Host)
	total := map[testimage.Encoding]int64{}
	for _, enc := range []testimage.Encoding{testimage.Gzip, testimage.EStargz} {
		repo := "costs/node-" + enc.String()
		reg.Push(t, repo, spec.Image(t, enc))
		counter.Reset()

		start := time.Now()
		mnt := mountImage(t, counter.Ref(repo), t.TempDir())
		_, err := os.ReadDir(mnt)
		require.NoError(t, err)
		listable := time.Since(start)
		atRoot := counter.Stats().BlobBytes

		var read int
		for _, f := range []string{"usr/bin/node", "usr/lib/x86_64-linux-gnu/libnode.so.108"} {
			b, err := os.ReadFile(filepath.Join(mnt, f))
			require.NoError(t, err)
			read += len(b)
		}
		total[enc] = counter.Stats().BlobBytes
		t.Logf("%s: root listable after %v (%d blob bytes); reading node and libnode (%d B) fetched %d more blob bytes",
			enc, listable.Round(time.Millisecond), atRoot, read, total[enc]-atRoot)
	}
	assert.Less(t, total[testimage.EStargz], total[testimage.Gzip])
}

// TestMountPrefetch mounts an eStargz image with --prefetch: once the
// background fetch is done, running through the program's closure in the
// mount costs no more blob requests.
func TestMountPrefetch(t *testing.T) {
	requireFUSEForMount(t)
	fx := testimage.CFixtures(t)
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "mount/prefetch", testimage.DistrolessSpec(t).Image(t, testimage.EStargz))
	counter := testimage.StartCounter(t, reg.Host)
	mnt := mountImage(t, counter.Ref("mount/prefetch"), t.TempDir(), "--prefetch")

	// The prefetch is done when the byte count, past libc's size, stops
	// moving.
	var last int64 = -1
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		n := counter.Stats().BlobBytes
		if n == last && n > 1<<20 {
			break
		}
		last = n
		require.True(t, time.Now().Before(deadline), "prefetch did not settle")
	}
	for _, p := range append(fx.Expected[fx.Dynamic], fx.Dynamic) {
		_, err := os.ReadFile(filepath.Join(mnt, p))
		require.NoError(t, err)
	}
	assert.Equal(t, last, counter.Stats().BlobBytes, "reading the prefetched closure fetched more")
	assert.Greater(t, last, int64(1<<20), "the prefetch fetched little: libc alone is larger")
}
