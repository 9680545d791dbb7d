package overlay

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests build tiny layers straight with archive/tar: the package's
// own test binary stays small, which keeps its fuzz targets fast. Whole
// images (testimage's catalog) are checked in package lazy.

// te is a tar entry: a header and, for a regular file, its body.
type te struct {
	h    tar.Header
	body string
}

func file(name, body string) te {
	return te{h: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}
func dir(name string) te {
	return te{h: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755}}
}
func symlink(name, target string) te {
	return te{h: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}
func hardlink(name, target string) te {
	return te{h: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}
func whiteout(dir, name string) te { return file(dir+"/.wh."+name, "") }
func opaque(dir string) te         { return file(dir+"/.wh..wh..opq", "") }

func tarOf(t testing.TB, entries ...te) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.h
		h.ModTime = time.Unix(1577836800, 0)
		require.NoError(t, tw.WriteHeader(&h))
		_, err := tw.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// merge scans layer tars and merges them.
func merge(layers ...[]byte) (*Tree, error) {
	t := New()
	for i, raw := range layers {
		name := fmt.Sprintf("layer-%d", i)
		entries, err := ScanTar(bytes.NewReader(raw))
		if err != nil {
			var ee *EntryError
			if errors.As(err, &ee) {
				ee.Layer = name
			}
			return nil, err
		}
		if err := t.Apply(i, name, entries, func(e *Entry) any { return e.Offset }); err != nil {
			return nil, err
		}
	}
	t.Finish()
	return t, nil
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "usr/bin/env", want: "usr/bin/env"},
		{in: "./usr/bin/", want: "usr/bin"},
		{in: "././a//b/./c/", want: "a/b/c"},
		{in: "./", want: ""},
		{in: ".", want: ""},
		{in: "..", bad: true},
		{in: "../etc/passwd", bad: true},
		{in: "a/../../b", bad: true},
		{in: "a/../b", bad: true},
		{in: "/etc/passwd", want: "etc/passwd"},
		{in: "//etc//passwd", want: "etc/passwd"},
		{in: "/../etc/passwd", bad: true},
		{in: "/", want: ""},
		{in: "", bad: true},
		{in: "a\x00b", bad: true},
		{in: "..a/b..", want: "..a/b.."},
		{in: `a\..\b`, want: `a\..\b`},
	}
	for _, tt := range tests {
		got, err := CleanPath(tt.in)
		if tt.bad {
			assert.ErrorIs(t, err, ErrBadPath, "%q", tt.in)
			continue
		}
		require.NoError(t, err, "%q", tt.in)
		assert.Equal(t, tt.want, got, "%q", tt.in)
	}
}

// FuzzCleanPath: the shortcut for names already clean gives what the
// element-by-element cleaning gives.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"usr/bin/env", "./a", "a//b", "a/", "/a", "..", "a/../b", "..a/b..", ".", "a/./b", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := CleanPath(name)
		if name == "" || strings.IndexByte(name, 0) >= 0 {
			require.Error(t, err)
			return
		}
		want, wantErr := cleanElements(name)
		if wantErr != nil {
			require.Error(t, err, "%q", name)
			return
		}
		require.NoError(t, err, "%q", name)
		require.Equal(t, want, got, "%q", name)
	})
}

// TestHostileLayers: malformed and hostile entries fail the merge with an
// error naming the layer and the entry.
func TestHostileLayers(t *testing.T) {
	ok := tarOf(t, dir("etc"), file("etc/passwd", "root\n"))
	tests := []struct {
		name  string
		layer []byte
		entry string
		msg   string
	}{
		{"dot-dot", tarOf(t, file("../escape", "x")), "../escape", "climbs out"},
		{"deep dot-dot", tarOf(t, file("etc/../../escape", "x")), "etc/../../escape", "climbs out"},
		{"hard link out", tarOf(t, hardlink("etc/h", "../../etc/passwd")), "etc/h", "climbs out"},
		{"absolute and climbing", tarOf(t, file("/../etc/shadow", "x")), "/../etc/shadow", "climbs out"},
		{"hard link to nothing", tarOf(t, hardlink("etc/h", "etc/missing")), "etc/h", "does not exist"},
		{"hard link to a directory", tarOf(t, hardlink("etc/h", "etc")), "etc/h", "directory"},
		{"empty symlink", tarOf(t, symlink("etc/s", "")), "etc/s", "empty target"},
		{"whiteout of dot-dot", tarOf(t, file("etc/.wh..", "")), "etc/.wh..", "whiteout"},
		{"unknown type", tarOf(t, te{h: tar.Header{Typeflag: 'V', Name: "volume"}}), "volume", "unsupported tar entry type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := merge(ok, tt.layer)
			require.Error(t, err)
			var ee *EntryError
			require.ErrorAs(t, err, &ee, "%v", err)
			assert.Equal(t, "layer-1", ee.Layer)
			assert.Equal(t, tt.entry, ee.Entry)
			assert.Contains(t, err.Error(), "layer layer-1")
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
	big := tarOf(t, dir("etc"), file("etc/big", string(make([]byte, 4000))))
	for _, cut := range []int{512 + 512 + 100, 512 + 512 + 3990} {
		t.Run(fmt.Sprintf("truncated at %d", cut), func(t *testing.T) {
			_, err := merge(big[:cut])
			require.Error(t, err)
			assert.Contains(t, err.Error(), `"etc/big"`)
		})
	}
}

func TestSparseRefused(t *testing.T) {
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeGNUSparse, Name: "old-sparse", Size: 10},
		{Typeflag: tar.TypeReg, Name: "pax-sparse", PAXRecords: map[string]string{"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}},
	} {
		_, err := FromTar(h, 512)
		assert.ErrorContains(t, err, "sparse files are not supported", h.Name)
	}
}

// TestScanTarOffsets: each entry's offset is where its data is.
func TestScanTarOffsets(t *testing.T) {
	raw := tarOf(t, dir("a"), file("a/one", "first body"), symlink("a/l", "one"), file("a/two", "second"),
		te{h: tar.Header{Typeflag: tar.TypeReg, Name: "a/" + string(bytes.Repeat([]byte("long"), 40)), Size: 4, Format: tar.FormatPAX}, body: "pax!"})
	entries, err := ScanTar(bytes.NewReader(raw))
	require.NoError(t, err)
	bodies := map[string]string{}
	for _, e := range entries {
		if e.Type == tar.TypeReg {
			bodies[e.Path] = string(raw[e.Offset : e.Offset+e.Size])
		}
	}
	assert.Equal(t, "first body", bodies["a/one"])
	assert.Equal(t, "second", bodies["a/two"])
	assert.Equal(t, "pax!", bodies["a/"+string(bytes.Repeat([]byte("long"), 40))])
}

// TestResolve checks symlink resolution: inside the image, bounded.
func TestResolve(t *testing.T) {
	tr, err := merge(tarOf(t,
		dir("usr"), dir("usr/bin"),
		file("usr/bin/env", "env"),
		symlink("bin", "usr/bin"),
		symlink("abs", "/usr/bin/env"),
		symlink("up", "../../../../usr/bin/env"),
		symlink("usr/bin/self", "."),
		symlink("loop1", "loop2"),
		symlink("loop2", "loop1"),
		symlink("through-file", "usr/bin/env/x"),
		symlink("dangling", "/nowhere"),
	))
	require.NoError(t, err)
	env := tr.LookupNoFollow("usr/bin/env")
	require.NotNil(t, env)
	for _, name := range []string{"bin/env", "abs", "up", "usr/bin/self/self/env", "bin/self/../bin/env"} {
		n, err := tr.Resolve(name, true)
		require.NoError(t, err, name)
		assert.Same(t, env, n, name)
	}
	n, err := tr.Resolve("abs", false)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSymlink, n.Mode.Type())
	_, err = tr.Resolve("loop1", true)
	assert.ErrorIs(t, err, syscall.ELOOP)
	_, err = tr.Resolve("through-file", true)
	assert.ErrorIs(t, err, syscall.ENOTDIR)
	_, err = tr.Resolve("usr/bin/env/x", true)
	assert.ErrorIs(t, err, syscall.ENOTDIR)
	_, err = tr.Resolve("dangling", true)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	n, err = tr.Resolve("dangling", false)
	require.NoError(t, err)
	assert.Equal(t, "/nowhere", n.Target)
}

// TestOverlayRules: whiteouts, opaque directories, type changes, metadata
// updates (the catalog's edge image checks the same against mutate.Extract).
func TestOverlayRules(t *testing.T) {
	tr, err := merge(
		tarOf(t, dir("a"), file("a/x", "x"), dir("a/sub"), file("a/sub/y", "y"), dir("b"), file("b/keep", "k"),
			file("c", "file"), dir("d"), file("d/child", "c")),
		tarOf(t, whiteout("a", "x"), file("b/new", "n"), opaque("b"), dir("c"), file("c/in", "i"), file("d", "now a file"),
			te{h: tar.Header{Typeflag: tar.TypeDir, Name: "a/", Mode: 0o700, Uid: 7}}),
	)
	require.NoError(t, err)
	assert.Nil(t, tr.LookupNoFollow("a/x"), "whited out")
	assert.NotNil(t, tr.LookupNoFollow("a/sub/y"), "siblings stay")
	assert.Equal(t, fs.ModeDir|0o700, tr.LookupNoFollow("a").Mode, "directory metadata from the upper layer")
	assert.Equal(t, uint32(7), tr.LookupNoFollow("a").UID)
	assert.Nil(t, tr.LookupNoFollow("b/keep"), "hidden by the opaque marker")
	assert.NotNil(t, tr.LookupNoFollow("b/new"), "the layer's own entries stay, even before the marker")
	assert.True(t, tr.LookupNoFollow("c").IsDir())
	assert.NotNil(t, tr.LookupNoFollow("c/in"))
	assert.True(t, tr.LookupNoFollow("d").Mode.IsRegular())
	assert.Nil(t, tr.LookupNoFollow("d/child"))
}

// TestHardLinksAndInodes: names of one file share an inode and its
// number; numbering is deterministic.
func TestHardLinksAndInodes(t *testing.T) {
	layers := [][]byte{
		tarOf(t, dir("a"), file("a/f", "one"), hardlink("a/g", "a/f"), hardlink("h", "a/f")),
		tarOf(t, whiteout(".", "h"), te{h: tar.Header{Typeflag: tar.TypeDir, Name: "a/", Mode: 0o700}}, file("a/g", "two")),
	}
	tr, err := merge(layers...)
	require.NoError(t, err)
	f, g := tr.LookupNoFollow("a/f"), tr.LookupNoFollow("a/g")
	require.NotNil(t, f)
	require.NotNil(t, g)
	assert.NotSame(t, f, g, "the upper layer replaced one name only")
	assert.Equal(t, uint32(1), f.Nlink)
	assert.Nil(t, tr.LookupNoFollow("h"))

	tr1, err := merge(layers[0])
	require.NoError(t, err)
	f1, g1, h1 := tr1.LookupNoFollow("a/f"), tr1.LookupNoFollow("a/g"), tr1.LookupNoFollow("h")
	assert.Same(t, f1, g1)
	assert.Same(t, f1, h1)
	assert.Equal(t, uint32(3), f1.Nlink)
	assert.Equal(t, uint32(3), tr1.Root.Nlink, "root: 2 + one subdirectory")

	again, err := merge(layers[0])
	require.NoError(t, err)
	assert.Equal(t, f1.Ino, again.LookupNoFollow("h").Ino, "inode numbers are deterministic")
}

// TestFromTOC: a TOC built by the estargz library becomes the same
// entries as the tar it was built from, with chunks covering every file.
func TestFromTOC(t *testing.T) {
	raw := tarOf(t, dir("etc"), file("etc/hostname", "a file of several chunks\n"), symlink("etc/l", "hostname"),
		hardlink("etc/h", "etc/hostname"), file("etc/empty", ""), file(".wh.gone", ""))
	toc, tocOffset := tocOf(t, raw)
	var jtoc estargz.JTOC
	require.NoError(t, json.Unmarshal(toc, &jtoc))
	entries, err := FromTOC(&jtoc, tocOffset)
	require.NoError(t, err)
	fromTar, err := ScanTar(bytes.NewReader(raw))
	require.NoError(t, err)
	require.Len(t, entries, len(fromTar), "the landmark file estargz adds is hidden")
	for i, e := range entries {
		want := fromTar[i]
		assert.Equal(t, want.Path, e.Path)
		assert.Equal(t, want.Type, e.Type)
		assert.Equal(t, want.Linkname, e.Linkname)
		assert.Equal(t, want.Size, e.Size)
		assert.Equal(t, want.FileMode(), e.FileMode())
	}
	big := entries[1]
	require.Equal(t, "etc/hostname", big.Path)
	assert.Greater(t, len(big.Chunks), 2, "8-byte chunks")
	var covered int64
	for _, c := range big.Chunks {
		assert.Equal(t, covered, c.FileOffset)
		assert.Less(t, c.Offset, c.Next)
		assert.LessOrEqual(t, c.Next, tocOffset)
		covered += c.Size
	}
	assert.Equal(t, big.Size, covered)

	// A TOC whose chunks leave a gap is refused.
	jtoc.Entries[2].ChunkOffset++
	_, err = FromTOC(&jtoc, tocOffset)
	assert.ErrorContains(t, err, "etc/hostname")
}

// TestAbsoluteMemberNames: a layer whose member names start with "/" is
// read as Docker and containerd extract it, relative to the image root.
func TestAbsoluteMemberNames(t *testing.T) {
	tree, err := merge(tarOf(t, dir("/etc"), file("/etc/x", "abs"), hardlink("/etc/h", "/etc/x"), symlink("/etc/s", "/etc/x")))
	require.NoError(t, err)
	for _, p := range []string{"etc", "etc/x", "etc/h", "etc/s"} {
		assert.NotNil(t, tree.LookupNoFollow(p), p)
	}
}

// TestImpliedDirectoryTimes: a directory no layer has an entry for (the
// root, a parent left out) is as new as what it holds, not year 1.
func TestImpliedDirectoryTimes(t *testing.T) {
	tree, err := merge(tarOf(t, file("a/b/c", "x")))
	require.NoError(t, err)
	want := time.Unix(1577836800, 0)
	for _, p := range []string{"", "a", "a/b"} {
		n := tree.LookupNoFollow(p)
		require.NotNil(t, n, p)
		assert.True(t, n.MTime.Equal(want), "%q: %v", p, n.MTime)
	}
	empty, err := merge(tarOf(t))
	require.NoError(t, err)
	assert.Equal(t, int64(0), empty.Root.MTime.Unix())
}
