package disk

import (
	"encoding/binary"
	"fmt"

	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/kernel"
)

// Disk geometry (spec §1, §2).
const (
	SectorSize = tfs.SectorSize

	// KlogSize is the kernel log dump area right before the first partition.
	KlogSize = kernel.KlogSize
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
		first, last := chs(p.start), chs(p.start+p.size-SectorSize)
		copy(dst[1:4], first[:])
		copy(dst[5:8], last[:])
	}
	binary.LittleEndian.PutUint32(dst[8:], uint32(p.start/SectorSize))
	binary.LittleEndian.PutUint32(dst[12:], uint32(p.size/SectorSize))
}

// chs is the cylinder/head/sector triple of a byte offset as mkfs computes
// it; nothing reads it, but matching keeps sector 0 identical to mkfs's.
// The cylinder's high bits are OR-ed into the sector byte unshifted, as
// mkfs does.
func chs(offset int64) [3]byte {
	s := offset / SectorSize
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
func mbrSector(base [SectorSize]byte, parts ...partition) ([SectorSize]byte, error) {
	if len(parts) > 4 {
		return base, fmt.Errorf("%d partitions: an MBR holds 4", len(parts))
	}
	s := base
	clear(s[entriesOffset:signatureByte0])
	for i, p := range parts {
		if p.start%SectorSize != 0 || p.size%SectorSize != 0 || p.size < 0 {
			return s, fmt.Errorf("partition %d: offset %d / size %d not in whole sectors", i, p.start, p.size)
		}
		if (p.start+p.size)/SectorSize > 1<<32-1 {
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
func directBootSector(rootStart, rootSize int64) ([SectorSize]byte, error) {
	var base [SectorSize]byte
	binary.LittleEndian.PutUint64(base[regionOffset:], stage2Base)
	binary.LittleEndian.PutUint64(base[regionOffset+8:], 0)
	binary.LittleEndian.PutUint32(base[regionOffset+16:], regionTypeFS)
	return mbrSector(base,
		partition{typ: 0, start: rootStart, size: 0},
		partition{active: true, typ: partTypeTFS, start: rootStart, size: rootSize},
	)
}
