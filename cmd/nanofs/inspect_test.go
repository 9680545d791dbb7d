package main

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanofs/nanofs/tfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inspectImage builds a small image with mkfs.
func inspectImage(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	write := func(p, data string) {
		full := filepath.Join(src, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(data), 0o644))
	}
	write("bin/app", "#!app\n")
	write("etc/passwd", "root:x:0:0:root:/root:/bin/nobash\n")
	require.NoError(t, os.Link(filepath.Join(src, "bin/app"), filepath.Join(src, "bin/app2")))
	require.NoError(t, os.Symlink("../etc/passwd", filepath.Join(src, "bin/pw")))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "tmp"), 0o755))
	img := filepath.Join(t.TempDir(), "x.img")
	code, _, stderr := mkfsRun(t, "mkfs", src, "-o", img, "--program", "/bin/app", "-a", "hi", "-e", "A=1", "--label", "x")
	require.Equal(t, 0, code, stderr)
	return img
}

func TestInspectList(t *testing.T) {
	img := inspectImage(t)
	code, stdout, stderr := mkfsRun(t, "inspect", img)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, `drwxrwxrwx   1            0 /
drwxrwxrwx   1            0 /bin
-rwxrwxrwx   2            6 /bin/app
-rwxrwxrwx   2            6 /bin/app2
lrwxrwxrwx   1           13 /bin/pw -> ../etc/passwd
drwxrwxrwx   1            0 /etc
-rwxrwxrwx   1           34 /etc/passwd
drwxrwxrwx   1            0 /tmp
`, stdout)

	code, stdout, stderr = mkfsRun(t, "inspect", img, "/bin/")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, 4, strings.Count(stdout, "\n"))
	assert.True(t, strings.HasPrefix(stdout, "drwxrwxrwx   1            0 /bin\n"))

	code, stdout, _ = mkfsRun(t, "inspect", img, "bin/pw")
	require.Equal(t, 0, code)
	assert.Equal(t, "lrwxrwxrwx   1           13 /bin/pw -> ../etc/passwd\n", stdout)

	code, stdout, stderr = mkfsRun(t, "-v", "inspect", img, "/tmp")
	require.Equal(t, 0, code)
	assert.Equal(t, "drwxrwxrwx   1            0 /tmp\n", stdout)
	assert.Contains(t, stderr, `label "x"`)
}

func TestInspectCatManifest(t *testing.T) {
	img := inspectImage(t)
	code, stdout, stderr := mkfsRun(t, "inspect", img, "--cat", "/bin/pw")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "root:x:0:0:root:/root:/bin/nobash\n", stdout)

	code, stdout, stderr = mkfsRun(t, "inspect", img, "--manifest")
	require.Equal(t, 0, code, stderr)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &m))
	assert.Equal(t, map[string]any{
		"program":     "/bin/app",
		"arguments":   []any{"/bin/app", "hi"},
		"environment": map[string]any{"A": "1"},
	}, m)
}

func TestInspectVerify(t *testing.T) {
	img := inspectImage(t)
	code, stdout, stderr := mkfsRun(t, "inspect", img, "--verify")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "no problems found")

	// Dirty the padding after /etc/passwd's last byte: the data sector
	// of the second file (sector 2, after /bin/app's).
	data, err := os.ReadFile(img)
	require.NoError(t, err)
	bad := filepath.Join(t.TempDir(), "bad.img")
	data[2*512+100] = 'X'
	require.NoError(t, os.WriteFile(bad, data, 0o644))
	code, stdout, stderr = mkfsRun(t, "inspect", bad, "--verify")
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "volume: /etc/passwd: bytes after the end of the file")
	assert.Contains(t, stdout, "[§9.7]")
	assert.Contains(t, stderr, "1 problems")
}

func TestInspectErrors(t *testing.T) {
	img := inspectImage(t)
	junk := filepath.Join(t.TempDir(), "junk")
	require.NoError(t, os.WriteFile(junk, []byte(strings.Repeat("junk", 1000)), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing image", []string{"inspect", img + ".nope"}, "no such file"},
		{"not TFS", []string{"inspect", junk}, "no TFS magic"},
		{"directory image", []string{"inspect", t.TempDir()}, "not a regular file"},
		{"missing path", []string{"inspect", img, "/nope"}, "file does not exist"},
		{"cat a directory", []string{"inspect", img, "--cat", "/etc"}, "is a directory"},
		{"cat missing", []string{"inspect", img, "--cat", "/etc/nope"}, "file does not exist"},
		{"bad path", []string{"inspect", img, "a/../b"}, "invalid path"},
		{"path with --cat", []string{"inspect", img, "/etc", "--cat", "/etc/passwd"}, "only for listing"},
		{"two modes", []string{"inspect", img, "--manifest", "--verify"}, "none of the others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := mkfsRun(t, tc.args...)
			assert.Equal(t, 1, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
		})
	}
}

// A whole disk assembled the way spec §2 lays it out: inspect reads the
// root FS, --boot the boot FS, and --verify checks the partition table too.
func TestInspectDisk(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(disk)
	require.NoError(t, err)
	defer f.Close()
	const bootStart = 512 + 4096
	const rootStart = bootStart + 12<<20
	boot, err := tfs.NewWriter(f, tfs.WithOffset(bootStart), tfs.WithSize(12<<20), tfs.WithFreeSpace(0))
	require.NoError(t, err)
	require.NoError(t, boot.AddFile("kernel", 5, strings.NewReader("nanos")))
	require.NoError(t, boot.Close())
	root, err := tfs.NewWriter(f, tfs.WithOffset(rootStart))
	require.NoError(t, err)
	require.NoError(t, root.AddFile("app", 3, strings.NewReader("app")))
	require.NoError(t, root.SetProgram("/app"))
	require.NoError(t, root.Close())

	var mbr [512]byte
	binary.LittleEndian.PutUint64(mbr[0x1AA:], 0x8000)
	binary.LittleEndian.PutUint32(mbr[0x1BA:], 12)
	chs := func(off int64) []byte {
		s := off / 512
		cyl, head, sec := s/(63*255), (s/63)%255, s%63+1
		if cyl > 1023 {
			cyl, head, sec = 1023, 254, 63
		}
		return []byte{byte(head), byte((cyl >> 8) | sec), byte(cyl)}
	}
	for i, p := range []struct{ off, size int64 }{{bootStart, 12 << 20}, {rootStart, root.Size()}} {
		e := mbr[0x1BE+16*i:]
		e[0] = 0x80
		copy(e[1:4], chs(p.off))
		e[4] = 0x83
		copy(e[5:8], chs(p.off+p.size-512))
		binary.LittleEndian.PutUint32(e[8:], uint32(p.off/512))
		binary.LittleEndian.PutUint32(e[12:], uint32(p.size/512))
	}
	mbr[510], mbr[511] = 0x55, 0xAA
	_, err = f.WriteAt(mbr[:], 0)
	require.NoError(t, err)

	code, stdout, stderr := mkfsRun(t, "inspect", disk, "--verify")
	require.Equal(t, 0, code, stdout+stderr)
	code, stdout, _ = mkfsRun(t, "inspect", disk, "--cat", "app")
	require.Equal(t, 0, code)
	assert.Equal(t, "app", stdout)
	code, stdout, _ = mkfsRun(t, "inspect", disk, "--boot", "--cat", "/kernel")
	require.Equal(t, 0, code)
	assert.Equal(t, "nanos", stdout)

	// Break the root entry's sector count: --verify names the field.
	_, err = f.WriteAt([]byte{1, 0, 0, 0}, 0x1BE+16+12)
	require.NoError(t, err)
	code, stdout, _ = mkfsRun(t, "inspect", disk, "--verify")
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "disk: MBR partition entry 1 (byte 0x1ce): 1 sectors")
	_, _ = io.Copy(io.Discard, f)
}
