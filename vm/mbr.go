package vm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nanofs/nanofs/tfs"
)

// Disk geometry (spec §1, §2).
const (
	sectorSize = tfs.SectorSize

	// KlogSize is the kernel log dump area right before the first partition.
	KlogSize = 4096
	// BootFSSize is the fixed size of the boot filesystem partition.
	BootFSSize = 12 << 20

	// Sector 0 fields (spec §2.2).
	regionOffset   = 0x1AA // boot region record: base u64, length u64, type u32
	entriesOffset  = 0x1BE // four 16-byte partition entries
	signatureByte0 = 0x1FE // 0x55 0xAA
	stage2Base     = 0x8000
	regionTypeFS   = 12
	partTypeTFS    = 0x83
	partTypeEFI    = 0xEF
	partActive     = 0x80

	// maxStage2 bounds the stage2 length a boot image may claim: stage1
	// loads it below 1 MiB of real-mode memory.
	maxStage2 = 1 << 20
)

// BootImage is a BIOS boot image (Nanos's boot.img): stage1 in sector 0
// followed by stage2, whose length sector 0 records (spec §2.1, §2.2).
type BootImage struct {
	// Sector0 is stage1 with its boot region record and 55 AA signature.
	Sector0 [sectorSize]byte
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
	if size < sectorSize {
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
	if length == 0 || length%sectorSize != 0 || length > maxStage2 {
		return nil, fmt.Errorf("stage2 length %d in the boot region record is not a non-zero multiple of %d below %d", length, sectorSize, maxStage2)
	}
	if want := sectorSize + int64(length); size != want {
		return nil, fmt.Errorf("%d bytes, but its boot region record says 512 + %d stage2 bytes = %d", size, length, want)
	}
	b.Stage2 = int64(length)
	return b, nil
}

// FirstPartition is the byte offset of the first partition of a disk
// built from this boot image: boot record, stage2, kernel log area.
func (b *BootImage) FirstPartition() int64 { return sectorSize + b.Stage2 + KlogSize }

// writeStage2 copies stage2 (everything after sector 0) to w at byte 512.
func (b *BootImage) writeStage2(w io.WriterAt) error {
	f, err := os.Open(b.path)
	if err != nil {
		return fmt.Errorf("boot image: %w", err)
	}
	defer f.Close()
	_, err = io.Copy(io.NewOffsetWriter(w, sectorSize), io.NewSectionReader(f, sectorSize, b.Stage2))
	if err != nil {
		return fmt.Errorf("copying stage2 from %s: %w", b.path, err)
	}
	return nil
}

// partition is one MBR partition entry.
type partition struct {
	active bool
	typ    byte
	start  int64 // bytes
	size   int64 // bytes
}

// putEntry encodes p the way mkfs and ops do (spec §2.2), CHS included so
// that the sector is byte-identical to theirs.
func putEntry(dst []byte, p partition) {
	clear(dst[:16])
	if p.active {
		dst[0] = partActive
	}
	dst[4] = p.typ
	if p.size > 0 {
		first, last := chs(p.start), chs(p.start+p.size-sectorSize)
		copy(dst[1:4], first[:])
		copy(dst[5:8], last[:])
	}
	binary.LittleEndian.PutUint32(dst[8:], uint32(p.start/sectorSize))
	binary.LittleEndian.PutUint32(dst[12:], uint32(p.size/sectorSize))
}

// chs is the cylinder/head/sector triple of a byte offset as mkfs computes
// it; nothing reads it, but matching keeps sector 0 identical to mkfs's.
// The cylinder's high bits are OR-ed into the sector byte unshifted, as
// mkfs does.
func chs(offset int64) [3]byte {
	s := offset / sectorSize
	cyl := s / (63 * 255)
	head := (s / 63) % 255
	sec := s%63 + 1
	if cyl > 1023 {
		cyl, head, sec = 1023, 254, 63
	}
	return [3]byte{byte(head), byte((cyl >> 8) | sec), byte(cyl)}
}

// mbrSector returns sector 0: base (stage1 and its region record, or zeros)
// with the partition entries replaced and the signature set.
func mbrSector(base [sectorSize]byte, parts ...partition) ([sectorSize]byte, error) {
	if len(parts) > 4 {
		return base, fmt.Errorf("%d partitions: an MBR holds 4", len(parts))
	}
	s := base
	clear(s[entriesOffset:signatureByte0])
	for i, p := range parts {
		if p.start%sectorSize != 0 || p.size%sectorSize != 0 || p.size < 0 {
			return s, fmt.Errorf("partition %d: offset %d / size %d not in whole sectors", i, p.start, p.size)
		}
		if (p.start+p.size)/sectorSize > 1<<32-1 {
			return s, fmt.Errorf("partition %d ends at byte %d: MBR entries address only 2 TiB", i, p.start+p.size)
		}
		putEntry(s[entriesOffset+16*i:], p)
	}
	s[signatureByte0], s[signatureByte0+1] = 0x55, 0xAA
	return s, nil
}

// directBootSector is sector 0 of a disk without a bootloader: no boot code,
// a region record with a zero stage2 length (like Nanos's own stub MBR for
// virt platforms, so every reader derives the first partition at byte
// 512 + 0 + 4096), an empty boot partition entry and the root entry. The
// kernel finds the root filesystem only through the partition table (spec
// §10) and puts its log dump 4096 bytes before the first entry's LBA, so
// the empty boot entry still points where the root starts.
func directBootSector(rootStart, rootSize int64) ([sectorSize]byte, error) {
	var base [sectorSize]byte
	binary.LittleEndian.PutUint64(base[regionOffset:], stage2Base)
	binary.LittleEndian.PutUint64(base[regionOffset+8:], 0)
	binary.LittleEndian.PutUint32(base[regionOffset+16:], regionTypeFS)
	return mbrSector(base,
		partition{typ: 0, start: rootStart, size: 0},
		partition{active: true, typ: partTypeTFS, start: rootStart, size: rootSize},
	)
}
