package tfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Problem is one departure from the format rules, located in the image.
type Problem struct {
	// Rule is the spec section broken, e.g. "§9.3" for item 3 of the
	// compatibility checklist.
	Rule string
	// Where locates it: volume, then log position, path or MBR field.
	Where string
	// What says what is wrong.
	What string
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s [%s]", p.Where, p.What, p.Rule) }

// VerifyError is returned by Verify when the image breaks rules; it lists
// every problem found.
type VerifyError struct {
	Problems []Problem
}

func (e *VerifyError) Error() string {
	if len(e.Problems) == 1 {
		return "tfs: verify: " + e.Problems[0].String()
	}
	return fmt.Sprintf("tfs: verify: %d problems, first: %s", len(e.Problems), e.Problems[0])
}

// maxProblems bounds the report for hostile images.
const maxProblems = 1000

// checker collects problems for one volume.
type checker struct {
	prefix   string
	problems *[]Problem
}

func (c *checker) add(rule, where, format string, a ...any) {
	switch n := len(*c.problems); {
	case n < maxProblems:
		*c.problems = append(*c.problems, Problem{Rule: rule, Where: c.prefix + ": " + where, What: fmt.Sprintf(format, a...)})
	case n == maxProblems:
		*c.problems = append(*c.problems, Problem{Rule: "-", Where: c.prefix, What: "further problems not reported"})
	}
}

// Verify checks an image — a raw TFS volume or a whole disk — against every
// rule of the spec's compatibility checklist (§9) and the schema rules
// behind it, and returns a *VerifyError listing each violation with its
// location, nil if there is none, or another error if r cannot be read.
// On a whole disk it checks the partition table (§9.9), the boot FS (§9.10)
// and the root FS, which must name a program; a raw volume need not.
func Verify(r io.ReaderAt, size int64) error {
	rr := &readRecorder{r: r}
	var problems []Problem
	m, err := readMBR(rr, size)
	if err != nil {
		if rr.failed() != nil {
			return fmt.Errorf("tfs: verify: %w", rr.failed())
		}
		problems = append(problems, Problem{Rule: "§9.2", Where: "image", What: err.Error()})
	} else if m == nil {
		verifyVolume(rr, 0, size, roleRaw, &checker{prefix: "volume", problems: &problems})
	} else {
		verifyDisk(rr, size, m, &problems)
	}
	if err := rr.failed(); err != nil {
		return fmt.Errorf("tfs: verify: %w", err)
	}
	if len(problems) > 0 {
		return &VerifyError{Problems: problems}
	}
	return nil
}

// readRecorder remembers read errors other than reading past the end, so
// that an I/O failure is reported as such and not as a format problem.
type readRecorder struct {
	r   io.ReaderAt
	mu  sync.Mutex
	err error
}

func (rr *readRecorder) ReadAt(p []byte, off int64) (int, error) {
	n, err := rr.r.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		rr.mu.Lock()
		if rr.err == nil {
			rr.err = err
		}
		rr.mu.Unlock()
	}
	return n, err
}

func (rr *readRecorder) failed() error {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.err
}

type role int

const (
	roleRaw role = iota
	roleRoot
	roleBoot
)

func verifyDisk(r io.ReaderAt, size int64, m *mbr, problems *[]Problem) {
	chk := &checker{prefix: "disk", problems: problems}
	if size%SectorSize != 0 {
		chk.add("§9.9", "image", "size %d is not a multiple of %d", size, SectorSize)
	}
	s2 := binary.LittleEndian.Uint64(m.raw[mbrRegion+8:])
	if typ := binary.LittleEndian.Uint32(m.raw[mbrRegion+16:]); typ != regionTypeFS {
		chk.add("§9.9", "MBR byte 0x1ba", "boot region record type %d (must be %d)", typ, regionTypeFS)
	}
	if s2%SectorSize != 0 || s2 > 1<<30 {
		chk.add("§9.9", "MBR byte 0x1b2", "stage2 length %d is not a multiple of %d", s2, SectorSize)
		s2 = 0
	}
	first := int64(SectorSize + s2 + klogSize)
	if s2 == 0 && m.entries[0] == (mbrEntry{lba: uint32(first / SectorSize)}) {
		verifyDirectBootDisk(r, size, m, first, chk, problems)
		return
	}

	type want struct {
		typ   byte
		lba   int64
		count int64
	}
	var wants []want
	bootIdx := m.entryIndex(BootPartition)
	rootIdx := m.entryIndex(RootPartition)
	next := first / SectorSize
	if m.uefi() {
		wants = append(wants, want{partTypeEFI, next, espSize / SectorSize})
		next += espSize / SectorSize
	}
	wants = append(wants, want{partTypeTFS, next, bootFSSize / SectorSize})
	next += bootFSSize / SectorSize
	wants = append(wants, want{partTypeTFS, next, (size - next*SectorSize) / SectorSize})
	for i, e := range m.entries {
		where := fmt.Sprintf("MBR partition entry %d (byte %#x)", i, mbrEntries+16*i)
		if i >= len(wants) {
			if e != (mbrEntry{}) {
				chk.add("§9.9", where, "entry should be empty")
			}
			continue
		}
		w := wants[i]
		if e.typ != w.typ {
			chk.add("§9.9", where, "type %#x (want %#x)", e.typ, w.typ)
		}
		if int64(e.lba) != w.lba {
			chk.add("§9.9", where, "first LBA %d (want %d: 512 + stage2 %d + klog 4096 bytes, then the partitions before it)", e.lba, w.lba, s2)
		}
		if int64(e.count) != w.count {
			chk.add("§9.9", where, "%d sectors (want %d)", e.count, w.count)
		}
		if e.status != 0x80 {
			chk.add("§9.9", where, "status %#x (mkfs and ops mark every entry 0x80)", e.status)
		}
		off := int64(e.lba) * SectorSize
		if e.chsFirst != chs(off) || e.chsLast != chs(off+int64(e.count)*SectorSize-SectorSize) {
			chk.add("§2.2", where, "CHS fields differ from the ones mkfs computes")
		}
	}
	be, re := m.entries[bootIdx], m.entries[rootIdx]
	if be.lba == 0 || be.count == 0 || re.lba == 0 || re.count == 0 {
		chk.add("§9.9", "MBR", "boot or root partition entry is empty; readers fall back to a raw volume at byte 0")
		return
	}
	if off := int64(be.lba) * SectorSize; off+int64(be.count)*SectorSize <= size {
		verifyVolume(r, off, int64(be.count)*SectorSize, roleBoot, &checker{prefix: "boot fs", problems: problems})
	} else {
		chk.add("§9.9", "MBR", "boot partition extends past the end of the image")
	}
	if off := int64(re.lba) * SectorSize; off < size {
		verifyVolume(r, off, size-off, roleRoot, &checker{prefix: "root fs", problems: problems})
	} else {
		chk.add("§9.9", "MBR", "root partition starts past the end of the image")
	}
}

// verifyDirectBootDisk checks a disk for direct kernel boot (spec §10): no
// boot code or boot filesystem, a region record with no stage2, an empty
// first entry whose LBA still places the kernel log right before the root,
// and the root filesystem as the second entry, to the end of the disk.
func verifyDirectBootDisk(r io.ReaderAt, size int64, m *mbr, first int64, chk *checker, problems *[]Problem) {
	root := m.entries[1]
	where := fmt.Sprintf("MBR partition entry 1 (byte %#x)", mbrEntries+16)
	if root.typ != partTypeTFS {
		chk.add("§10", where, "type %#x (want %#x)", root.typ, partTypeTFS)
	}
	if int64(root.lba) != first/SectorSize {
		chk.add("§10", where, "first LBA %d (want %d: 512 + klog 4096 bytes)", root.lba, first/SectorSize)
	}
	if want := (size - first) / SectorSize; int64(root.count) != want {
		chk.add("§10", where, "%d sectors (want %d, to the end of the disk)", root.count, want)
	}
	for i := 2; i < len(m.entries); i++ {
		if m.entries[i] != (mbrEntry{}) {
			chk.add("§10", fmt.Sprintf("MBR partition entry %d (byte %#x)", i, mbrEntries+16*i), "entry should be empty")
		}
	}
	if first < size {
		verifyVolume(r, first, size-first, roleRoot, &checker{prefix: "root fs", problems: problems})
	}
}

// span is a range of volume sectors used by the log or by file data.
type span struct {
	start, end uint64
	owner      string
}

func verifyVolume(r io.ReaderAt, off, size int64, ro role, chk *checker) {
	if size%SectorSize != 0 {
		chk.add("§1", "volume size", "%d bytes is not a multiple of %d", size, SectorSize)
	}
	f, err := openVolume(r, off, size, chk)
	if err != nil {
		var le *logError
		if errors.As(err, &le) {
			rule := le.rule
			if rule == "" {
				rule = "§3"
			}
			chk.add(rule, le.where, "%v (the log cannot be read past this point)", le.err)
		} else {
			chk.add("§3", "log", "%v", strings.TrimPrefix(err.Error(), "tfs: "))
		}
		return
	}
	v := &volumeCheck{f: f, chk: chk, role: ro, names: make(map[*tuple][]string)}
	for _, e := range f.log.exts {
		v.v4 = v.v4 || e.v4
		v.spans = append(v.spans, span{uint64(e.start), uint64(e.start + e.count), extWhere(e, 0)})
	}
	v.walk(f.root, "/")
	v.checkLinks()
	v.checkRoot()
	v.checkOverlaps()
	switch ro {
	case roleBoot:
		if size != bootFSSize {
			chk.add("§9.10", "volume", "boot FS is %d bytes (must be exactly 12 MiB)", size)
		}
		if t, err := resolve(f.ops(), "kernel", true); err != nil || t.children() != nil {
			chk.add("§9.10", "/kernel", "boot FS has no /kernel file")
		}
		if n := len(f.log.exts); n != 2 {
			chk.add("§9.10", "log", "boot FS log has %d extensions (keep it to sector 0 + one, for stage2's heap)", n)
		}
	default:
		var used uint64
		for _, s := range v.spans {
			used = max(used, s.end)
		}
		if free := size - int64(used)*SectorSize; free < DefaultFreeSpace {
			chk.add("§9.11", "volume end", "only %d bytes free after sector %d (the kernel needs about 1 MiB to append to its log)", free, used)
		}
	}
}

type volumeCheck struct {
	f     *FS
	v4    bool // some extension is v4: scalars are untyped buffers
	chk   *checker
	role  role
	names map[*tuple][]string // non-directory tuples -> their paths
	spans []span
}

func (v *volumeCheck) walk(d *tuple, p string) {
	c := d.children()
	for _, name := range sortedKeys(c.attrs) {
		cp := path.Join(p, name)
		if !validName(name) {
			v.chk.add("§5.1", p, "entry name %q is not a file name", name)
			continue
		}
		t, ok := c.attrs[name].(*tuple)
		if !ok {
			v.chk.add("§5.1", cp, "entry value is %s, not a tuple (dump asserts on it)", describe(c.attrs[name]))
			continue
		}
		if v.role != roleBoot {
			rel := strings.TrimPrefix(cp, "/")
			if err := checkReserved(rel, t.children() != nil); err != nil {
				v.chk.add("§8", cp, "%v", err)
			}
		}
		if ch, present := t.attrs["children"]; present && t.children() == nil {
			v.chk.add("§5.1", cp, "children is %s, not a tuple", describe(ch))
		}
		if t.children() != nil {
			v.walk(t, cp)
			continue
		}
		v.names[t] = append(v.names[t], cp)
		if len(v.names[t]) > 1 {
			continue // a further name of a hard link: checked once
		}
		if lt, present := t.attrs["linktarget"]; present {
			switch lt.(type) {
			case String:
			case Buffer:
				if !v.v4 {
					v.chk.add("§9.5", cp, "linktarget is an untyped buffer (write a string)")
				}
			default:
				v.chk.add("§5.1", cp, "linktarget is %s, not a string", describe(lt))
			}
			continue
		}
		v.checkFile(t, cp)
	}
}

func describe(x any) string {
	switch x.(type) {
	case *tuple:
		return "a tuple"
	case *vector:
		return "a vector"
	case String:
		return "a string"
	case Int, Uint:
		return "an integer"
	case Flag:
		return "a flag"
	case Buffer:
		return "an untyped buffer"
	}
	return fmt.Sprintf("%T", x)
}

func (v *volumeCheck) checkFile(t *tuple, p string) {
	et, present := t.attrs["extents"]
	if !present {
		v.chk.add("§9.7", p, "regular file without extents (the kernel reads no data from it)")
		return
	}
	if _, ok := et.(*tuple); !ok {
		v.chk.add("§9.7", p, "extents is %s, not a tuple", describe(et))
		return
	}
	length, ok := asUint(t.attrs["filelength"])
	if !ok {
		v.chk.add("§9.7", p, "missing or non-numeric filelength")
	}
	exts, err := v.f.extents(t)
	if err != nil {
		v.chk.add("§9.7", p, "%v", err)
		return
	}
	for k := range et.(*tuple).attrs {
		if n, err := strconv.ParseUint(k, 10, 64); err == nil && strconv.FormatUint(n, 10) != k {
			v.chk.add("§9.7", p, "extent key %q is not in canonical decimal form", k)
		}
	}
	for _, e := range exts {
		where := fmt.Sprintf("%s (extent %d)", p, e.FileBlock)
		if e.Allocated < e.Length {
			v.chk.add("§9.7", where, "allocated %d < length %d", e.Allocated, e.Length)
		}
		if e.Offset == 0 {
			v.chk.add("§9.3", where, "data in sector 0")
		}
		end := e.Offset + max(e.Length, e.Allocated)
		v.spans = append(v.spans, span{e.Offset, end, where})
	}
	if !ok || length%SectorSize == 0 {
		return
	}
	last := (length - 1) / SectorSize
	for _, e := range exts {
		if e.Uninited || last < e.FileBlock || last >= e.FileBlock+e.Length {
			continue
		}
		var sec [SectorSize]byte
		at := int64(e.Offset+last-e.FileBlock) * SectorSize
		if _, err := v.f.vol.ReadAt(sec[:], at); err != nil {
			v.chk.add("§9.7", p, "cannot read its last sector %d: %v", at/SectorSize, ioErr(err))
			return
		}
		if tail := sec[length%SectorSize:]; !allZero(tail) {
			v.chk.add("§9.7", p, "bytes after the end of the file in its last sector %d are not zero", at/SectorSize)
		}
	}
}

func allZero(b []byte) bool {
	return len(bytes.Trim(b, "\x00")) == 0
}

// checkLinks compares nlink with the number of names (spec §5.4).
func (v *volumeCheck) checkLinks() {
	for t, names := range v.names {
		n, present := asUint(t.attrs["nlink"])
		if !present {
			n = 1
		}
		if n != uint64(len(names)) {
			slices.Sort(names)
			v.chk.add("§5.4", names[0], "nlink is %d but the entry has %d names (%s)", n, len(names), strings.Join(names, ", "))
		}
	}
}

// text returns a string value; v4 volumes store strings as buffers.
func (v *volumeCheck) text(x any) (string, bool) {
	switch x := x.(type) {
	case String:
		return string(x), true
	case Buffer:
		return string(x), v.v4
	}
	return "", false
}

// checkRoot checks the manifest keys the kernel reads (spec §7, §9 items 4
// and 8).
func (v *volumeCheck) checkRoot() {
	a := v.f.root.attrs
	prog, present := a["program"]
	switch s, isStr := v.text(prog); {
	case !present:
		if v.role == roleRoot {
			v.chk.add("§9.4", "root tuple", "root FS has no program")
		}
	case !isStr:
		v.chk.add("§9.4", "root tuple", "program is %s, not a string", describe(prog))
	default:
		t, err := resolve(v.f.ops(), string(s), true)
		if err == nil && (t.children() != nil) {
			err = errors.New("is a directory")
		}
		if err != nil {
			v.chk.add("§9.4", "root tuple", "program %q does not resolve to a file: %v", s, err)
		}
	}
	if cwd, present := a["cwd"]; present {
		if _, ok := v.text(cwd); !ok {
			v.chk.add("§7", "root tuple", "cwd is %s, not a string", describe(cwd))
		}
	}
	if env, present := a["environment"]; present {
		if t, ok := env.(*tuple); !ok {
			v.chk.add("§9.8", "root tuple", "environment is %s, not a tuple", describe(env))
		} else {
			for _, k := range sortedKeys(t.attrs) {
				if _, ok := v.text(t.attrs[k]); !ok {
					v.chk.add("§9.8", "environment", "%s is %s, not a string", k, describe(t.attrs[k]))
				}
			}
		}
	}
	if args, present := a["arguments"]; present {
		switch x := args.(type) {
		case *vector:
			for i, e := range x.elems {
				if _, ok := v.text(e); !ok {
					v.chk.add("§9.8", "arguments", "element %d is %s, not a string", i, describe(e))
				}
			}
		case *tuple:
			for _, k := range sortedKeys(x.attrs) {
				if _, ok := v.text(x.attrs[k]); !ok {
					v.chk.add("§9.8", "arguments", "element %s is %s, not a string", k, describe(x.attrs[k]))
				}
			}
		default:
			v.chk.add("§9.8", "root tuple", "arguments is %s, not a vector", describe(args))
		}
	}
}

// checkOverlaps finds log extensions and extents sharing sectors.
func (v *volumeCheck) checkOverlaps() {
	s := v.spans
	slices.SortFunc(s, func(a, b span) int {
		switch {
		case a.start != b.start:
			return cmpU64(a.start, b.start)
		default:
			return cmpU64(a.end, b.end)
		}
	})
	var reach span
	for i, x := range s {
		if i > 0 && x.start < reach.end && x.end > x.start {
			v.chk.add("§9.3", x.owner, "sectors %d-%d overlap %s", x.start, x.end-1, reach.owner)
		}
		if x.end > reach.end {
			reach = x
		}
	}
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Checks made while the log is read (see readLog).

func checkLinkPlacement(chk *checker, cur logExt, src *extSource, at int64, frames int, count uint64) {
	if cur.start != 0 {
		return
	}
	if frames != 1 {
		chk.add("§9.2", extWhere(cur, at), "LINK is not the first record of sector 0")
	}
	if count != extSectors {
		chk.add("§9.2", extWhere(cur, at), "sector 0 links to a %d-sector extension (want %d)", count, extSectors)
	}
	if c, err := src.ReadByte(); err != nil || c != recEndOfLog {
		chk.add("§9.2", extWhere(cur, at), "LINK in sector 0 is not followed by END_OF_LOG")
	}
}

func checkSlack(chk *checker, e logExt) {
	if e.start == 0 {
		return
	}
	if free := e.count*SectorSize - e.terminator; free < extSlack {
		chk.add("§9.3", extWhere(e, e.terminator), "extension closes %d bytes before its end (keep at least %d)", free, extSlack)
	}
}

func checkRecord(chk *checker, where string, idx int, v any, consumed, total uint64) {
	if consumed != total {
		chk.add("§9.6", where, "record announces a %d-byte value but its value is %d bytes", total, consumed)
	}
	t, ok := v.(*tuple)
	if !ok {
		chk.add("§9.6", where, "record's value is %s, not a tuple", describe(v))
		return
	}
	if idx == 0 && t.id != 1 {
		chk.add("§9.4", where, "first record does not start with an immediate tuple (the root must be dictionary entry #1)")
	}
}
