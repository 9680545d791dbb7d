package resolve

import (
	"bufio"
	"bytes"
	"strings"
)

// ldsoConfLine is one meaningful line of an ld.so.conf file: a library
// directory, or the patterns of an include line.
type ldsoConfLine struct {
	Dir     string
	Include []string
}

// parseLdSoConf reads an ld.so.conf file the way ldconfig does: '#' starts
// a comment anywhere, "include PATTERN..." names more files, "hwcap" lines
// are obsolete and ignored, any other line is one directory (trailing
// slashes and blanks removed). Relative directories are dropped, as
// ldconfig refuses them.
func parseLdSoConf(data []byte) []ldsoConfLine {
	var out []ldsoConfLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	sc.Split(scanLinesAnyLength)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimLeft(line, " \t\r\n\v\f")
		if line == "" {
			continue
		}
		if keyword(line, "include") {
			pats := strings.Fields(line[len("include"):])
			if len(pats) > 0 {
				out = append(out, ldsoConfLine{Include: pats})
			}
			continue
		}
		if len(line) > 5 && strings.EqualFold(line[:5], "hwcap") && isBlank(line[5]) {
			continue
		}
		dir := strings.TrimRight(line, " \t\r\n\v\f")
		for len(dir) > 1 && strings.HasSuffix(dir, "/") {
			dir = dir[:len(dir)-1]
		}
		if !strings.HasPrefix(dir, "/") {
			continue
		}
		out = append(out, ldsoConfLine{Dir: dir})
	}
	return out
}

// keyword reports whether line starts with word followed by a blank.
func keyword(line, word string) bool {
	return len(line) > len(word) && strings.HasPrefix(line, word) && isBlank(line[len(word)])
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// scanLinesAnyLength is bufio.ScanLines that hands over an over-long line
// in pieces instead of failing: configuration files are not trusted to be
// well formed.
func scanLinesAnyLength(data []byte, atEOF bool) (int, []byte, error) {
	adv, tok, err := bufio.ScanLines(data, atEOF)
	if adv == 0 && tok == nil && err == nil && len(data) >= 1<<20-1 {
		return len(data), data, nil
	}
	return adv, tok, err
}

// nssDatabases are the NSS databases whose modules a unikernel needs: name
// resolution and the user and group lookups most runtimes make at start.
var nssDatabases = []string{"hosts", "passwd", "group"}

// defaultNSSServices is what glibc uses for a database /etc/nsswitch.conf
// does not configure (or without the file).
var defaultNSSServices = []string{"files", "dns"}

// parseNsswitch reads /etc/nsswitch.conf: "database: service [ACTION]
// service ...". It returns the services of each database in order; action
// blocks ("[NOTFOUND=return]") are skipped and names that could not be a
// module name are dropped. The first line for a database counts.
func parseNsswitch(data []byte) map[string][]string {
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	sc.Split(scanLinesAnyLength)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		db, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		db = strings.TrimSpace(db)
		if db == "" || strings.ContainsAny(db, " \t") {
			continue
		}
		if _, seen := out[db]; seen {
			continue
		}
		services := []string{}
		for len(rest) > 0 {
			rest = strings.TrimLeft(rest, " \t\r\v\f")
			if rest == "" {
				break
			}
			if rest[0] == '[' {
				end := strings.IndexByte(rest, ']')
				if end < 0 {
					break // unterminated action: glibc gives up on the line here too
				}
				rest = rest[end+1:]
				continue
			}
			end := strings.IndexAny(rest, " \t\r\v\f[")
			if end < 0 {
				end = len(rest)
			}
			name := rest[:end]
			rest = rest[end:]
			if validServiceName(name) {
				services = append(services, name)
			}
		}
		out[db] = services
	}
	return out
}

// validServiceName accepts what can name an NSS module file
// (libnss_NAME.so.2) and nothing that could leave its directory.
func validServiceName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '+':
		default:
			return false
		}
	}
	return true
}

// parseMuslPath reads musl's /etc/ld-musl-ARCH.path: directories separated
// by newlines or colons.
func parseMuslPath(data []byte) []string {
	var out []string
	for _, f := range strings.FieldsFunc(string(data), func(r rune) bool { return r == ':' || r == '\n' }) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// splitEnvPath splits a PATH-like variable. glibc's LD_LIBRARY_PATH also
// takes ';'. Empty elements are kept (they mean the working directory).
func splitEnvPath(s string, semicolon bool) []string {
	if s == "" {
		return nil
	}
	return strings.FieldsFunc(s, func(r rune) bool { return r == ':' || (semicolon && r == ';') })
}

// parseShebang reads the "#!" line of a script the way the kernel does
// (binfmt_script): the interpreter is the first word, the rest of the line
// (trimmed) is one optional argument. head is the start of the file (the
// kernel looks at 256 bytes); ok is false when it is not a script or the
// line does not fit.
func parseShebang(head []byte) (interp, arg string, ok bool) {
	if !bytes.HasPrefix(head, []byte("#!")) {
		return "", "", false
	}
	line := head[2:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	} else if len(head) >= shebangMax {
		// No end of line within what the kernel reads: it accepts the
		// line only if the interpreter name ended inside it.
		trimmed := bytes.TrimLeft(line, " \t")
		if bytes.IndexAny(trimmed, " \t") < 0 {
			return "", "", false
		}
	}
	line = bytes.Trim(line, " \t")
	if bytes.IndexByte(line, 0) >= 0 {
		line = line[:bytes.IndexByte(line, 0)]
	}
	if len(line) == 0 {
		return "", "", false
	}
	name, rest := line, []byte(nil)
	if i := bytes.IndexAny(line, " \t"); i >= 0 {
		name, rest = line[:i], line[i+1:]
	}
	return string(name), string(bytes.Trim(rest, " \t")), true
}

// shebangMax is how much of a script the kernel reads (BINPRM_BUF_SIZE).
const shebangMax = 256
