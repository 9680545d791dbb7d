package resolve

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"strings"
)

// Debian builds node with some of its JavaScript builtins left out of the
// binary ("shared builtins"): libnode names each file by its absolute path
// and reads it when node starts, so node dies at boot without them. No ELF
// header names them; the paths sit in libnode's read-only data.
const (
	nodeLibPrefix    = "libnode.so"
	nodeBuiltinsDir  = "/usr/share/nodejs/"
	maxBuiltinPath   = 4096
	reasonNodeShared = "JavaScript builtin that Debian's libnode reads at start"
)

// addNodeBuiltins adds the files under /usr/share/nodejs that a loaded
// libnode names.
func (s *session) addNodeBuiltins() error {
	for _, o := range s.objects {
		if !strings.HasPrefix(o.info.Soname, nodeLibPrefix) {
			continue
		}
		paths, err := s.rodataPaths(o, nodeBuiltinsDir)
		if err != nil {
			s.warnf("%s: looking for the builtins it reads: %v", o.path, err)
			continue
		}
		for _, p := range paths {
			loc, err := s.r.root.locate(p)
			switch {
			case err != nil && absent(err):
				s.warnf("%s reads %s at start, which the image does not have", o.path, p)
			case err != nil:
				return err
			case loc.Info.Mode().IsRegular():
				s.b.addLocated(loc, reasonNodeShared, o.path)
			}
		}
	}
	return nil
}

// rodataPaths returns the NUL-terminated strings in o's .rodata that start
// with prefix, in order, without repeats.
func (s *session) rodataPaths(o *object, prefix string) ([]string, error) {
	info, err := s.r.root.lstat(o.file)
	if err != nil {
		return nil, err
	}
	f, err := s.r.root.open(o.file, info.Size())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ef, err := elf.NewFile(io.NewSectionReader(f, 0, f.size))
	if err != nil {
		return nil, err
	}
	sec := ef.Section(".rodata")
	if sec == nil || sec.Type != elf.SHT_PROGBITS {
		return nil, nil
	}
	if sec.Flags&elf.SHF_COMPRESSED == 0 && sec.Size <= maxRodataRead {
		// Read whole with one call: on a file system that fetches files
		// from far away, all its bytes are asked for at once rather than
		// a buffer's worth after another.
		data := make([]byte, sec.Size)
		if _, err := f.ReadAt(data, int64(sec.Offset)); err != nil {
			return nil, err
		}
		return scanStringsIn(data, []byte(prefix)), nil
	}
	return scanStrings(sec.Open(), []byte(prefix))
}

// maxRodataRead is the largest .rodata rodataPaths reads into memory at
// once; a larger one is read as a stream.
const maxRodataRead = 64 << 20

// scanStrings finds the NUL-terminated strings that start with prefix in r.
func scanStrings(r io.Reader, prefix []byte) ([]string, error) {
	br := bufio.NewReaderSize(r, scanBuffer)
	var (
		out  []string
		seen = map[string]bool{}
	)
	for {
		// Each NUL ends a candidate; a path starts right after one.
		chunk, err := br.ReadSlice(0)
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long run without NUL holds no path of ours at its start;
			// drop it up to the next NUL.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice(0)
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			continue
		}
		if i := bytes.Index(chunk, prefix); i >= 0 {
			str := string(bytes.TrimSuffix(chunk[i:], []byte{0}))
			if len(str) <= maxBuiltinPath && !seen[str] && cleanPath(str) {
				seen[str] = true
				out = append(out, str)
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// scanBuffer is how long a NUL-terminated string scanStrings considers
// at most (its buffer): a longer run holds no path of ours.
const scanBuffer = 1 << 20

// scanStringsIn is scanStrings over bytes in memory: it jumps from one
// occurrence of prefix to the next instead of reading every string.
func scanStringsIn(data, prefix []byte) []string {
	var (
		out  []string
		seen = map[string]bool{}
	)
	for pos := 0; pos < len(data); {
		i := bytes.Index(data[pos:], prefix)
		if i < 0 || len(prefix) == 0 {
			break
		}
		at := pos + i
		// The string holding it: from the NUL before it to the NUL after.
		begin := pos
		if j := bytes.LastIndexByte(data[pos:at], 0); j >= 0 {
			begin = pos + j + 1
		}
		end := len(data)
		if j := bytes.IndexByte(data[at:], 0); j >= 0 {
			end = at + j
		}
		if end+1-begin <= scanBuffer {
			str := string(data[at:end])
			if len(str) <= maxBuiltinPath && !seen[str] && cleanPath(str) {
				seen[str] = true
				out = append(out, str)
			}
		}
		pos = end + 1
	}
	return out
}

// cleanPath accepts printable absolute paths without "." or ".." elements.
func cleanPath(p string) bool {
	for _, c := range p {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	for _, el := range strings.Split(p[1:], "/") {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	return true
}
