package resolve

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Limits on what a hostile file can make the reader allocate.
const (
	maxDynamicSize = 1 << 20 // PT_DYNAMIC: real ones are a few hundred bytes
	maxInterpSize  = 4096    // PT_INTERP: a path (PATH_MAX)
	maxStringSize  = 4096    // a DT_NEEDED / DT_RPATH string
	maxUndefSyms   = 1 << 18 // undefined dynamic symbols scanned for imports
	stringChunk    = 128
)

// elfInfo is what the loader reads of an ELF file: its identity, the
// program headers and the dynamic section; never its symbol tables.
type elfInfo struct {
	Class                elf.Class
	Data                 elf.Data
	Machine              elf.Machine
	OSABI                elf.OSABI
	Type                 elf.Type
	Interp               string // PT_INTERP, "" without one
	Dynamic              bool   // has PT_DYNAMIC
	Needed               []string
	Soname               string
	RPath                string // DT_RPATH, ignored by the loader when DT_RUNPATH is present
	RunPath              string
	HasRPath, HasRunPath bool
	Flags1               uint64 // DT_FLAGS_1

	byteOrder binary.ByteOrder
	loads     []*elf.Prog // PT_LOAD, to map addresses to file offsets
	strtab    uint64      // file offset of DT_STRTAB
	strsz     uint64
	symtab    uint64 // file offset of DT_SYMTAB, 0 if none
	gnuHash   uint64 // file offset of DT_GNU_HASH, 0 if none
	sysvHash  uint64 // file offset of DT_HASH, 0 if none
}

// FormatError is a file that is not a usable ELF object: malformed,
// truncated, or lying about its own layout.
type FormatError struct {
	Path string
	Err  error
}

func (e *FormatError) Error() string { return fmt.Sprintf("%s: malformed ELF file: %v", e.Path, e.Err) }
func (e *FormatError) Unwrap() error { return e.Err }

// isELF reports whether head starts with the ELF magic.
func isELF(head []byte) bool { return bytes.HasPrefix(head, []byte(elf.ELFMAG)) }

// readELF reads the headers and the dynamic section of the ELF file r of
// the given size through debug/elf, reading the strings the dynamic
// section names one by one instead of the whole string table (which, for a
// large C++ library, holds megabytes of symbol names).
func readELF(r io.ReaderAt, size int64) (*elfInfo, error) {
	sr := io.NewSectionReader(r, 0, size)
	f, err := elf.NewFile(sr)
	if err != nil {
		return nil, err
	}
	info := &elfInfo{
		Class: f.Class, Data: f.Data, Machine: f.Machine, OSABI: f.OSABI, Type: f.Type,
		byteOrder: f.ByteOrder,
	}
	var dyn *elf.Prog
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			info.loads = append(info.loads, p)
		case elf.PT_INTERP:
			if p.Filesz == 0 || p.Filesz > maxInterpSize {
				return nil, fmt.Errorf("PT_INTERP of %d bytes", p.Filesz)
			}
			data := make([]byte, p.Filesz)
			if _, err := p.ReadAt(data, 0); err != nil {
				return nil, fmt.Errorf("reading PT_INTERP: %w", err)
			}
			if i := bytes.IndexByte(data, 0); i >= 0 {
				data = data[:i]
			}
			if len(data) == 0 {
				return nil, errors.New("empty PT_INTERP")
			}
			info.Interp = string(data)
		case elf.PT_DYNAMIC:
			if dyn == nil {
				dyn = p
			}
		}
	}
	if dyn == nil {
		return info, nil
	}
	info.Dynamic = true
	if err := info.readDynamic(sr, dyn); err != nil {
		return nil, err
	}
	return info, nil
}

// dynEntry is one entry of the dynamic section.
type dynEntry struct {
	tag elf.DynTag
	val uint64
}

func (info *elfInfo) readDynamic(r io.ReaderAt, dyn *elf.Prog) error {
	if dyn.Filesz > maxDynamicSize {
		return fmt.Errorf("PT_DYNAMIC of %d bytes", dyn.Filesz)
	}
	data := make([]byte, dyn.Filesz)
	if _, err := dyn.ReadAt(data, 0); err != nil {
		return fmt.Errorf("reading PT_DYNAMIC: %w", err)
	}
	var entries []dynEntry
	rd := bytes.NewReader(data)
	for {
		var e dynEntry
		if info.Class == elf.ELFCLASS64 {
			var d elf.Dyn64
			if binary.Read(rd, info.byteOrder, &d) != nil {
				break
			}
			e = dynEntry{elf.DynTag(d.Tag), d.Val}
		} else {
			var d elf.Dyn32
			if binary.Read(rd, info.byteOrder, &d) != nil {
				break
			}
			e = dynEntry{elf.DynTag(d.Tag), uint64(d.Val)}
		}
		if e.tag == elf.DT_NULL {
			break
		}
		entries = append(entries, e)
	}
	var strtabAddr uint64
	haveStrtab := false
	for _, e := range entries {
		switch e.tag {
		case elf.DT_STRTAB:
			strtabAddr, haveStrtab = e.val, true
		case elf.DT_STRSZ:
			info.strsz = e.val
		case elf.DT_FLAGS_1:
			info.Flags1 = e.val
		case elf.DT_SYMTAB:
			info.symtab = info.fileOffset(e.val)
		case elf.DT_GNU_HASH:
			info.gnuHash = info.fileOffset(e.val)
		case elf.DT_HASH:
			info.sysvHash = info.fileOffset(e.val)
		}
	}
	needStrings := false
	for _, e := range entries {
		switch e.tag {
		case elf.DT_NEEDED, elf.DT_SONAME, elf.DT_RPATH, elf.DT_RUNPATH:
			needStrings = true
		}
	}
	if !needStrings {
		return nil
	}
	if !haveStrtab {
		return errors.New("dynamic section names strings but has no DT_STRTAB")
	}
	info.strtab = info.fileOffset(strtabAddr)
	if info.strtab == 0 {
		return fmt.Errorf("DT_STRTAB address %#x is in no loaded segment", strtabAddr)
	}
	for _, e := range entries {
		var dst *string
		switch e.tag {
		case elf.DT_NEEDED:
			s, err := info.stringAt(r, e.val)
			if err != nil {
				return fmt.Errorf("DT_NEEDED: %w", err)
			}
			info.Needed = append(info.Needed, s)
			continue
		case elf.DT_SONAME:
			dst = &info.Soname
		case elf.DT_RPATH:
			dst, info.HasRPath = &info.RPath, true
		case elf.DT_RUNPATH:
			dst, info.HasRunPath = &info.RunPath, true
		default:
			continue
		}
		s, err := info.stringAt(r, e.val)
		if err != nil {
			return fmt.Errorf("%v: %w", e.tag, err)
		}
		*dst = s
	}
	return nil
}

// fileOffset maps a virtual address to its file offset through the PT_LOAD
// segments, as the loader sees it mapped; 0 when no segment holds it.
func (info *elfInfo) fileOffset(addr uint64) uint64 {
	for _, p := range info.loads {
		if addr >= p.Vaddr && addr-p.Vaddr < p.Filesz {
			return p.Off + (addr - p.Vaddr)
		}
	}
	return 0
}

// stringAt reads the NUL-terminated string at index idx of the dynamic
// string table, in small chunks.
func (info *elfInfo) stringAt(r io.ReaderAt, idx uint64) (string, error) {
	if info.strsz != 0 && idx >= info.strsz {
		return "", fmt.Errorf("string index %d past the string table (%d bytes)", idx, info.strsz)
	}
	off := info.strtab + idx
	if off < info.strtab {
		return "", fmt.Errorf("string index %d overflows", idx)
	}
	var out []byte
	buf := make([]byte, stringChunk)
	for len(out) < maxStringSize {
		n, err := r.ReadAt(buf, int64(off)+int64(len(out)))
		if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
			return string(append(out, buf[:i]...)), nil
		}
		out = append(out, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", fmt.Errorf("string at index %d runs past the end of the file", idx)
			}
			return "", err
		}
	}
	return "", fmt.Errorf("string at index %d longer than %d bytes", idx, maxStringSize)
}

// className names a class the way errors print it.
func className(c elf.Class) string {
	switch c {
	case elf.ELFCLASS32:
		return "32-bit"
	case elf.ELFCLASS64:
		return "64-bit"
	}
	return c.String()
}

// loadableWith reports why a library candidate cannot be loaded into a
// process whose program is ref (nil when it can): the checks of glibc's
// open_verify, which skips such a file and goes on searching.
func (info *elfInfo) loadableWith(ref *elfInfo) error {
	switch {
	case info.Class != ref.Class:
		return fmt.Errorf("%s ELF, want %s", className(info.Class), className(ref.Class))
	case info.Data != ref.Data:
		return fmt.Errorf("byte order %v, want %v", info.Data, ref.Data)
	case info.Machine != ref.Machine:
		return fmt.Errorf("machine %s, want %s", machineName(info.Machine), machineName(ref.Machine))
	case !linuxABI(info.OSABI):
		return fmt.Errorf("OS ABI %v, want Linux (SYSV or GNU)", info.OSABI)
	case info.Type != elf.ET_DYN:
		return fmt.Errorf("ELF type %v, not a shared object", info.Type)
	}
	return nil
}

// linuxABI is an OS ABI the Linux loaders accept.
func linuxABI(a elf.OSABI) bool { return a == elf.ELFOSABI_NONE || a == elf.ELFOSABI_LINUX }

// importsAny reports whether the object imports (has an undefined dynamic
// symbol named) any of names. With DT_GNU_HASH only the unhashed symbols
// before its symoffset are read: the linker puts every undefined symbol
// there, and they are few even in a library exporting thousands. Their
// names are read in small ranges, never the whole string table.
func (info *elfInfo) importsAny(r *io.SectionReader, names []string) (bool, error) {
	if info.symtab == 0 || info.strtab == 0 {
		return false, nil
	}
	var count uint64
	switch {
	case info.gnuHash != 0:
		var hdr [4]uint32 // nbuckets, symoffset, bloom size, bloom shift
		if err := binary.Read(io.NewSectionReader(r, int64(info.gnuHash), 16), info.byteOrder, &hdr); err != nil {
			return false, fmt.Errorf("DT_GNU_HASH: %w", err)
		}
		count = uint64(hdr[1])
	case info.sysvHash != 0:
		var hdr [2]uint32 // nbucket, nchain (= number of symbols)
		if err := binary.Read(io.NewSectionReader(r, int64(info.sysvHash), 8), info.byteOrder, &hdr); err != nil {
			return false, fmt.Errorf("DT_HASH: %w", err)
		}
		count = uint64(hdr[1])
	default:
		return false, nil
	}
	symSize := uint64(16)
	if info.Class == elf.ELFCLASS64 {
		symSize = 24
	}
	if count <= 1 {
		return false, nil
	}
	if count > maxUndefSyms || (count-1)*symSize > uint64(r.Size()) {
		return false, fmt.Errorf("%d dynamic symbols: more than the file holds", count)
	}
	data := make([]byte, (count-1)*symSize) // symbol 0 is the null symbol
	if _, err := r.ReadAt(data, int64(info.symtab+symSize)); err != nil {
		return false, fmt.Errorf("reading dynamic symbols: %w", err)
	}
	var offsets []uint64
	rd := bytes.NewReader(data)
	for range count - 1 {
		var name uint32
		var shndx elf.SectionIndex
		if info.Class == elf.ELFCLASS64 {
			var s elf.Sym64
			if err := binary.Read(rd, info.byteOrder, &s); err != nil {
				return false, err
			}
			name, shndx = s.Name, elf.SectionIndex(s.Shndx)
		} else {
			var s elf.Sym32
			if err := binary.Read(rd, info.byteOrder, &s); err != nil {
				return false, err
			}
			name, shndx = s.Name, elf.SectionIndex(s.Shndx)
		}
		if shndx == elf.SHN_UNDEF && name != 0 {
			offsets = append(offsets, uint64(name))
		}
	}
	return info.anyNameAt(r, offsets, names)
}

// anyNameAt reports whether the string table holds one of names at one of
// offsets, reading nearby offsets together.
func (info *elfInfo) anyNameAt(r *io.SectionReader, offsets []uint64, names []string) (bool, error) {
	longest := 0
	for _, n := range names {
		longest = max(longest, len(n)+1)
	}
	sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
	const (
		gap      = 256     // read across gaps smaller than this
		maxChunk = 1 << 16 // but no more than this at once
	)
	limit := uint64(r.Size()) - min(info.strtab, uint64(r.Size())) // string table bytes in the file
	if info.strsz != 0 {
		limit = min(limit, info.strsz)
	}
	for i := 0; i < len(offsets); {
		j := i
		for j+1 < len(offsets) && offsets[j+1]-offsets[j] < gap && offsets[j+1]-offsets[i] < maxChunk {
			j++
		}
		start, end := offsets[i], offsets[j]+uint64(longest)
		if start >= limit {
			return false, fmt.Errorf("symbol name index %d past the string table", start)
		}
		end = min(end, limit)
		buf := make([]byte, end-start)
		n, err := r.ReadAt(buf, int64(info.strtab+start))
		if err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		buf = buf[:n]
		for _, off := range offsets[i : j+1] {
			rel := off - start
			if rel >= uint64(len(buf)) {
				continue
			}
			for _, name := range names {
				if bytes.HasPrefix(buf[rel:], append([]byte(name), 0)) {
					return true, nil
				}
			}
		}
		i = j + 1
	}
	return false, nil
}

// machineName names a machine the way users know it.
func machineName(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "x86-64 (amd64)"
	case elf.EM_AARCH64:
		return "aarch64 (arm64)"
	case elf.EM_386:
		return "i386"
	case elf.EM_ARM:
		return "arm"
	case elf.EM_RISCV:
		return "riscv"
	case elf.EM_PPC64:
		return "ppc64"
	case elf.EM_S390:
		return "s390x"
	}
	return m.String()
}
