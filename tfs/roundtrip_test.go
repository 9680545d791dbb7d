package tfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pseudo returns n deterministic pseudo-random bytes.
func pseudo(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func manyFiles(n int) []entry {
	es := make([]entry, 0, n)
	for i := range n {
		es = append(es, bigFile(fmt.Sprintf("d%02d/sub%d/file-%05d.txt", i%37, i%3, i), pseudo(uint64(i), i%1500)))
	}
	return es
}

func deepPath(depth int) string {
	parts := make([]string, depth)
	for i := range parts {
		parts[i] = fmt.Sprintf("level%03d", i)
	}
	return strings.Join(parts, "/")
}

func TestRoundTrip(t *testing.T) {
	deep := deepPath(200)
	cases := []struct {
		name    string
		entries []entry
		short   bool // run under -short too
	}{
		{"empty", nil, true},
		{"one file", []entry{regular("hello", "hello, world\n")}, true},
		{"sector boundaries", []entry{
			bigFile("zero", nil), bigFile("one", []byte{7}), bigFile("511", pseudo(1, 511)),
			bigFile("512", pseudo(2, 512)), bigFile("513", pseudo(3, 513)), bigFile("4096", pseudo(4, 4096)),
		}, true},
		{"unicode names", []entry{
			regular("données/été.txt", "ete"), regular("日本語/ファイル", "jp"), regular("emoji/😀🚀", "rocket"),
			regular("mixed/Ünïcödé name with spaces", "x"), regular("greek/αβγ/δ", "d"),
			regular("nfc/\u00e9", "nfc"), regular("nfc/e\u0301", "nfd"),
		}, true},
		{"deep path", []entry{regular(deep+"/leaf", "deep"), symlink("/"+deep+"/leaf", "shortcut")}, true},
		{"long names", []entry{regular(strings.Repeat("n", 255), "max"), regular("dir/"+strings.Repeat("é", 127), "2-byte")}, true},
		{"symlinks", []entry{
			regular("usr/lib/libc.so.6", "libc"),
			symlink("usr/lib", "lib"), symlink("/usr/lib/libc.so.6", "abs"), symlink("../lib/libc.so.6", "usr/bin/rel"),
			symlink("lib", "chain"), dirEntry("usr/bin"),
		}, true},
		{"hard links", []entry{
			regular("bin/busybox", "busybox binary"), hardlink("bin/busybox", "bin/sh"), hardlink("bin/busybox", "usr/bin/ls"),
			hardlink("bin/sh", "sbin/init"), // link to a link
			hardlink("late/target", "early"), regular("late/target", "defined after its link"),
			symlink("busybox", "bin/bb"), hardlink("bin/bb", "bin/bb2"), // hard-linked symlink
		}, true},
		{"empty dirs and any order", []entry{
			regular("a/b/c/file", "x"), dirEntry("a/b"), dirEntry("a"), dirEntry("z/empty"), dirEntry("/"), dirEntry("a/b/c"),
		}, true},
		{"thousands of files", manyFiles(3000), true},
		{"file over 32 MiB", []entry{bigFile("big", pseudo(9, 70<<20+123)), regular("after", "after the big one")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && !tc.short {
				t.Skip("large; skipped with -short")
			}
			img := build(t, func(w *Writer) { add(t, w, tc.entries...) })
			require.NoError(t, Verify(img, img.size()))
			f := open(t, img)
			checkTree(t, f, tc.entries)

			var names []string
			for _, e := range tc.entries {
				if e.kind != kindDir || strings.Trim(e.name, "/") != "" {
					names = append(names, strings.Trim(e.name, "/"))
				}
			}
			if tc.name != "file over 32 MiB" { // fstest re-reads every file several times
				require.NoError(t, fstest.TestFS(f, names...))
			}
		})
	}
}

// checkTree compares what the reader shows with what was written.
func checkTree(t *testing.T, f *FS, entries []entry) {
	t.Helper()
	byName := map[string]entry{}
	for _, e := range entries {
		byName[strings.Trim(e.name, "/")] = e
	}
	final := func(e entry) entry {
		for e.kind == kindLink {
			e = byName[e.target]
		}
		return e
	}
	names := map[string]int{} // final target -> names
	for _, e := range entries {
		if e.kind == kindLink || e.kind == kindFile || e.kind == kindSymlink {
			names[finalName(byName, e)]++
		}
	}
	for _, e := range entries {
		p := strings.Trim(e.name, "/")
		if p == "" {
			continue
		}
		info, err := f.Lstat(p)
		require.NoError(t, err, p)
		fe := final(e)
		switch fe.kind {
		case kindDir:
			assert.True(t, info.IsDir(), p)
		case kindFile:
			require.True(t, info.Mode().IsRegular(), p)
			assert.Equal(t, int64(len(fe.data)), info.Size(), p)
			got, err := f.ReadFile(p)
			require.NoError(t, err, p)
			assert.True(t, bytes.Equal(fe.data, got), "%s: contents differ", p)
		case kindSymlink:
			assert.Equal(t, fs.ModeSymlink, info.Mode().Type(), p)
			target, err := f.ReadLink(p)
			require.NoError(t, err)
			assert.Equal(t, fe.target, target, p)
		}
		if fe.kind != kindDir {
			st := info.Sys().(*FileStat)
			assert.Equal(t, uint64(names[finalName(byName, e)]), st.Nlink, "%s: nlink", p)
		}
	}
	// Names of one hard-linked file share an inode.
	for _, e := range entries {
		if e.kind != kindLink {
			continue
		}
		a, err := f.Lstat(strings.Trim(e.name, "/"))
		require.NoError(t, err)
		b, err := f.Lstat(finalName(byName, e))
		require.NoError(t, err)
		assert.Equal(t, b.Sys().(*FileStat).Inode, a.Sys().(*FileStat).Inode, e.name)
	}
}

func finalName(byName map[string]entry, e entry) string {
	for e.kind == kindLink {
		e = byName[e.target]
	}
	return strings.Trim(e.name, "/")
}

func TestSymlinkResolution(t *testing.T) {
	img := build(t, func(w *Writer) {
		add(t, w,
			regular("usr/lib/x86_64-linux-gnu/libc.so.6", "libc"),
			symlink("usr/lib", "lib"),
			symlink("x86_64-linux-gnu/libc.so.6", "usr/lib/libc.so"),
			symlink("/lib/libc.so", "abs"),
			symlink("../../lib/libc.so", "usr/bin/up"),
			symlink("loop2", "loop1"), symlink("loop1", "loop2"),
			symlink("missing", "dangling"),
			symlink("/", "rootlink"),
		)
	})
	f := open(t, img)
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"lib/x86_64-linux-gnu/libc.so.6", "libc", nil},
		{"lib/libc.so", "libc", nil},
		{"abs", "libc", nil},
		{"usr/bin/up", "libc", nil},
		{"rootlink/rootlink/abs", "libc", nil},
		{"loop1", "", errTooManyLinks},
		{"dangling", "", fs.ErrNotExist},
		{"abs/x", "", fs.ErrNotExist},
		{"../abs", "", fs.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.ReadFile(tc.name)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
		})
	}
	info, err := f.Stat("lib")
	require.NoError(t, err)
	assert.True(t, info.IsDir())
	info, err = f.Lstat("lib")
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSymlink|0o777, info.Mode())
}

func TestDeterministic(t *testing.T) {
	entries := append(manyFiles(300), symlink("d01", "link"), hardlink("d01/sub1/file-00001.txt", "hl"))
	setup := func(w *Writer) {
		add(t, w, entries...)
		require.NoError(t, w.SetProgram("/d01/sub1/file-00001.txt"))
		require.NoError(t, w.SetEnvironment(map[string]string{"Z": "1", "A": "2", "M": "3", "PATH": "/bin"}))
		require.NoError(t, w.SetRoot("debug_exit", Flag{}))
	}
	a := build(t, setup, WithSeed([]byte("seed")))
	b := build(t, setup, WithSeed([]byte("seed")))
	assert.True(t, bytes.Equal(a.b, b.b), "same entries and seed must give identical images")
	c := build(t, setup, WithSeed([]byte("other")))
	require.Equal(t, len(a.b), len(c.b))
	fa, fc := open(t, a), open(t, c)
	assert.NotEqual(t, fa.UUID(), fc.UUID())
	copy(c.b[8:24], a.b[8:24])
	assert.True(t, bytes.Equal(a.b, c.b), "only the UUID depends on the seed")

	u := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	d := open(t, build(t, setup, WithUUID(u), WithSeed([]byte("ignored"))))
	assert.Equal(t, u, d.UUID())
	assert.Equal(t, "01020304-0506-0708-090a-0b0c0d0e0f10", FormatUUID(d.UUID()))
}

// Both placement modes produce the same bytes for the same calls.
func TestStreamWriterMatchesSeekable(t *testing.T) {
	entries := append(manyFiles(500), bigFile("big", pseudo(5, 3<<20+5)), symlink("big", "s"), hardlink("big", "h"))
	setup := func(w *Writer) {
		add(t, w, entries...)
		require.NoError(t, w.SetProgram("big"))
		require.NoError(t, w.SetArguments("big", "--flag"))
	}
	seekable := build(t, setup, WithLabel("vol"))

	var dataSize int64
	for _, e := range entries {
		if e.kind == kindFile {
			dataSize += DataSize(int64(len(e.data)))
		}
	}
	var out bytes.Buffer
	w, err := NewStreamWriter(&out, dataSize, WithLabel("vol"))
	require.NoError(t, err)
	setup(w)
	require.NoError(t, w.Close())
	assert.Equal(t, w.Size(), int64(out.Len()))
	assert.True(t, bytes.Equal(seekable.b, out.Bytes()), "stream and seekable output differ")

	// Declaring more than is written leaves zeros; the image stays valid.
	out.Reset()
	w, err = NewStreamWriter(&out, dataSize+10<<20, WithLabel("vol"))
	require.NoError(t, err)
	setup(w)
	require.NoError(t, w.Close())
	require.NoError(t, Verify(bytes.NewReader(out.Bytes()), int64(out.Len())))
	img := &image{b: out.Bytes()}
	checkTree(t, open(t, img), entries)
}

// A pipe cannot seek: the stream writer must never need to.
func TestStreamWriterPipe(t *testing.T) {
	pr, pw := io.Pipe()
	var got bytes.Buffer
	done := make(chan error)
	go func() { _, err := io.Copy(&got, pr); done <- err }()
	w, err := NewStreamWriter(pw, DataSize(5)+DataSize(700))
	require.NoError(t, err)
	add(t, w, regular("a", "12345"), bigFile("b/c", pseudo(1, 700)))
	require.NoError(t, w.Close())
	require.NoError(t, pw.Close())
	require.NoError(t, <-done)
	img := &image{b: got.Bytes()}
	require.NoError(t, Verify(img, img.size()))
	checkTree(t, open(t, img), []entry{regular("a", "12345"), bigFile("b/c", pseudo(1, 700))})
}

func TestStreamWriterOverflow(t *testing.T) {
	var out bytes.Buffer
	w, err := NewStreamWriter(&out, 512)
	require.NoError(t, err)
	require.NoError(t, w.AddFile("a", 512, bytes.NewReader(make([]byte, 512))))
	err = w.AddFile("b", 1, strings.NewReader("x"))
	assert.ErrorContains(t, err, "declared")
	require.NoError(t, w.Close(), "a refused entry does not spoil the volume")
}

func TestWithSize(t *testing.T) {
	// A boot FS: exactly 12 MiB, no free space needed.
	kernel := pseudo(3, 5<<20)
	img := build(t, func(w *Writer) { add(t, w, bigFile("kernel", kernel)) }, WithSize(12<<20), WithFreeSpace(0))
	assert.Equal(t, int64(12<<20), img.size())
	f := open(t, img)
	got, err := f.ReadFile("kernel")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(kernel, got))

	w, err := NewWriter(&image{}, WithSize(2<<20))
	require.NoError(t, err)
	err = w.AddFile("too-big", 1<<20, bytes.NewReader(make([]byte, 1<<20)))
	assert.ErrorContains(t, err, "volume full")

	_, err = NewWriter(&image{}, WithSize(1000))
	assert.Error(t, err)
	_, err = NewStreamWriter(io.Discard, 10<<20, WithSize(4<<20))
	assert.Error(t, err)
}

func TestFreeSpace(t *testing.T) {
	for _, free := range []int64{0, 1, DefaultFreeSpace, 5 << 20} {
		img := build(t, func(w *Writer) { add(t, w, regular("f", "x")) }, WithFreeSpace(free))
		// sector 0, one data sector, one log extension, then the free space
		assert.Equal(t, (2+extSectors)*SectorSize+DataSize(free), img.size(), "free %d", free)
	}
}

func TestLabel(t *testing.T) {
	f := open(t, build(t, func(*Writer) {}, WithLabel(strings.Repeat("L", MaxLabelLen))))
	assert.Equal(t, strings.Repeat("L", MaxLabelLen), f.Label())
	assert.Equal(t, 5, f.Version())
	_, err := NewWriter(&image{}, WithLabel(strings.Repeat("L", MaxLabelLen+1)))
	assert.Error(t, err)
	_, err = NewWriter(&image{}, WithLabel("a\x00b"))
	assert.Error(t, err)
}

func TestLargeFileExtents(t *testing.T) {
	size := int64(2*maxExtentSectors*SectorSize + 1000) // 64 MiB + 1000: three extents
	if testing.Short() {
		t.Skip("writes 64 MiB; skipped with -short")
	}
	data := pseudo(11, int(size))
	img := build(t, func(w *Writer) { add(t, w, regular("pre", "x"), bigFile("big", data)) })
	f := open(t, img)
	exts, err := f.Extents("big")
	require.NoError(t, err)
	assert.Equal(t, []Extent{
		{FileBlock: 0, Offset: 2, Length: maxExtentSectors, Allocated: maxExtentSectors},
		{FileBlock: maxExtentSectors, Offset: 2 + maxExtentSectors, Length: maxExtentSectors, Allocated: maxExtentSectors},
		{FileBlock: 2 * maxExtentSectors, Offset: 2 + 2*maxExtentSectors, Length: 2, Allocated: 2},
	}, exts)
	fl, err := f.Open("big")
	require.NoError(t, err)
	// Reads across extent boundaries.
	r := fl.(io.ReaderAt)
	buf := make([]byte, 4096)
	for _, off := range []int64{0, maxExtentSectors*SectorSize - 100, 2*maxExtentSectors*SectorSize - 3500, size - 4096} {
		n, err := r.ReadAt(buf, off)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data[off:off+int64(n)], buf[:n]), "offset %d", off)
	}
	n, err := r.ReadAt(buf, size-10)
	assert.Equal(t, 10, n)
	assert.Equal(t, io.EOF, err)
}

// A tree whose metadata needs several log extensions.
func TestLogSpansExtensions(t *testing.T) {
	var entries []entry
	for i := range 12000 {
		entries = append(entries, regular(fmt.Sprintf("dir%03d/%s-%06d", i%100, strings.Repeat("long-name-", 12), i), ""))
	}
	img := build(t, func(w *Writer) { add(t, w, entries...) })
	f := open(t, img)
	assert.Greater(t, len(f.log.exts), 3, "log should span several extensions")
	require.NoError(t, Verify(img, img.size()))
	checkTree(t, f, entries[:50])
	for i, e := range f.log.exts[1:] {
		assert.Equal(t, int64(1+i*extSectors), e.start-f.log.exts[1].start+1, "extensions are contiguous")
	}
}

func TestConcurrentAddFile(t *testing.T) {
	entries := manyFiles(400)
	img := &image{}
	w, err := NewWriter(img)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, len(entries))
	for _, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.AddFile(e.name, int64(len(e.data)), bytes.NewReader(e.data))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	require.NoError(t, Verify(img, img.size()))
	checkTree(t, open(t, img), entries)
}

func TestManifest(t *testing.T) {
	img := build(t, func(w *Writer) {
		add(t, w, regular("bin/app", "elf"), dirEntry("work"))
		require.NoError(t, w.SetProgram("/bin/app"))
		require.NoError(t, w.SetArguments("/bin/app", "-v", "unicode ✓"))
		require.NoError(t, w.SetEnvironment(map[string]string{"HOME": "/", "EMPTY": ""}))
		require.NoError(t, w.SetCwd("/work"))
		require.NoError(t, w.SetRoot("debug_exit", Flag{}))
		require.NoError(t, w.SetRoot("expected_exit_code", Int(-3)))
		require.NoError(t, w.SetRoot("klibs", String("bootfs")))
		require.NoError(t, w.SetRoot("en1", Tuple{"ipaddr": String("10.0.2.15"), "netmask": String("255.255.255.0")}))
		require.NoError(t, w.SetRoot("notrace", Vector{String("a"), Tuple{"nested": Vector{}}}))
	})
	require.NoError(t, Verify(img, img.size()))
	want := Tuple{
		"program":            String("/bin/app"),
		"arguments":          Strings("/bin/app", "-v", "unicode ✓"),
		"environment":        Tuple{"HOME": String("/"), "EMPTY": String("")},
		"cwd":                String("/work"),
		"debug_exit":         Flag{},
		"expected_exit_code": Int(-3),
		"klibs":              String("bootfs"),
		"en1":                Tuple{"ipaddr": String("10.0.2.15"), "netmask": String("255.255.255.0")},
		"notrace":            Vector{String("a"), Tuple{"nested": Vector{}}},
	}
	assert.Equal(t, want, open(t, img).Manifest())
}

func TestWriterErrors(t *testing.T) {
	base := func(w *Writer) { add(t, w, regular("file", "x"), dirEntry("dir"), symlink("file", "sym")) }
	for _, tc := range []struct {
		name string
		do   func(w *Writer) error
		want string
		is   error
	}{
		{"duplicate file", func(w *Writer) error { return w.AddFile("file", 0, strings.NewReader("")) }, "", fs.ErrExist},
		{"file over dir", func(w *Writer) error { return w.AddFile("dir", 0, strings.NewReader("")) }, "", fs.ErrExist},
		{"dir over file", func(w *Writer) error { return w.Mkdir("file") }, "", fs.ErrExist},
		{"under a file", func(w *Writer) error { return w.Mkdir("file/sub") }, "not a directory", nil},
		{"under a symlink", func(w *Writer) error { return w.AddFile("sym/x", 0, strings.NewReader("")) }, "not a directory", nil},
		{"root as file", func(w *Writer) error { return w.AddFile("/", 0, strings.NewReader("")) }, "", fs.ErrExist},
		{"dot dot", func(w *Writer) error { return w.Mkdir("a/../b") }, "invalid path", nil},
		{"empty element", func(w *Writer) error { return w.Mkdir("a//b") }, "invalid path", nil},
		{"name too long", func(w *Writer) error { return w.Mkdir(strings.Repeat("x", 256)) }, "longer than 255", nil},
		{"path too long", func(w *Writer) error { return w.Mkdir(deepPath(500)) }, "longer than 4095", nil},
		{"NUL", func(w *Writer) error { return w.Mkdir("a\x00b") }, "NUL", nil},
		{"negative size", func(w *Writer) error { return w.AddFile("n", -1, strings.NewReader("")) }, "out of range", nil},
		{"huge size", func(w *Writer) error { return w.AddFile("n", 1<<63-1, strings.NewReader("")) }, "out of range", nil},
		{"empty symlink", func(w *Writer) error { return w.Symlink("", "s2") }, "invalid target", nil},
		{"link to itself", func(w *Writer) error { return w.Link("x", "x") }, "cannot link", nil},
		{"children key", func(w *Writer) error { return w.SetRoot("children", Tuple{}) }, "not a manifest key", nil},
		{"program type", func(w *Writer) error { return w.SetRoot("program", Int(1)) }, "String", nil},
		{"arguments type", func(w *Writer) error { return w.SetRoot("arguments", Vector{Int(1)}) }, "Vector of String", nil},
		{"environment type", func(w *Writer) error { return w.SetRoot("environment", Tuple{"A": Flag{}}) }, "Tuple of String", nil},
		{"buffer value", func(w *Writer) error { return w.SetRoot("x", Buffer("raw")) }, "untyped buffer", nil},
		{"nil value", func(w *Writer) error { return w.SetRoot("x", nil) }, "nil value", nil},
		{"empty key", func(w *Writer) error { return w.SetRoot("", Flag{}) }, "empty attribute", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := &image{}
			w, err := NewWriter(img)
			require.NoError(t, err)
			base(w)
			err = tc.do(w)
			require.Error(t, err)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			assert.ErrorContains(t, err, tc.want)
			// Refused entries do not spoil the volume.
			require.NoError(t, w.Close())
			require.NoError(t, Verify(img, img.size()))
		})
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("network down")
	}
	k := min(r.n, len(p))
	r.n -= k
	return k, nil
}

func TestWriterCloseErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(w *Writer) error
		want  string
	}{
		{"short contents", func(w *Writer) error { return w.AddFile("f", 10, strings.NewReader("abc")) }, "short contents: got 3 of 10"},
		{"read error", func(w *Writer) error { return w.AddFile("f", 10, &failingReader{n: 4}) }, "network down"},
		{"missing link target", func(w *Writer) error { return w.Link("nope", "l") }, "hard link target"},
		{"link to dir", func(w *Writer) error { w.Mkdir("d"); return w.Link("d", "l") }, "hard link to a directory"},
		{"link cycle", func(w *Writer) error { w.Link("a", "b"); return w.Link("b", "a") }, "cycle"},
		{"missing program", func(w *Writer) error { return w.SetProgram("/bin/none") }, `program "/bin/none"`},
		{"program is a dir", func(w *Writer) error { w.Mkdir("bin"); return w.SetProgram("/bin") }, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWriter(&image{})
			require.NoError(t, err)
			if err := tc.setup(w); err != nil {
				assert.ErrorContains(t, err, tc.want)
				assert.ErrorContains(t, w.Mkdir("later"), "failed earlier", "a failed copy is sticky")
			}
			err = w.Close()
			assert.ErrorContains(t, err, tc.want)
			assert.ErrorIs(t, w.Close(), errClosed)
		})
	}
}

func TestProgramThroughSymlinks(t *testing.T) {
	img := build(t, func(w *Writer) {
		add(t, w, regular("usr/bin/app", "x"), symlink("usr/bin", "bin"), symlink("app", "usr/bin/run"))
		require.NoError(t, w.SetProgram("/bin/run"))
	})
	require.NoError(t, Verify(img, img.size()))
}

func TestReservedPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(w *Writer) error
		ok   bool
	}{
		{"/dev/null", func(w *Writer) error { return w.AddFile("dev/null", 0, strings.NewReader("")) }, false},
		{"/dev/urandom symlink", func(w *Writer) error { return w.Symlink("x", "dev/urandom") }, false},
		{"/proc/meminfo", func(w *Writer) error { return w.AddFile("/proc/meminfo", 0, strings.NewReader("")) }, false},
		{"/proc/mounts", func(w *Writer) error { return w.Mkdir("proc/mounts") }, false},
		{"/proc/self/maps", func(w *Writer) error { return w.AddFile("proc/self/maps", 0, strings.NewReader("")) }, false},
		{"/sys/devices/system/cpu/online", func(w *Writer) error { return w.AddFile("sys/devices/system/cpu/online", 0, strings.NewReader("")) }, false},
		{"cpu0 dir", func(w *Writer) error { return w.Mkdir("sys/devices/system/cpu/cpu0") }, false},
		{"under cpu0", func(w *Writer) error { return w.Mkdir("sys/devices/system/cpu/cpu0/x") }, false},
		{"/proc as file", func(w *Writer) error { return w.AddFile("proc", 0, strings.NewReader("")) }, false},
		{"/proc/self symlink", func(w *Writer) error { return w.Symlink("1", "proc/self") }, false},
		{"/sys hard link", func(w *Writer) error { w.AddFile("f", 0, strings.NewReader("")); return w.Link("f", "sys") }, false},
		{"/dev dir", func(w *Writer) error { return w.Mkdir("dev") }, true},
		{"/proc/self/exe", func(w *Writer) error { return w.Symlink("/bin/app", "proc/self/exe") }, true},
		{"/dev/zero", func(w *Writer) error { return w.AddFile("dev/zero", 0, strings.NewReader("")) }, true},
		{"/sys/devices/system/cpu/cpu1", func(w *Writer) error { return w.Mkdir("sys/devices/system/cpu/cpu1") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWriter(&image{})
			require.NoError(t, err)
			err = tc.do(w)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrReservedPath)
			assert.ErrorContains(t, err, "kernel")

			w, err = NewWriter(&image{}, AllowReservedPaths())
			require.NoError(t, err)
			assert.NoError(t, tc.do(w), "AllowReservedPaths")
		})
	}
}

func TestVolumeAtOffset(t *testing.T) {
	img := &image{}
	const off = 3 << 20
	w, err := NewWriter(io.NewOffsetWriter(img, off))
	require.NoError(t, err)
	add(t, w, regular("a", "inside a larger file"))
	require.NoError(t, w.Close())
	assert.Equal(t, off+w.Size(), img.size())
	f, err := Open(io.NewSectionReader(img, off, w.Size()), w.Size())
	require.NoError(t, err)
	got, err := f.ReadFile("a")
	require.NoError(t, err)
	assert.Equal(t, "inside a larger file", string(got))
}

func TestReadDirFile(t *testing.T) {
	f := open(t, build(t, func(w *Writer) { add(t, w, regular("d/b", ""), regular("d/a", ""), regular("d/c", "")) }))
	d, err := f.Open("d")
	require.NoError(t, err)
	rd := d.(fs.ReadDirFile)
	var names []string
	for {
		es, err := rd.ReadDir(2)
		for _, e := range es {
			names = append(names, e.Name())
		}
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"a", "b", "c"}, names)
	_, err = d.Read(make([]byte, 1))
	assert.Error(t, err)
	info, err := d.Stat()
	require.NoError(t, err)
	assert.Equal(t, "d", info.Name())
	assert.Equal(t, path.Base("d"), info.Name())
}

// Nanos names are bytes; io/fs names are UTF-8. Such entries are written
// and verified, but the fs.FS view leaves them out.
func TestNonUTF8Name(t *testing.T) {
	img := build(t, func(w *Writer) { add(t, w, regular("ok", "1"), regular("lat\xe9n1", "2")) })
	require.NoError(t, Verify(img, img.size()))
	f := open(t, img)
	es, err := f.ReadDir(".")
	require.NoError(t, err)
	require.Len(t, es, 1)
	assert.Equal(t, "ok", es[0].Name())
	_, present := f.root.children().attrs["lat\xe9n1"]
	assert.True(t, present)
}
