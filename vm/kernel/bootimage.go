package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nanofs/nanofs/tfs"
)

// The boot record's layout (spec §2.1, §2.2).
const (
	// SectorSize is the size of a disk sector.
	SectorSize = tfs.SectorSize
	// KlogSize is the kernel log dump area that stage2 expects right
	// after it, before the first partition.
	KlogSize = 4096

	regionOffset   = 0x1AA // boot region record: base u64, length u64, type u32
	signatureByte0 = 0x1FE // 0x55 0xAA
	stage2Base     = 0x8000
	regionTypeFS   = 12

	// maxStage2 bounds the stage2 length a boot image may claim: stage1
	// loads it below 1 MiB of real-mode memory.
	maxStage2 = 1 << 20
)

// BootImage is a BIOS boot image (Nanos's boot.img): stage1 in sector 0
// followed by stage2, whose length sector 0 records (spec §2.1, §2.2).
type BootImage struct {
	// Sector0 is stage1 with its boot region record and 55 AA signature.
	Sector0 [SectorSize]byte
	// Stage2 is the length in bytes of stage2, read from the region record.
	Stage2 int64
	path   string
}

// ReadBootImage reads and checks a boot.img: 55 AA signature, a boot region
// record of type 12 ("filesystem region") whose length, a multiple of 512,
// is exactly what follows sector 0 in the file. mkfs derives the first
// partition offset from that record, so a disk built from an inconsistent
// boot image would not boot.
func ReadBootImage(path string) (*BootImage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("boot image: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("boot image: %w", err)
	}
	b, err := parseBootImage(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("boot image %s: %w", path, err)
	}
	b.path = path
	return b, nil
}

func parseBootImage(r io.ReaderAt, size int64) (*BootImage, error) {
	if size < SectorSize {
		return nil, fmt.Errorf("%d bytes: shorter than a boot sector", size)
	}
	b := &BootImage{}
	if _, err := r.ReadAt(b.Sector0[:], 0); err != nil {
		return nil, fmt.Errorf("reading sector 0: %w", err)
	}
	if b.Sector0[510] != 0x55 || b.Sector0[511] != 0xAA {
		return nil, errors.New("sector 0 lacks the 55 AA boot signature")
	}
	base := binary.LittleEndian.Uint64(b.Sector0[regionOffset:])
	length := binary.LittleEndian.Uint64(b.Sector0[regionOffset+8:])
	typ := binary.LittleEndian.Uint32(b.Sector0[regionOffset+16:])
	if typ != regionTypeFS {
		return nil, fmt.Errorf("boot region record at byte %#x has type %d, want %d: not a Nanos boot image", regionOffset, typ, regionTypeFS)
	}
	if base != stage2Base {
		return nil, fmt.Errorf("boot region record base %#x, want %#x", base, stage2Base)
	}
	if length == 0 || length%SectorSize != 0 || length > maxStage2 {
		return nil, fmt.Errorf("stage2 length %d in the boot region record is not a non-zero multiple of %d below %d", length, SectorSize, maxStage2)
	}
	if want := SectorSize + int64(length); size != want {
		return nil, fmt.Errorf("%d bytes, but its boot region record says 512 + %d stage2 bytes = %d", size, length, want)
	}
	b.Stage2 = int64(length)
	return b, nil
}

// FirstPartition is the byte offset of the first partition of a disk
// built from this boot image: boot record, stage2, kernel log area.
func (b *BootImage) FirstPartition() int64 { return SectorSize + b.Stage2 + KlogSize }

// WriteStage2 copies stage2 (everything after sector 0) to w at byte 512.
func (b *BootImage) WriteStage2(w io.WriterAt) error {
	f, err := os.Open(b.path)
	if err != nil {
		return fmt.Errorf("boot image: %w", err)
	}
	defer f.Close()
	_, err = io.Copy(io.NewOffsetWriter(w, SectorSize), io.NewSectionReader(f, SectorSize, b.Stage2))
	if err != nil {
		return fmt.Errorf("copying stage2 from %s: %w", b.path, err)
	}
	return nil
}
