package vmtest

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ProbeStage1 is real-mode x86 code for a boot sector: it prints
// ProbeMessage on the first serial port and writes 3 to QEMU's
// isa-debug-exit port, so QEMU exits with status 7. Assembled from:
//
//	cli; xor %ax,%ax; mov %ax,%ds; mov $0x3f8,%dx; mov $0x7c1c,%si
//	1: lodsb; test %al,%al; jz 2f; out %al,%dx; jmp 1b
//	2: mov $0x501,%dx; mov $3,%al; out %al,%dx
//	3: hlt; jmp 3b
//	msg: .asciz "nanofs-boot-sector-ok\n"
var ProbeStage1 = []byte{
	0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0xba, 0xf8, 0x03, 0xbe, 0x1c, 0x7c, 0xac, 0x84, 0xc0, 0x74, 0x03,
	0xee, 0xeb, 0xf8, 0xba, 0x01, 0x05, 0xb0, 0x03, 0xee, 0xf4, 0xeb, 0xfd,
	'n', 'a', 'n', 'o', 'f', 's', '-', 'b', 'o', 'o', 't', '-', 's', 'e', 'c', 't', 'o', 'r', '-', 'o', 'k', '\n', 0,
}

const ProbeMessage = "nanofs-boot-sector-ok\n"

// SpinStage1 loops forever: cli; 1: hlt; jmp 1b.
var SpinStage1 = []byte{0xfa, 0xf4, 0xeb, 0xfd}

// WriteBootImage writes a boot.img the way Nanos's build lays it out:
// stage1 code, the boot region record (base 0x8000, stage2 length, type
// 12), empty partition entries, 55 AA, then stage2 (filled with a pattern
// so that copies can be checked).
func WriteBootImage(t testing.TB, dir string, stage1 []byte, stage2Sectors int) string {
	t.Helper()
	img := make([]byte, 512+512*stage2Sectors)
	copy(img, stage1)
	binary.LittleEndian.PutUint64(img[0x1AA:], 0x8000)
	binary.LittleEndian.PutUint64(img[0x1B2:], uint64(512*stage2Sectors))
	binary.LittleEndian.PutUint32(img[0x1BA:], 12)
	img[510], img[511] = 0x55, 0xAA
	for i := 512; i < len(img); i++ {
		img[i] = byte(i*7 + i/512)
	}
	p := filepath.Join(dir, "boot.img")
	require.NoError(t, os.WriteFile(p, img, 0o644))
	return p
}

var (
	elfOnce  sync.Once
	elfBytes []byte
	elfErr   error
)

// ELF returns a small real x86-64 ELF executable (compiled once with
// gcc), standing in for kernel.img where only its bytes matter. Each test
// gets its own copy in its temp directory, so nothing outlives the run.
func ELF(t testing.TB) string {
	t.Helper()
	elfOnce.Do(func() {
		if _, err := exec.LookPath("gcc"); err != nil {
			elfErr = err
			return
		}
		dir, err := os.MkdirTemp("", "nanofs-vm-test-*")
		if err != nil {
			elfErr = err
			return
		}
		defer os.RemoveAll(dir)
		src, bin := filepath.Join(dir, "k.c"), filepath.Join(dir, "kernel.img")
		if elfErr = os.WriteFile(src, []byte("void _start(void) { for (;;) ; }\n"), 0o644); elfErr != nil {
			return
		}
		out, err := exec.Command("gcc", "-static", "-nostdlib", "-O2", "-o", bin, src).CombinedOutput()
		if err != nil {
			elfErr = &exec.ExitError{Stderr: out}
			return
		}
		elfBytes, elfErr = os.ReadFile(bin)
	})
	if elfErr != nil {
		t.Skipf("needs gcc to compile a test ELF (Debian/Ubuntu: apt-get install gcc): %v", elfErr)
	}
	p := filepath.Join(t.TempDir(), "kernel.img")
	require.NoError(t, os.WriteFile(p, elfBytes, 0o755))
	return p
}

// KernelFiles are a kernel.img (a test ELF) and a boot.img with the given
// stage1, for a kernel.Kernel.
func KernelFiles(t testing.TB, stage1 []byte, stage2Sectors int) (kernelImg, bootImg string) {
	t.Helper()
	return ELF(t), WriteBootImage(t, t.TempDir(), stage1, stage2Sectors)
}

// ReadFile reads a file the test needs.
func ReadFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// SameBytes compares large byte slices without dumping them.
func SameBytes(t testing.TB, want, got []byte, what string) {
	t.Helper()
	if bytes.Equal(want, got) {
		return
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	t.Errorf("%s: %d bytes vs %d, first difference at byte %d", what, len(want), len(got), i)
}

// AssertEmptyDir checks that nothing was left in dir.
func AssertEmptyDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing cached")
}
