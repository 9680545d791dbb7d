package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func nodeSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func regNode(mode fs.FileMode, body string) Node {
	return Node{Mode: mode, Size: int64(len(body)), SHA256: nodeSHA(body)}
}

func dirNode(mode fs.FileMode) Node { return Node{Mode: fs.ModeDir | mode} }

// TestStackLayers checks the oracle itself on hand-written cases.
func TestStackLayers(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]Entry
		want   Tree
	}{
		{
			name: "later layer wins, directories merge",
			layers: [][]Entry{
				{Dir("d", 0o755), File("d/a", 0o644, "1"), File("d/b", 0o644, "b")},
				{Dir("d", 0o700), File("d/a", 0o600, "2")},
			},
			want: Tree{"d": dirNode(0o700), "d/a": regNode(0o600, "2"), "d/b": regNode(0o644, "b")},
		},
		{
			name: "whiteout removes a directory and its content",
			layers: [][]Entry{
				{Dir("d", 0o755), Dir("d/e", 0o755), File("d/e/f", 0o644, "f"), File("d/g", 0o644, "g")},
				{Whiteout("d/e")},
			},
			want: Tree{"d": dirNode(0o755), "d/g": regNode(0o644, "g")},
		},
		{
			name: "opaque directory keeps only its own layer's content",
			layers: [][]Entry{
				{Dir("d", 0o755), File("d/old", 0o644, "old"), Dir("d/sub", 0o755), File("d/sub/x", 0o644, "x")},
				{Dir("d", 0o755), Opaque("d"), File("d/new", 0o644, "new")},
			},
			want: Tree{"d": dirNode(0o755), "d/new": regNode(0o644, "new")},
		},
		{
			name: "a file replaces a directory, a directory replaces a file",
			layers: [][]Entry{
				{Dir("a", 0o755), File("a/x", 0o644, "x"), File("b", 0o644, "b")},
				{File("a", 0o644, "now a file"), Dir("b", 0o755), File("b/y", 0o644, "y")},
			},
			want: Tree{"a": regNode(0o644, "now a file"), "b": dirNode(0o755), "b/y": regNode(0o644, "y")},
		},
		{
			name: "hard links are grouped by their smallest name",
			layers: [][]Entry{
				{File("z", 0o755, "same"), Hardlink("m", "z"), Hardlink("y", "z"), File("other", 0o644, "o")},
				{Whiteout("y")},
			},
			want: Tree{
				"z":     Node{Mode: 0o755, Size: 4, SHA256: nodeSHA("same"), LinkGroup: "m"},
				"m":     Node{Mode: 0o755, Size: 4, SHA256: nodeSHA("same"), LinkGroup: "m"},
				"other": regNode(0o644, "o"),
			},
		},
		{
			name: "symlinks are kept verbatim",
			layers: [][]Entry{
				{Symlink("lib", "usr/lib"), Symlink("abs", "/etc/x"), Symlink("./rel", "../up")},
			},
			want: Tree{
				"lib": {Mode: fs.ModeSymlink | 0o777, Target: "usr/lib"},
				"abs": {Mode: fs.ModeSymlink | 0o777, Target: "/etc/x"},
				"rel": {Mode: fs.ModeSymlink | 0o777, Target: "../up"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var layers [][]layerItem
			for _, l := range tc.layers {
				items, err := entryItems(l)
				require.NoError(t, err)
				layers = append(layers, items)
			}
			assert.Empty(t, DiffTrees(tc.want, stackLayers(layers)))
		})
	}
}

func TestEntryItemsRejectsMalformed(t *testing.T) {
	for _, e := range [][]Entry{
		{File("../escape", 0o644, "x")},
		{Hardlink("a", "missing")},
		{Dir("d", 0o755), Hardlink("a", "d")},
	} {
		_, err := entryItems(e)
		assert.Error(t, err, "%v", e[len(e)-1].Header.Name)
	}
}

// TestLayerEncodings checks every encoding of one layer against
// independent decoders: the media type, digest and size of the blob, the
// diffID of its content, and for eStargz the TOC digest annotation.
func TestLayerEncodings(t *testing.T) {
	t.Setenv(LayerCacheEnv, t.TempDir())
	entries := EdgeSpec().Layers[0].Entries
	want, err := TarEntries(entries)
	require.NoError(t, err)
	for _, enc := range Encodings {
		t.Run(enc.String(), func(t *testing.T) {
			l := LayerFromEntries(t, enc, entries...)
			mt, err := l.MediaType()
			require.NoError(t, err)
			assert.Equal(t, enc.MediaType(), mt)

			blob := readOpened(t, l.Compressed)
			digest, err := l.Digest()
			require.NoError(t, err)
			size, err := l.Size()
			require.NoError(t, err)
			assert.Equal(t, "sha256:"+hex.EncodeToString(sumOf(blob)), digest.String())
			assert.Equal(t, int64(len(blob)), size)

			var content []byte
			switch enc {
			case Gzip, EStargz:
				zr, err := gzip.NewReader(bytes.NewReader(blob))
				require.NoError(t, err)
				content, err = io.ReadAll(zr)
				require.NoError(t, err)
			case Zstd:
				zr, err := zstd.NewReader(bytes.NewReader(blob))
				require.NoError(t, err)
				content, err = io.ReadAll(zr)
				require.NoError(t, err)
				zr.Close()
			}
			diffID, err := l.DiffID()
			require.NoError(t, err)
			assert.Equal(t, "sha256:"+hex.EncodeToString(sumOf(content)), diffID.String())
			assert.Equal(t, content, readOpened(t, l.Uncompressed))
			if enc != EStargz {
				assert.Equal(t, want, content, "gzip and zstd carry the tar unchanged")
				return
			}
			desc, err := l.(interface {
				Descriptor() (*v1.Descriptor, error)
			}).Descriptor()
			require.NoError(t, err)
			assert.Equal(t, strconv.Itoa(len(content)), desc.Annotations[UncompressedSizeAnnotation])
			r, err := estargz.Open(io.NewSectionReader(bytes.NewReader(blob), 0, int64(len(blob))))
			require.NoError(t, err)
			tocDigest := desc.Annotations[TOCDigestAnnotation]
			require.NotEmpty(t, tocDigest)
			_, err = r.VerifyTOC(mustDigest(t, tocDigest))
			require.NoError(t, err, "the annotation is the TOC's digest")
			e, ok := r.Lookup("usr/bin/tool")
			require.True(t, ok)
			assert.Equal(t, int64(len("#!/bin/sh\necho tool v1\n")), e.Size)
		})
	}
}

func sumOf(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func readOpened(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// TestLayersDeterministic builds the same layers twice from scratch: the
// blobs must be identical, or image digests would change between runs.
func TestLayersDeterministic(t *testing.T) {
	spec := EdgeSpec()
	digests := func() map[string]bool {
		layerSets.Clear()
		out := map[string]bool{}
		for _, enc := range Encodings {
			d, err := spec.Image(t, enc).Digest()
			require.NoError(t, err)
			out[enc.String()+" "+d.String()] = true
		}
		return out
	}
	first := digests()
	assert.Equal(t, first, digests())
	assert.Len(t, first, 3)
}

// TestLayerCacheRebuildsDamagedBlob corrupts a cached blob; a fresh process
// (simulated by forgetting the in-process memo) must rebuild it.
func TestLayerCacheRebuildsDamagedBlob(t *testing.T) {
	t.Setenv(LayerCacheEnv, t.TempDir())
	defer func(old int64) { diskCacheMinBytes = old }(diskCacheMinBytes)
	diskCacheMinBytes = 0
	entries := []Entry{File("x", 0o644, "damaged cache test")}
	l := LayerFromEntries(t, Gzip, entries...).(*blobLayer)
	want, err := l.Digest()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(l.file, []byte("garbage"), 0o644))
	layerSets.Clear()
	l2 := LayerFromEntries(t, Gzip, entries...)
	got, err := l2.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, got)
	blob := readOpened(t, l2.Compressed)
	assert.Equal(t, want.Hex, hex.EncodeToString(sumOf(blob)))
}

// TestHostTreeLayer builds a real overlayfs, changes the merged view, and
// checks the upper directory's conversion two ways: the inputs' expected
// tree must equal what the kernel showed, and the image built from lower
// and upper must flatten (mutate.Extract) to the same tree.
func TestHostTreeLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("testimage: mounts overlayfs; skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("testimage: overlayfs mount needs root")
	}
	t.Setenv(LayerCacheEnv, t.TempDir())
	root := t.TempDir()
	lower, upper, work, merged := filepath.Join(root, "lower"), filepath.Join(root, "upper"), filepath.Join(root, "work"), filepath.Join(root, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		require.NoError(t, os.Mkdir(d, 0o755))
	}
	write := func(p, body string, mode os.FileMode) {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), mode))
		require.NoError(t, os.Chmod(p, mode))
	}
	write(filepath.Join(lower, "etc/hostname"), "lower\n", 0o644)
	write(filepath.Join(lower, "etc/keep"), "keep\n", 0o644)
	write(filepath.Join(lower, "usr/bin/prog"), "prog\n", 0o755)
	require.NoError(t, os.Link(filepath.Join(lower, "usr/bin/prog"), filepath.Join(lower, "usr/bin/prog-link")))
	require.NoError(t, os.Symlink("usr/bin", filepath.Join(lower, "bin")))
	require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(lower, "etc/abs-link")))
	write(filepath.Join(lower, "var/lib/state/a"), "a\n", 0o644)
	write(filepath.Join(lower, "var/lib/state/sub/b"), "b\n", 0o644)
	write(filepath.Join(lower, "opt/gone/x"), "x\n", 0o644)
	write(filepath.Join(lower, "opt/file"), "file\n", 0o644)
	write(filepath.Join(lower, "opt/dir/child"), "child\n", 0o644)
	require.NoError(t, unix.Mkfifo(filepath.Join(lower, "etc/fifo"), 0o600))
	require.NoError(t, os.Lchown(filepath.Join(lower, "etc/keep"), 1000, 1001))

	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("testimage: cannot mount overlayfs here: %v", err)
	}
	mounted := true
	defer func() {
		if mounted {
			unix.Unmount(merged, 0)
		}
	}()
	m := func(p string) string { return filepath.Join(merged, p) }
	write(m("etc/hostname"), "upper\n", 0o600)                        // copy-up with new content
	require.NoError(t, os.Remove(m("etc/abs-link")))                  // whiteout of a symlink
	require.NoError(t, os.RemoveAll(m("opt/gone")))                   // whiteout of a directory
	require.NoError(t, os.RemoveAll(m("var/lib/state")))              // recreated below: opaque
	write(m("var/lib/state/new"), "new\n", 0o644)                     //
	require.NoError(t, os.Remove(m("opt/file")))                      // file -> directory
	write(m("opt/file/inner"), "inner\n", 0o644)                      //
	require.NoError(t, os.RemoveAll(m("opt/dir")))                    // directory -> file
	write(m("opt/dir"), "was a dir\n", 0o644)                         //
	write(m("srv/new/file"), "new file\n", 0o644)                     // new files, hard linked
	require.NoError(t, os.Link(m("srv/new/file"), m("srv/new/link"))) //
	require.NoError(t, os.Symlink("../new/file", m("srv/new/rel")))   //
	require.NoError(t, os.Chmod(m("usr/bin"), 0o700))                 // metadata-only copy-up
	require.NoError(t, os.Lchown(m("etc/keep"), 1000, 1000))          //
	kernel, err := TreeFromFS(os.DirFS(merged))
	require.NoError(t, err)
	require.NoError(t, unix.Unmount(merged, 0))
	mounted = false

	// The upper dir really holds overlayfs's markers.
	info, err := os.Lstat(filepath.Join(upper, "opt/gone"))
	require.NoError(t, err)
	require.NotZero(t, info.Mode()&fs.ModeCharDevice, "whiteout is a character device")
	_, opaque, err := hostXattrs(filepath.Join(upper, "var/lib/state"))
	require.NoError(t, err)
	require.True(t, opaque, "recreated directory is opaque")

	spec := &Spec{Name: "overlay", Layers: []LayerInput{{Dir: lower}, {Dir: upper}}}
	want := spec.Expected(t)
	assert.Empty(t, DiffTrees(kernel, want), "expected tree vs the kernel's merged view")
	for _, enc := range Encodings {
		t.Run(enc.String(), func(t *testing.T) {
			got := ExtractTree(t, spec.Image(t, enc))
			if enc == EStargz {
				got = got.WithoutEStargzMeta()
			}
			assert.Empty(t, DiffTrees(want, got))
		})
	}

	// The upper layer's tar has docker's whiteout names.
	l := spec.Layer(t, 1, Gzip)
	names := tarNames(t, readOpened(t, l.Uncompressed))
	assert.Contains(t, names, "opt/.wh.gone")
	assert.Contains(t, names, "etc/.wh.abs-link")
	assert.Contains(t, names, "var/lib/state/.wh..wh..opq")
	assert.Equal(t, byte(tar.TypeLink), names["srv/new/link"], "second name of an inode is a hard link")
}

func tarNames(t *testing.T, b []byte) map[string]byte {
	t.Helper()
	out := map[string]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		p, _ := treePath(h.Name)
		out[p] = h.Typeflag
	}
}

func TestTreeFromTar(t *testing.T) {
	b, err := TarEntries([]Entry{
		Dir("./d/", 0o755),
		File("./d/f", 0o644, "f"),
		Hardlink("d/g", "./d/f"),
		Symlink("/l", "d/f"),
	})
	require.NoError(t, err)
	tree, err := TreeFromTar(bytes.NewReader(b))
	require.NoError(t, err)
	f := Node{Mode: 0o644, Size: 1, SHA256: nodeSHA("f"), LinkGroup: "d/f"}
	assert.Equal(t, Tree{"d": dirNode(0o755), "d/f": f, "d/g": f, "l": {Mode: fs.ModeSymlink | 0o777, Target: "d/f"}}, tree)

	for _, bad := range [][]Entry{
		{File("../x", 0o644, "")},
		{Hardlink("a", "nowhere")},
	} {
		b, err := TarEntries(bad)
		require.NoError(t, err)
		_, err = TreeFromTar(bytes.NewReader(b))
		assert.Error(t, err)
	}
}

// FuzzTreeFromTar: arbitrary bytes must give a tree or an error, never a
// panic or a hang.
func FuzzTreeFromTar(f *testing.F) {
	// Small seeds: the fuzzer minimizes every new input, which is slow for
	// big ones.
	for _, entries := range [][]Entry{
		{Dir("d", 0o755), File("d/f", 0o4755, "x"), Hardlink("d/g", "d/f"), Fifo("p", 0o600)},
		{File("a", 0o644, "a"), Hardlink("b", "a"), Hardlink("a", "b")},
		{Dir("d", 0o755), Symlink("d/l", "../../x")},
	} {
		b, err := TarEntries(entries)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := TreeFromTar(bytes.NewReader(b))
		if err != nil {
			return
		}
		for p, n := range tree {
			if n.LinkGroup != "" {
				require.Contains(t, tree, n.LinkGroup, "link group of %s", p)
			}
		}
	})
}

func mustDigest(t *testing.T, s string) digest.Digest {
	t.Helper()
	d, err := digest.Parse(s)
	require.NoError(t, err)
	return d
}

func TestLayerCachePrune(t *testing.T) {
	cache := t.TempDir()
	t.Setenv(LayerCacheEnv, cache)
	defer func(old int64) { diskCacheMinBytes = old }(diskCacheMinBytes)
	diskCacheMinBytes = 0
	l := LayerFromEntries(t, Zstd, File("old", 0o644, "unused for long")).(*blobLayer)
	base := strings.TrimSuffix(l.file, "."+Zstd.String())
	files, err := filepath.Glob(base + ".*")
	require.NoError(t, err)
	assert.Len(t, files, 7, "three blobs, three metadata files, one lock")

	pruneLayerCache(cache, time.Now().Add(-time.Hour))
	files, _ = filepath.Glob(base + ".*")
	assert.Len(t, files, 7, "recently used sets stay")

	old := time.Now().Add(-2 * layerCacheMaxIdle)
	require.NoError(t, os.Chtimes(base+".gzip.json", old, old))
	pruneLayerCache(cache, time.Now().Add(-layerCacheMaxIdle))
	files, _ = filepath.Glob(base + ".*")
	assert.Equal(t, []string{base + ".lock"}, files)
}
