package tfs

import (
	"errors"
	"fmt"
	"io"
)

// ReadWriterAt is a disk image that can be changed in place.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// ErrLogFull is returned by UpdateRoot when the log's last extension has
// no room for the record (the kernel would link a new extension; this
// writer does not).
var ErrLogFull = errors.New("tfs: no room for the record in the log's last extension")

// UpdateRoot appends to the log of the TFS in rw (an image of size bytes,
// found as Open finds it) one record that sets attrs on the root tuple,
// as the kernel appends its own updates (spec §3.4, §4.4): later records
// win, so a reader sees the new values and everything else unchanged. The
// record replaces the END_OF_LOG of the last extension and ends with a new
// one. Keys follow SetRoot's rules (not "children").
func UpdateRoot(rw ReadWriterAt, size int64, attrs Tuple, opts ...OpenOption) error {
	if len(attrs) == 0 {
		return nil
	}
	for _, k := range sortedKeys(attrs) {
		if k == "children" {
			return errors.New("tfs: the root's children cannot be updated this way")
		}
		if err := checkSymbol(k); err != nil {
			return fmt.Errorf("tfs: root key %q: %w", k, err)
		}
		if err := checkWritable(attrs[k]); err != nil {
			return fmt.Errorf("tfs: root key %q: %w", k, err)
		}
	}
	var cfg openConfig
	for _, o := range opts {
		o(&cfg)
	}
	off, vsize, err := locate(rw, size, cfg.part)
	if err != nil {
		return fmt.Errorf("tfs: %w", err)
	}
	lg, err := readLog(io.NewSectionReader(rw, off, vsize), vsize, nil)
	if err != nil {
		return fmt.Errorf("tfs: reading log: %w", err)
	}
	last := lg.exts[len(lg.exts)-1]
	if last.v4 {
		return errors.New("tfs: the log ends in a version 4 extension, which is never appended to")
	}

	// The encoder continues the log's dictionary: keys already in it are
	// referenced, never immediate again (spec §4.3 rule 1).
	e := newEncoder(nil)
	e.next = uint64(len(lg.dict)) + 1
	for i, x := range lg.dict {
		if s, ok := x.(symbol); ok {
			if _, dup := e.syms[string(s)]; !dup {
				e.syms[string(s)] = uint64(i) + 1
			}
		}
	}
	e.tupleRef(1, len(attrs)) // the root is entry 1
	for _, k := range sortedKeys(attrs) {
		e.symbol(k)
		e.value(attrs[k])
	}
	if e.err != nil {
		return fmt.Errorf("tfs: %w", e.err)
	}
	value := e.buf
	total := uint64(len(value))
	rec := []byte{recTupleAvailable}
	rec = appendVarint(rec, total)
	rec = appendVarint(rec, total)
	rec = append(rec, value...)
	rec = append(rec, recEndOfLog)
	if last.terminator+int64(len(rec))+extSlack > last.count*SectorSize {
		return ErrLogFull
	}
	at := off + last.start*SectorSize + last.terminator
	if _, err := rw.WriteAt(rec, at); err != nil {
		return fmt.Errorf("tfs: writing the log: %w", err)
	}
	return nil
}
