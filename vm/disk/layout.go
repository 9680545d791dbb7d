package disk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// DiskLayout tells how a disk boots, from its sector 0.
type DiskLayout int

// Disk layouts.
const (
	// LayoutBIOS: boot record, stage2 and a boot filesystem with /kernel;
	// boots from the disk alone.
	LayoutBIOS DiskLayout = iota + 1
	// LayoutDirect: a partition table without bootloader; the kernel is
	// given to the monitor.
	LayoutDirect
)

func (l DiskLayout) String() string {
	switch l {
	case LayoutBIOS:
		return "BIOS boot disk"
	case LayoutDirect:
		return "direct-boot disk"
	}
	return "unknown layout"
}

// DetectLayout reads sector 0 of a disk image and tells how it boots. A raw
// TFS volume (no partition table) cannot boot: the kernel finds its root
// filesystem only through a partition table (spec §10).
func DetectLayout(disk string) (DiskLayout, error) {
	f, err := os.Open(disk)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", disk)
	}
	if st.Size() < SectorSize {
		what := "an empty file"
		if st.Size() > 0 {
			what = fmt.Sprintf("only %d bytes long, less than one sector", st.Size())
		}
		return 0, fmt.Errorf("%s is %s, not a Nanos disk image: give a disk that nanofs build wrote, or an image (registry reference, OCI layout, docker-save tarball) to build and boot", disk, what)
	}
	var s [SectorSize]byte
	if _, err := io.ReadFull(f, s[:]); err != nil {
		return 0, fmt.Errorf("%s: reading sector 0: %w", disk, err)
	}
	return layoutOf(disk, s[:])
}

// layoutOf interprets sector 0 of a disk.
func layoutOf(disk string, s []byte) (DiskLayout, error) {
	if len(s) < SectorSize {
		return 0, fmt.Errorf("%s is shorter than one sector", disk)
	}
	if s[510] != 0x55 || s[511] != 0xAA {
		if bytes.HasPrefix(s, []byte("NVMTFS")) {
			return 0, fmt.Errorf("%s is a bare TFS volume: Nanos finds its root filesystem only through a partition table; write a whole disk (nanofs build)", disk)
		}
		return 0, fmt.Errorf("%s is not a Nanos disk image (no partition table)", disk)
	}
	entry := func(i int) (typ byte, lba, count uint32) {
		e := s[entriesOffset+16*i:]
		return e[4], binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])
	}
	rootIdx, bootIdx := 1, 0
	if t, _, _ := entry(0); t == partTypeEFI {
		rootIdx, bootIdx = 2, 1
	}
	if _, lba, n := entry(rootIdx); lba == 0 || n == 0 {
		return 0, fmt.Errorf("%s has no root filesystem partition", disk)
	}
	stage2 := binary.LittleEndian.Uint64(s[regionOffset+8:])
	typ := binary.LittleEndian.Uint32(s[regionOffset+16:])
	_, _, bootCount := entry(bootIdx)
	if typ == regionTypeFS && stage2 > 0 && bootCount > 0 {
		return LayoutBIOS, nil
	}
	return LayoutDirect, nil
}
