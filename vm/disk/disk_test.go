package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/kernel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testTree is a small root filesystem: a program, a library behind a
// symlink, nested directories.
func testTree() fstest.MapFS {
	return fstest.MapFS{
		"bin/app":               {Data: []byte("\x7fELF pretend program"), Mode: 0o755},
		"lib/libx.so.1":         {Data: bytes.Repeat([]byte("lib"), 3000), Mode: 0o644},
		"lib/libx.so":           {Data: []byte("libx.so.1"), Mode: fs.ModeSymlink | 0o777},
		"etc/resolv.conf":       {Data: []byte("nameserver 10.0.2.3\n"), Mode: 0o644},
		"usr/share/empty/.keep": {Data: nil, Mode: 0o644},
	}
}

var testManifest = Manifest{
	Program:     "/bin/app",
	Arguments:   []string{"/bin/app", "--flag"},
	Environment: map[string]string{"HOME": "/", "USER": "root"},
	Cwd:         "/usr",
}

func createTestDisk(t *testing.T, out string, opts ...DiskOption) *DiskInfo {
	t.Helper()
	opts = append([]DiskOption{WithManifest(testManifest), WithSeed([]byte("test"))}, opts...)
	info, err := CreateDisk(context.Background(), out, FromFS(testTree()), opts...)
	require.NoError(t, err)
	return info
}

// TestCreateDiskLayout checks a whole disk against the byte offsets of
// spec §2: boot record and stage2 verbatim, zeroed klog area, partition
// entries, boot FS holding /kernel, root FS with the manifest.
func TestCreateDiskLayout(t *testing.T) {
	k := testKernel(t, probeStage1, 16) // stage2: 8192 bytes
	out := filepath.Join(t.TempDir(), "app.img")
	info := createTestDisk(t, out, WithKernel(k))
	disk := readFile(t, out)
	boot := readFile(t, k.Boot)

	assert.EqualValues(t, len(disk), info.Size)
	assert.True(t, info.Bootloader)
	assert.EqualValues(t, 8192, info.Stage2)
	const first = 512 + 8192 + 4096 // 12800 = LBA 25
	assert.EqualValues(t, first, info.BootStart)
	assert.EqualValues(t, first+12<<20, info.RootStart)
	assert.Zero(t, len(disk)%512)

	// Sector 0: stage1 code and the region record verbatim (0x000-0x1BD).
	assert.Equal(t, boot[:0x1BE], disk[:0x1BE], "stage1 + region record")
	assert.Equal(t, []byte{0x55, 0xAA}, disk[0x1FE:0x200])
	// Stage2 verbatim from byte 512, then 4096 zero bytes of klog area.
	sameBytes(t, boot[512:], disk[512:512+8192], "stage2")
	assert.Equal(t, make([]byte, 4096), disk[512+8192:first], "klog area")

	// Entry 0: boot FS, active, type 0x83, LBA 25, 24576 sectors; CHS
	// 0/0/26 to 1/135/31 (worked out by hand, see TestCHS).
	assert.Equal(t,
		[]byte{0x80, 0x00, 0x1A, 0x00, 0x83, 0x87, 0x1F, 0x01, 25, 0, 0, 0, 0x00, 0x60, 0x00, 0x00},
		disk[0x1BE:0x1CE], "boot partition entry")
	// Entry 1: root FS from LBA 24601 to the end of the disk.
	root := disk[0x1CE:0x1DE]
	assert.Equal(t, []byte{0x80, 0x87, 0x20, 0x01, 0x83}, root[:5])
	assert.EqualValues(t, 24601, binary.LittleEndian.Uint32(root[8:]))
	assert.EqualValues(t, (len(disk)-24601*512)/512, binary.LittleEndian.Uint32(root[12:]))
	last := chs(int64(len(disk)) - 512)
	assert.Equal(t, last[:], root[5:8])
	// Entries 2 and 3 empty.
	assert.Equal(t, make([]byte, 32), disk[0x1DE:0x1FE])

	// The project's verifier accepts the whole disk (§9.9, §9.10, root FS).
	require.NoError(t, tfs.Verify(bytes.NewReader(disk), int64(len(disk))))

	// Boot FS: exactly /kernel, the kernel's bytes, at LBA 25.
	bfs, err := tfs.Open(bytes.NewReader(disk), int64(len(disk)), tfs.WithPartition(tfs.BootPartition))
	require.NoError(t, err)
	assert.EqualValues(t, first, bfs.Offset())
	assert.EqualValues(t, 12<<20, bfs.Size())
	assert.Equal(t, info.BootUUID, bfs.UUID())
	kb, err := bfs.ReadFile("kernel")
	require.NoError(t, err)
	sameBytes(t, readFile(t, k.Kernel), kb, "/kernel")
	ents, err := bfs.ReadDir(".")
	require.NoError(t, err)
	require.Len(t, ents, 1)

	// Root FS: the tree and the manifest.
	rfs, err := tfs.Open(bytes.NewReader(disk), int64(len(disk)))
	require.NoError(t, err)
	assert.EqualValues(t, info.RootStart, rfs.Offset())
	assert.Equal(t, info.RootUUID, rfs.UUID())
	assert.NotEqual(t, info.BootUUID, info.RootUUID)
	checkTree(t, rfs)
	m := rfs.Manifest()
	assert.Equal(t, tfs.String("/bin/app"), m["program"])
	assert.Equal(t, tfs.Strings("/bin/app", "--flag"), m["arguments"])
	assert.Equal(t, tfs.Tuple{"HOME": tfs.String("/"), "USER": tfs.String("root")}, m["environment"])
	assert.Equal(t, tfs.String("/usr"), m["cwd"])
	assert.Equal(t, tfs.Flag{}, m["debug_exit"])
	assert.NotContains(t, m, "klibs")
}

// checkTree compares the root FS with testTree through fs.FS.
func checkTree(t *testing.T, fsys fs.FS) {
	t.Helper()
	for name, f := range testTree() {
		if f.Mode&fs.ModeSymlink != 0 {
			target, err := fs.ReadLink(fsys, name)
			require.NoError(t, err, name)
			assert.Equal(t, string(f.Data), target, name)
			continue
		}
		b, err := fs.ReadFile(fsys, name)
		require.NoError(t, err, name)
		assert.Equal(t, string(f.Data), string(b), name)
	}
	b, err := fs.ReadFile(fsys, "lib/libx.so") // through the symlink
	require.NoError(t, err)
	sameBytes(t, testTree()["lib/libx.so.1"].Data, b, "through symlink")
}

func TestCreateDiskDeterministic(t *testing.T) {
	k := testKernel(t, probeStage1, 4)
	dir := t.TempDir()
	a := createTestDisk(t, filepath.Join(dir, "a.img"), WithKernel(k))
	b := createTestDisk(t, filepath.Join(dir, "b.img"), WithKernel(k))
	sameBytes(t, readFile(t, a.Path), readFile(t, b.Path), "same inputs, same bytes")

	c, err := CreateDisk(context.Background(), filepath.Join(dir, "c.img"), FromFS(testTree()),
		WithKernel(k), WithManifest(testManifest), WithSeed([]byte("other")))
	require.NoError(t, err)
	assert.NotEqual(t, a.RootUUID, c.RootUUID)
	assert.NotEqual(t, a.BootUUID, c.BootUUID)

	// Nothing but the outputs is left in the directory.
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"a.img", "b.img", "c.img"}, names)
}

// TestCreateDiskWithoutBootloader checks the direct-boot variant: sector 0
// with a region record of length 0 (so the first partition is at 512 + 0 +
// 4096 = LBA 9), an empty boot entry pointing at LBA 9, the root entry, and
// the root FS right there.
func TestCreateDiskWithoutBootloader(t *testing.T) {
	out := filepath.Join(t.TempDir(), "direct.img")
	info := createTestDisk(t, out, WithoutBootloader())
	disk := readFile(t, out)
	assert.False(t, info.Bootloader)
	assert.EqualValues(t, 4608, info.RootStart)
	assert.EqualValues(t, len(disk), info.Size)

	assert.Equal(t, make([]byte, 0x1AA), disk[:0x1AA], "no boot code")
	assert.EqualValues(t, 0x8000, binary.LittleEndian.Uint64(disk[0x1AA:]))
	assert.EqualValues(t, 0, binary.LittleEndian.Uint64(disk[0x1B2:]))
	assert.EqualValues(t, 12, binary.LittleEndian.Uint32(disk[0x1BA:]))
	assert.Equal(t, []byte{0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0}, disk[0x1BE:0x1CE], "empty boot entry at LBA 9")
	root := disk[0x1CE:0x1DE]
	assert.Equal(t, []byte{0x80, 0x00, 0x0A, 0x00, 0x83}, root[:5])
	assert.EqualValues(t, 9, binary.LittleEndian.Uint32(root[8:]))
	assert.EqualValues(t, (len(disk)-4608)/512, binary.LittleEndian.Uint32(root[12:]))
	assert.Equal(t, []byte{0x55, 0xAA}, disk[0x1FE:0x200])
	assert.Equal(t, make([]byte, 4096), disk[512:4608], "klog area")

	// The whole disk passes the verifier (it knows the direct-boot layout of
	// spec §10); through the partition table the reader finds the root
	// volume like the kernel does.
	require.NoError(t, tfs.Verify(bytes.NewReader(disk), int64(len(disk))))
	bad := bytes.Clone(disk)
	binary.LittleEndian.PutUint32(bad[0x1CE+12:], uint32((len(disk)-4608)/512-1))
	require.ErrorContains(t, tfs.Verify(bytes.NewReader(bad), int64(len(bad))), "to the end of the disk")
	rfs, err := tfs.Open(bytes.NewReader(disk), int64(len(disk)))
	require.NoError(t, err)
	assert.EqualValues(t, 4608, rfs.Offset())
	checkTree(t, rfs)

	layout, err := DetectLayout(out)
	require.NoError(t, err)
	assert.Equal(t, LayoutDirect, layout)
}

func TestCreateDiskKlibs(t *testing.T) {
	k := testKernel(t, probeStage1, 2)
	k.KlibDir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(k.KlibDir, "ntp"), []byte("ntp klib"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(k.KlibDir, "tls"), []byte("tls klib"), 0o644))
	out := filepath.Join(t.TempDir(), "k.img")
	createTestDisk(t, out, WithKernel(k), WithKlibs("tls", "ntp", "tls"))
	disk := readFile(t, out)
	require.NoError(t, tfs.Verify(bytes.NewReader(disk), int64(len(disk))))
	bfs, err := tfs.Open(bytes.NewReader(disk), int64(len(disk)), tfs.WithPartition(tfs.BootPartition))
	require.NoError(t, err)
	ents, err := bfs.ReadDir("klib")
	require.NoError(t, err)
	require.Len(t, ents, 2)
	b, err := bfs.ReadFile("klib/ntp")
	require.NoError(t, err)
	assert.Equal(t, "ntp klib", string(b))
	rfs, err := tfs.Open(bytes.NewReader(disk), int64(len(disk)))
	require.NoError(t, err)
	assert.Equal(t, tfs.String("bootfs"), rfs.Manifest()["klibs"])
}

func TestCreateDiskSizeAndExtra(t *testing.T) {
	k := testKernel(t, probeStage1, 2)
	out := filepath.Join(t.TempDir(), "sized.img")
	m := testManifest
	m.Extra = tfs.Tuple{"readonly_rootfs": tfs.Flag{}, "debug_exit": tfs.String("t")}
	info, err := CreateDisk(context.Background(), out, FromFS(testTree()),
		WithKernel(k), WithManifest(m), WithDiskSize(64<<20), WithDebugExit(false),
		WithRootOptions(tfs.WithLabel("data")))
	require.NoError(t, err)
	assert.EqualValues(t, 64<<20, info.Size)
	st, err := os.Stat(out)
	require.NoError(t, err)
	assert.EqualValues(t, 64<<20, st.Size())
	disk := readFile(t, out)
	require.NoError(t, tfs.Verify(bytes.NewReader(disk), int64(len(disk))))
	rfs, err := tfs.Open(bytes.NewReader(disk), int64(len(disk)))
	require.NoError(t, err)
	assert.Equal(t, "data", rfs.Label())
	assert.Equal(t, tfs.Flag{}, rfs.Manifest()["readonly_rootfs"])
	assert.Equal(t, tfs.String("t"), rfs.Manifest()["debug_exit"], "Extra overrides")
}

func TestCreateDiskErrors(t *testing.T) {
	k := testKernel(t, probeStage1, 2)
	notELF := filepath.Join(t.TempDir(), "kernel.img")
	require.NoError(t, os.WriteFile(notELF, []byte("not an elf at all, just text"), 0o644))
	badBoot := filepath.Join(t.TempDir(), "boot.img")
	require.NoError(t, os.WriteFile(badBoot, make([]byte, 1024), 0o644))
	failing := func(context.Context, *tfs.Writer) error { return errors.New("source went away") }
	ok := FromFS(testTree())

	tests := []struct {
		name string
		fill RootFiller
		opts []DiskOption
		err  string
	}{
		{"no kernel", ok, nil, "needs kernel.img"},
		{"no boot image", ok, []DiskOption{WithKernel(kernel.Kernel{Kernel: k.Kernel})}, "needs boot.img"},
		{"kernel not ELF", ok, []DiskOption{WithKernel(kernel.Kernel{Kernel: notELF, Boot: k.Boot})}, "not an ELF"},
		{"bad boot image", ok, []DiskOption{WithKernel(kernel.Kernel{Kernel: k.Kernel, Boot: badBoot})}, "55 AA"},
		{"fill fails", failing, []DiskOption{WithKernel(k)}, "source went away"},
		{"no program", FromFS(fstest.MapFS{"x": {Data: []byte("x")}}), []DiskOption{WithKernel(k), WithManifest(Manifest{Program: "/missing"})}, "missing"},
		{"klibs without dir", ok, []DiskOption{WithKernel(k), WithKlibs("ntp")}, "without a klibs directory"},
		{"klibs without bootloader", ok, []DiskOption{WithoutBootloader(), WithKlibs("ntp")}, "boot filesystem"},
		{"hostile klib", ok, []DiskOption{WithKernel(kernel.Kernel{Kernel: k.Kernel, Boot: k.Boot, KlibDir: t.TempDir()}), WithKlibs("../x")}, "invalid klib"},
		{"size too small", ok, []DiskOption{WithKernel(k), WithDiskSize(1 << 20)}, "no room"},
		{"size too small for contents", ok, []DiskOption{WithoutBootloader(), WithDiskSize(16 << 10)}, "root filesystem"},
		{"size not in sectors", ok, []DiskOption{WithKernel(k), WithDiskSize(1000)}, "multiple of 512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.img")
			// An existing output is kept when writing fails.
			require.NoError(t, os.WriteFile(out, []byte("previous"), 0o644))
			opts := append([]DiskOption{WithManifest(testManifest)}, tt.opts...)
			_, err := CreateDisk(context.Background(), out, tt.fill, opts...)
			require.ErrorContains(t, err, tt.err)
			assert.Equal(t, "previous", string(readFile(t, out)))
			ents, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, ents, 1, "no temporary file left")
		})
	}
}

func TestCreateDiskCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	fill := func(ctx context.Context, w *tfs.Writer) error {
		cancel()
		return w.AddFS(ctx, testTree(), nil)
	}
	_, err := CreateDisk(ctx, filepath.Join(dir, "x.img"), fill, WithoutBootloader(), WithManifest(testManifest))
	require.ErrorIs(t, err, context.Canceled)
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents)
}

func TestDetectLayout(t *testing.T) {
	dir := t.TempDir()
	k := testKernel(t, probeStage1, 2)
	bios := filepath.Join(dir, "bios.img")
	createTestDisk(t, bios, WithKernel(k))
	l, err := DetectLayout(bios)
	require.NoError(t, err)
	assert.Equal(t, LayoutBIOS, l)

	// A bare TFS volume (nanofs mkfs output) cannot boot.
	vol := filepath.Join(dir, "vol.img")
	f, err := os.Create(vol)
	require.NoError(t, err)
	w, err := tfs.NewWriter(f)
	require.NoError(t, err)
	require.NoError(t, w.AddFS(context.Background(), testTree(), nil))
	require.NoError(t, w.SetProgram("/bin/app"))
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
	_, err = DetectLayout(vol)
	require.ErrorContains(t, err, "bare TFS volume")

	text := filepath.Join(dir, "text")
	require.NoError(t, os.WriteFile(text, []byte(strings.Repeat("x", 600)), 0o644))
	_, err = DetectLayout(text)
	require.ErrorContains(t, err, "not a Nanos disk image")

	// Issue #15: an empty or short file says what it is and what to give.
	for name, size := range map[string]int{"empty": 0, "short": 100} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, make([]byte, size), 0o644))
		_, err = DetectLayout(p)
		require.ErrorContains(t, err, "not a Nanos disk image", name)
		assert.NotContains(t, err.Error(), "EOF", name)
		assert.Contains(t, err.Error(), "an image (registry reference, OCI layout, docker-save tarball)", name)
	}

	_, err = DetectLayout(dir)
	require.ErrorContains(t, err, "not a regular file")
	_, err = DetectLayout(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
