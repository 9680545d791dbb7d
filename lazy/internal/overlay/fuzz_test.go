package overlay

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"
)

// checkTree walks a merged tree and checks what every reader of it relies
// on: clean names, resolvable paths, consistent links and chunks.
func checkTree(t *testing.T, tr *Tree) {
	seen := map[*Inode]bool{}
	var walk func(p string, n *Inode, depth int)
	walk = func(p string, n *Inode, depth int) {
		if depth > 4096 {
			t.Fatalf("%s: tree too deep (a cycle?)", p)
		}
		if n.IsDir() {
			if seen[n] {
				t.Fatalf("%s: directory reachable twice", p)
			}
			seen[n] = true
			if len(n.Names) != len(n.Children) {
				t.Fatalf("%s: %d names for %d children", p, len(n.Names), len(n.Children))
			}
			for _, name := range n.Names {
				if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
					t.Fatalf("%s: bad name %q", p, name)
				}
				walk(path.Join(p, name), n.Children[name], depth+1)
			}
			return
		}
		if !cleanRelPath(p) {
			t.Fatalf("invalid path %q", p)
		}
		if n.Ino == 0 || n.Nlink == 0 {
			t.Fatalf("%s: ino %d nlink %d", p, n.Ino, n.Nlink)
		}
		if n.Mode.IsRegular() && n.Size > 0 && n.Data == nil {
			t.Fatalf("%s: regular file without data", p)
		}
		if cs, ok := n.Data.([]Chunk); ok {
			var covered int64
			for _, c := range cs {
				if c.FileOffset != covered || c.Size <= 0 {
					t.Fatalf("%s: chunk %+v after %d bytes", p, c, covered)
				}
				covered += c.Size
			}
			if covered != n.Size {
				t.Fatalf("%s: chunks cover %d of %d", p, covered, n.Size)
			}
		}
		// Resolution ends, inside the tree, whatever the links say.
		if _, err := tr.Resolve(p, true); err != nil && !isResolveError(err) {
			t.Fatalf("%s: %v", p, err)
		}
		if got, err := tr.Resolve(p, false); err != nil || got != n {
			t.Fatalf("%s: lstat-style lookup gave %v, %v", p, got, err)
		}
	}
	walk(".", tr.Root, 0)
}

// cleanRelPath is fs.ValidPath without its UTF-8 rule: layers may name
// files in any bytes (io/fs then cannot open them, as with os.DirFS).
func cleanRelPath(p string) bool {
	if p == "." {
		return true
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." || strings.IndexByte(el, 0) >= 0 {
			return false
		}
	}
	return true
}

func isResolveError(err error) bool {
	return err == fs.ErrNotExist || strings.Contains(err.Error(), "not a directory") || strings.Contains(err.Error(), "too many levels")
}

// lowerLayers are two layers in the style of the catalog's edge image,
// which fuzzed layers are put on.
func lowerLayers(t testing.TB) [][]Entry {
	layers := [][]byte{
		tarOf(t, dir("usr"), dir("usr/bin"), dir("usr/lib"), symlink("bin", "usr/bin"), symlink("lib", "usr/lib"),
			file("usr/bin/tool", "#!/bin/sh\n"), hardlink("usr/bin/tool-hard", "usr/bin/tool"), symlink("usr/bin/tool-abs", "/usr/bin/tool"),
			dir("etc"), file("etc/hostname", "v1\n"), dir("srv"), dir("srv/opaque"), file("srv/opaque/old", "old"),
			dir("opt"), file("opt/file-to-dir", "f"), dir("opt/dir-to-file"), file("opt/dir-to-file/child", "c")),
		tarOf(t, whiteout("usr/bin", "tool-hard"), opaque("srv/opaque"), file("srv/opaque/new", "new"),
			dir("opt/file-to-dir"), file("opt/dir-to-file", "now a file"), symlink("etc/up", "../../../etc/hostname")),
	}
	var out [][]Entry
	for _, raw := range layers {
		entries, err := ScanTar(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entries)
	}
	return out
}

func offsetData(e *Entry) any {
	if len(e.Chunks) > 0 {
		return e.Chunks
	}
	return e.Offset
}

// FuzzTarEntries feeds arbitrary tar headers through entry checking and
// the overlay merge, as a third layer over two real ones. The input is
// compact (an entry a line: type flag, name, "\t", link name, "\t", body)
// so that the fuzzer spends its time on names and merge rules, not on
// tar framing (archive/tar's job; see FuzzTarStream).
func FuzzTarEntries(f *testing.F) {
	lower := lowerLayers(f)
	for _, seed := range []string{
		"5usr/bin/\t\t\n0usr/bin/new\t\tabc\n1usr/bin/new-hard\tusr/bin/new\t",
		"0opt/.wh.file-to-dir\t\t\n0srv/opaque/.wh..wh..opq\t\t\n2srv/opaque\t../../../etc/hostname\t",
		"2a\tb\t\n2b\ta\t\n5a/c/\t\t\n1x\ta\t",
		"0../escape\t\tx\n1h\t/etc/passwd\t\n5./\t\t\n0.wh..\t\t",
		"2bin\t/usr/sbin\t\n0bin/new\t\tx\n1usr/bin/tool\tusr/bin/tool-hard\t",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var entries []Entry
		for _, line := range strings.Split(input, "\n") {
			if line == "" {
				continue
			}
			name, rest, _ := strings.Cut(line[1:], "\t")
			link, body, _ := strings.Cut(rest, "\t")
			h := &tar.Header{Typeflag: line[0], Name: name, Linkname: link, Mode: 0o755}
			if line[0] == tar.TypeReg {
				h.Size = int64(len(body))
			}
			e, err := FromTar(h, 0)
			if err != nil {
				continue
			}
			if e.Path != "" && !cleanRelPath(e.Path) {
				t.Fatalf("%q let through as %q", name, e.Path)
			}
			entries = append(entries, e)
		}
		tr := New()
		for i, es := range lower {
			if err := tr.Apply(i, "lower", es, offsetData); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.Apply(len(lower), "fuzz", entries, offsetData); err != nil {
			return
		}
		tr.Finish()
		checkTree(t, tr)
	})
}

// FuzzTarStream feeds arbitrary bytes to the tar scanner: every entry it
// accepts has a clean path and its data inside the stream.
func FuzzTarStream(f *testing.F) {
	f.Add(tarOf(f, dir("etc"), file("etc/hostname", "x\n")))
	f.Add(tarOf(f, file("../x", "x"), hardlink("a", "b")))
	f.Add(tarOf(f, symlink("a", "b"), te{h: tar.Header{Typeflag: tar.TypeDir, Name: "./"}}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		entries, err := ScanTar(bytes.NewReader(raw))
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Path != "" && !cleanRelPath(e.Path) {
				t.Fatalf("%q let through as %q", e.Name, e.Path)
			}
			if e.Offset < 0 || e.Size < 0 || e.Offset+e.Size > int64(len(raw)) {
				t.Fatalf("%q: data %d+%d outside the %d-byte stream", e.Name, e.Offset, e.Size, len(raw))
			}
			if e.Type == tar.TypeLink && !cleanRelPath(e.Linkname) {
				t.Fatalf("%q: hard link target %q", e.Name, e.Linkname)
			}
		}
	})
}

// tocOf builds an eStargz blob of a tar with the estargz library and
// returns its TOC JSON and TOC offset.
func tocOf(t testing.TB, raw []byte) ([]byte, int64) {
	blob, err := estargz.Build(io.NewSectionReader(bytes.NewReader(raw), 0, int64(len(raw))), estargz.WithChunkSize(8))
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	data, err := io.ReadAll(blob)
	if err != nil {
		t.Fatal(err)
	}
	sr := io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data)))
	tocOff, footerSize, err := estargz.OpenFooter(sr)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := (&estargz.GzipDecompressor{}).DecompressTOC(bytes.NewReader(data[tocOff : int64(len(data))-footerSize]))
	if err != nil {
		t.Fatal(err)
	}
	toc, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return toc, tocOff
}

// FuzzTOCEntries feeds arbitrary TOC JSON through the eStargz entry
// conversion and the overlay merge.
func FuzzTOCEntries(f *testing.F) {
	toc, tocOffset := tocOf(f, tarOf(f, dir("etc"), file("etc/hostname", "a file of several chunks\n"), symlink("etc/l", "hostname"),
		hardlink("etc/h", "etc/hostname"), file(".wh.gone", "")))
	f.Add(toc, tocOffset)
	f.Add([]byte(`{"version":1,"entries":[{"name":"a","type":"reg","size":10,"offset":5,"chunkDigest":"sha256:`+strings.Repeat("0", 64)+`"},{"type":"chunk","chunkOffset":4,"offset":9}]}`), int64(100))
	f.Add([]byte(`{"version":1,"entries":[{"name":"../a","type":"hardlink","linkName":"/etc/passwd"}]}`), int64(100))
	lower := lowerLayers(f)
	f.Fuzz(func(t *testing.T, raw []byte, tocOffset int64) {
		var toc estargz.JTOC
		if err := json.Unmarshal(raw, &toc); err != nil {
			return
		}
		entries, err := FromTOC(&toc, tocOffset)
		if err != nil {
			return
		}
		for _, e := range entries {
			for _, c := range e.Chunks {
				if c.Offset <= 0 || c.Next <= c.Offset || c.Next > tocOffset || c.Size <= 0 || c.Size > MaxChunkSize {
					t.Fatalf("%q: chunk %+v let through", e.Name, c)
				}
			}
		}
		tr := New()
		for i, es := range lower {
			if err := tr.Apply(i, "lower", es, offsetData); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.Apply(len(lower), "fuzz", entries, offsetData); err != nil {
			return
		}
		tr.Finish()
		checkTree(t, tr)
	})
}
