package tfs

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Partition selects a volume of a whole disk image (spec §2.2).
type Partition int

const (
	// RootPartition is the root filesystem, the one the kernel mounts.
	RootPartition Partition = iota
	// BootPartition is the 12 MiB boot filesystem holding /kernel.
	BootPartition
)

func (p Partition) String() string {
	if p == BootPartition {
		return "boot fs"
	}
	return "root fs"
}

// MBR layout (spec §2.2).
const (
	mbrEntries   = 0x1BE
	mbrRegion    = 0x1AA
	partTypeEFI  = 0xEF
	partTypeTFS  = 0x83
	klogSize     = 4096
	bootFSSize   = 12 << 20
	espSize      = 33 << 20
	regionTypeFS = 12
)

type mbrEntry struct {
	status   byte
	chsFirst [3]byte
	typ      byte
	chsLast  [3]byte
	lba      uint32
	count    uint32
}

// mbr is sector 0 of a disk that carries the 55 AA signature.
type mbr struct {
	raw     [SectorSize]byte
	entries [4]mbrEntry
}

// readMBR returns the partition table, or nil for a raw TFS volume
// (bytes 510-511 are not 55 AA).
func readMBR(r io.ReaderAt, size int64) (*mbr, error) {
	if size < SectorSize {
		return nil, fmt.Errorf("image of %d bytes is smaller than one sector", size)
	}
	m := &mbr{}
	if _, err := r.ReadAt(m.raw[:], 0); err != nil {
		return nil, fmt.Errorf("reading sector 0: %w", ioErr(err))
	}
	if m.raw[510] != 0x55 || m.raw[511] != 0xAA {
		return nil, nil
	}
	for i := range m.entries {
		b := m.raw[mbrEntries+16*i:]
		e := &m.entries[i]
		e.status = b[0]
		copy(e.chsFirst[:], b[1:4])
		e.typ = b[4]
		copy(e.chsLast[:], b[5:8])
		e.lba = binary.LittleEndian.Uint32(b[8:])
		e.count = binary.LittleEndian.Uint32(b[12:])
	}
	return m, nil
}

// uefi reports whether entry 0 is an EFI system partition, which shifts
// the boot and root entries by one.
func (m *mbr) uefi() bool { return m.entries[0].typ == partTypeEFI }

func (m *mbr) entryIndex(p Partition) int {
	i := 1 // root
	if p == BootPartition {
		i = 0
	}
	if m.uefi() {
		i++
	}
	return i
}

// locate finds the volume the kernel (or dump) would use: without a
// partition table, or when the chosen entry is empty, the image is a raw
// TFS at byte 0. The root volume extends to the end of the disk (the kernel
// ignores its sector count); the boot volume is its entry's size.
func locate(r io.ReaderAt, size int64, p Partition) (off, vsize int64, err error) {
	m, err := readMBR(r, size)
	if err != nil || m == nil {
		return 0, size, err
	}
	e := m.entries[m.entryIndex(p)]
	if e.lba == 0 || e.count == 0 {
		return 0, size, nil
	}
	off = int64(e.lba) * SectorSize
	if off >= size {
		return 0, 0, fmt.Errorf("%s partition starts at byte %d, past the end of the %d-byte image", p, off, size)
	}
	vsize = size - off
	if p == BootPartition {
		vsize = min(vsize, int64(e.count)*SectorSize)
	}
	return off, vsize, nil
}

// chs encodes a byte offset as the cylinder/head/sector triple mkfs and
// ops write (spec §2.2), so the verifier can compare byte for byte.
func chs(offset int64) [3]byte {
	s := offset / SectorSize
	cyl := s / (63 * 255)
	head := (s / 63) % 255
	sec := s%63 + 1
	if cyl > 1023 {
		cyl, head, sec = 1023, 254, 63
	}
	return [3]byte{byte(head), byte((cyl>>8)|sec) & 0xff, byte(cyl & 0xff)}
}
