package resolve

import (
	"debug/elf"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
)

// The dynamic loaders' rules, as glibc's ld.so and musl's ldso apply them
// when a program starts (and for dlopen by the C library itself).

// loadClosure loads the interpreter, the preloads and the DT_NEEDED
// closure of the program, breadth first as both loaders do.
func (s *session) loadClosure(plan *Plan) error {
	searchSet := false
	switch plan.Linkage {
	case Static, StaticPIE:
		return nil
	case Dynamic:
		interp := s.ref.Interp
		if strings.HasPrefix(path.Base(interp), "ld-musl-") {
			s.flavor = musl
		}
		p := tidy(s.abs(interp))
		loc, err := s.r.root.locate(p)
		if err != nil {
			if absent(err) {
				return &ProgramError{Path: s.program.path, Err: fmt.Errorf("its ELF interpreter %s is not in the image", interp)}
			}
			return err
		}
		var info *elfInfo
		if s.r.root.prefetch != nil && s.flavor == glibc {
			// On a file system that fetches from far away, the libraries'
			// headers travel while the loader's does: glibc's search path
			// does not depend on the loader's contents.
			done := make(chan struct{})
			go func() {
				defer close(done)
				info, err = s.r.elfInfo(loc.File, loc.Info.Size())
			}()
			serr := s.setupSearch()
			if serr == nil {
				searchSet = true
				ahead := []*object{s.program}
				if s.o.extras {
					if nss := s.nssAhead(); nss != nil {
						ahead = append(ahead, nss)
					}
				}
				s.readAhead(ahead)
			}
			<-done
			if err == nil && serr != nil {
				return serr // the loader's own failure goes first, as without read-ahead
			}
		} else {
			info, err = s.r.elfInfo(loc.File, loc.Info.Size())
		}
		if err != nil {
			return &ProgramError{Path: s.program.path, Err: fmt.Errorf("ELF interpreter %s: %w", interp, err)}
		}
		if err := info.loadableWith(s.ref); err != nil {
			return &ProgramError{Path: s.program.path, Err: fmt.Errorf("ELF interpreter %s: %w", interp, err)}
		}
		s.loadInterp(p, loc, info, reasonInterp)
		plan.Interpreter = p
	case Library:
		// A shared library given as the program: ldd loads it with the
		// loader of its C library.
		if err := s.defaultInterp(); err != nil {
			return err
		}
		if s.interp != nil {
			plan.Interpreter = s.interp.path
		}
	}
	plan.Libc = s.flavor.String()
	if !searchSet {
		if err := s.setupSearch(); err != nil {
			return err
		}
	}
	queue := []*object{s.program}
	preloads, err := s.preloads()
	if err != nil {
		return err
	}
	queue = append(queue, preloads...)
	return s.loadDeps(queue, RoleNeeded, reasonLibrary, true)
}

// loadInterp registers the dynamic loader, which is loaded first.
func (s *session) loadInterp(p string, loc *located, info *elfInfo, reason string) {
	s.interp = &object{path: p, file: loc.File, info: info, role: RoleInterpreter, reason: reason}
	s.b.addLocated(loc, reason, s.program.path)
	if s.flavor == musl {
		s.register(s.interp)
	} else {
		s.register(s.interp, info.Soname)
	}
}

// defaultInterp finds the loader for a shared library given as the
// program: glibc's for its machine if the image has it, else musl's.
func (s *session) defaultInterp() error {
	candidates := []struct {
		path   string
		flavor libcFlavor
	}{
		{glibcInterp(s.ref.Machine, s.ref.Class), glibc},
		{"/lib/ld-musl-" + muslArch(s.ref.Machine) + ".so.1", musl},
	}
	for _, c := range candidates {
		if c.path == "" || strings.Contains(c.path, "ld-musl-.") {
			continue
		}
		loc, err := s.r.root.locate(c.path)
		if err != nil {
			if absent(err) {
				continue
			}
			return err
		}
		info, err := s.r.elfInfo(loc.File, loc.Info.Size())
		if err != nil || info.loadableWith(s.ref) != nil {
			continue
		}
		s.flavor = c.flavor
		s.loadInterp(c.path, loc, info, "ELF interpreter (the C library's loader, for a shared library)")
		return nil
	}
	return nil
}

// machineNames are the names glibc, musl and Debian give one machine.
type machineNames struct {
	glibcInterp string // glibc's PT_INTERP
	muslArch    string // musl's LDSO_ARCH
	triplet     string // Debian's multiarch directory
	platform    string // AT_PLATFORM, what $PLATFORM expands to ("" if unknown)
}

var machines = map[elf.Machine]machineNames{
	elf.EM_X86_64:  {"/lib64/ld-linux-x86-64.so.2", "x86_64", "x86_64-linux-gnu", "x86_64"},
	elf.EM_AARCH64: {"/lib/ld-linux-aarch64.so.1", "aarch64", "aarch64-linux-gnu", "aarch64"},
	elf.EM_386:     {"/lib/ld-linux.so.2", "i386", "i386-linux-gnu", "i686"},
	elf.EM_ARM:     {"/lib/ld-linux-armhf.so.3", "armhf", "arm-linux-gnueabihf", ""},
	elf.EM_RISCV:   {"/lib/ld-linux-riscv64-lp64d.so.1", "riscv64", "riscv64-linux-gnu", ""},
	elf.EM_PPC64:   {"/lib64/ld64.so.2", "powerpc64le", "powerpc64le-linux-gnu", "powerpc64le"},
	elf.EM_S390:    {"/lib/ld64.so.1", "s390x", "s390x-linux-gnu", "s390x"},
}

// x32 is the 32-bit ABI of x86-64 (ELFCLASS32 on EM_X86_64).
var x32 = machineNames{"/libx32/ld-linux-x32.so.2", "x32", "x86_64-linux-gnux32", "x86_64"}

func namesOf(m elf.Machine, c elf.Class) machineNames {
	if m == elf.EM_X86_64 && c == elf.ELFCLASS32 {
		return x32
	}
	return machines[m]
}

// glibcInterp is glibc's PT_INTERP for a machine.
func glibcInterp(m elf.Machine, c elf.Class) string { return namesOf(m, c).glibcInterp }

// muslArch is musl's LDSO_ARCH.
func muslArch(m elf.Machine) string { return machines[m].muslArch }

// multiarchTriplet is Debian's multiarch directory name.
func multiarchTriplet(m elf.Machine, c elf.Class) string { return namesOf(m, c).triplet }

// platformName is AT_PLATFORM, what $PLATFORM expands to.
func platformName(m elf.Machine) string { return machines[m].platform }

// setupSearch works out the fixed parts of the search path.
func (s *session) setupSearch() error {
	m, c := s.ref.Machine, s.ref.Class
	triplet := multiarchTriplet(m, c)
	s.platform = platformName(m)
	s.libDST = "lib"
	if c == elf.ELFCLASS64 {
		s.libDST = "lib64"
	}
	if triplet != "" {
		// Debian's glibc expands $LIB to its multiarch directory.
		if loc, err := s.r.root.locate("/usr/lib/" + triplet); err == nil && loc.Info.IsDir() {
			s.libDST = "lib/" + triplet
		} else if err != nil && !absent(err) {
			return err
		}
		s.defaultDirs = append(s.defaultDirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	if c == elf.ELFCLASS64 {
		s.defaultDirs = append(s.defaultDirs, "/lib64", "/usr/lib64")
	}
	s.defaultDirs = append(s.defaultDirs, "/lib", "/usr/lib")
	if s.flavor == musl {
		return s.setupMuslPath()
	}
	s.cacheDirs = s.ldconfDirs()
	return nil
}

// setupMuslPath reads musl's path file, found relative to the loader's
// prefix (/lib/ld-musl-x86_64.so.1 -> /etc/ld-musl-x86_64.path), or takes
// musl's built-in default.
func (s *session) setupMuslPath() error {
	prefix := ""
	if s.interp != nil {
		prefix = path.Dir(path.Dir(s.interp.path))
		if prefix == "/" || prefix == "." {
			prefix = ""
		}
	}
	file := prefix + "/etc/ld-musl-" + muslArch(s.ref.Machine) + ".path"
	loc, data, err := s.r.root.readFile(file, 1<<20)
	switch {
	case err == nil:
		s.muslDirs = parseMuslPath(data)
		s.muslDirsFrom = file
		s.b.addLocated(loc, "musl's library path", "")
	case absent(err):
		s.muslDirs = []string{"/lib", "/usr/local/lib", "/usr/lib"}
		s.muslDirsFrom = "musl default"
	default:
		return err
	}
	return nil
}

// preloads loads LD_PRELOAD and (glibc) /etc/ld.so.preload, whose
// missing entries the loaders ignore with a message.
func (s *session) preloads() ([]*object, error) {
	var names []string
	if v, ok := s.getenv("LD_PRELOAD"); ok {
		names = append(names, strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ':' })...)
	}
	if s.flavor == glibc {
		loc, data, err := s.r.root.readFile("/etc/ld.so.preload", 1<<20)
		switch {
		case err == nil:
			s.b.addLocated(loc, "glibc's preload list", "")
			names = append(names, strings.FieldsFunc(string(data), func(r rune) bool {
				return r == ' ' || r == ':' || r == '\t' || r == '\n'
			})...)
		case !absent(err):
			return nil, err
		}
	}
	var out []*object
	for _, name := range names {
		o, isNew, miss, err := s.search(name, s.program, RolePreload, reasonPreload)
		if err != nil {
			return nil, err
		}
		if miss != nil {
			s.warnf("preloaded library %s not found: the loader ignores it (%v)", name, miss)
			continue
		}
		if isNew {
			out = append(out, o)
		}
	}
	return out, nil
}

// loadDeps loads the DT_NEEDED closure of queue breadth first. Missing
// libraries are errors when required, warnings otherwise.
func (s *session) loadDeps(queue []*object, role Role, reason string, required bool) error {
	readAhead := 0 // queue[:readAhead] have had their libraries' headers read ahead
	for i := 0; i < len(queue); i++ {
		o := queue[i]
		if o.needed != nil || len(o.info.Needed) == 0 {
			continue
		}
		if i >= readAhead {
			s.readAhead(queue[i:])
			readAhead = len(queue)
		}
		o.needed = make([]Dependency, 0, len(o.info.Needed))
		for _, name := range o.info.Needed {
			dep, isNew, miss, err := s.search(name, o, role, reason)
			if err != nil {
				return err
			}
			if miss != nil {
				o.needed = append(o.needed, Dependency{Name: name})
				if required {
					s.missing = append(s.missing, miss)
				} else {
					s.warnf("%v", miss)
				}
				continue
			}
			o.needed = append(o.needed, Dependency{Name: name, Path: dep.path})
			s.b.addNeededBy(dep.file, o.path)
			if isNew {
				queue = append(queue, dep)
			}
		}
	}
	return nil
}

// readAheadJobs is how many library headers readAhead reads at once.
const readAheadJobs = 16

// readAhead reads the ELF headers of the libraries objs need, all at once,
// and of the libraries those need in turn as soon as each header is in,
// without waiting for the rest of its level: the files each DT_NEEDED name
// will most likely be found in (the first regular file on the search path,
// found without reading any header). Each file's contents are queued to be
// fetched as soon as it is found: the file system fetches its first and
// last chunks (the headers) ahead of the rest, and the header read takes
// them from there or fetches them itself. On a file system that fetches files from far away
// (Prefetcher), the dependency tree then costs the round trips of its
// deepest chain of headers rather than of its slowest header per level;
// search reads the headers again from the cache.
func (s *session) readAhead(objs []*object) {
	if s.r.root.prefetch == nil {
		return
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]bool{}
		jobs = make(chan struct{}, readAheadJobs)
	)
	// The session does not change while this runs: search waits for it.
	var visit func(o *object)
	visit = func(o *object) {
		mu.Lock()
		again := s.aheadDone[o.file]
		s.aheadDone[o.file] = true
		mu.Unlock()
		if again {
			return // an earlier read-ahead went down from here
		}
		for _, name := range o.info.Needed {
			if strings.Contains(name, "/") || s.byName[name] != nil {
				continue
			}
			for _, d := range s.searchPath(o) {
				p := strings.TrimSuffix(d.dir, "/") + "/" + name
				loc, err := s.r.root.locate(p)
				if err != nil || !loc.Info.Mode().IsRegular() {
					continue
				}
				mu.Lock()
				fresh := !seen[loc.File] && s.byFile[loc.File] == nil
				seen[loc.File] = true
				mu.Unlock()
				if fresh {
					wg.Add(1)
					// The whole file travels from now on: the header read
					// finds its first bytes in flight or fetches them itself.
					s.r.root.prefetchLater(loc.File)
					go func() {
						defer wg.Done()
						jobs <- struct{}{}
						// Errors are search's to report, when it reads the file.
						info, err := s.r.elfInfo(loc.File, loc.Info.Size())
						<-jobs
						if err == nil {
							visit(&object{path: p, file: loc.File, info: info, loader: o})
						}
					}()
				}
				break
			}
		}
	}
	for _, o := range objs {
		if o.needed == nil {
			visit(o)
		}
	}
	wg.Wait()
}

// searchDir is one directory of a search path and where it comes from.
type searchDir struct {
	dir, from string
	// soname requires the file's DT_SONAME to be the name looked up (or
	// absent): ld.so.cache holds libraries under their soname only.
	soname bool
}

// search finds the library name needed by loader as the program's loader
// would. It returns the object (isNew when just loaded), or a
// *MissingLibraryError, or a failure of the filesystem.
func (s *session) search(name string, loader *object, role Role, reason string) (o *object, isNew bool, miss *MissingLibraryError, err error) {
	miss = &MissingLibraryError{Name: name, NeededBy: loader.path}
	if strings.Contains(name, "/") {
		p := name
		if s.flavor == glibc {
			var ok bool
			if p, ok = s.expandDST(name, loader); !ok {
				return nil, false, miss, nil
			}
		}
		p = tidy(s.abs(p))
		if o := s.byName[p]; o != nil {
			return o, false, nil, nil
		}
		o, isNew, err := s.try(name, p, loader, role, reason, searchDir{}, miss)
		if err != nil || o != nil {
			return o, isNew, nil, err
		}
		return nil, false, miss, nil
	}
	if s.flavor == musl && muslReserved(name) && s.interp != nil {
		return s.interp, false, nil, nil
	}
	if o := s.byName[name]; o != nil {
		return o, false, nil, nil
	}
	for _, d := range s.searchPath(loader) {
		miss.Searched = append(miss.Searched, d.dir+" ("+d.from+")")
		o, isNew, err := s.try(name, strings.TrimSuffix(d.dir, "/")+"/"+name, loader, role, reason, d, miss)
		if err != nil || o != nil {
			return o, isNew, nil, err
		}
	}
	for _, loc := range s.included {
		if path.Base(loc.File) != name && path.Base(loc.Path) != name {
			continue
		}
		o, isNew, err := s.try(name, tidy(loc.Path), loader, role, reason, searchDir{}, miss)
		if err != nil || o != nil {
			if o != nil {
				s.warnf("%s (needed by %s) is not on the loader's search path; using %s added by an include pattern: the program finds it only if LD_LIBRARY_PATH names its directory",
					name, loader.path, tidy(loc.Path))
			}
			return o, isNew, nil, err
		}
	}
	return nil, false, miss, nil
}

// try loads the library at p if it is there and loadable. A candidate of
// another class or machine is skipped and the search goes on, as
// glibc's open_verify does.
func (s *session) try(name, p string, loader *object, role Role, reason string, d searchDir, miss *MissingLibraryError) (*object, bool, error) {
	loc, err := s.r.root.locate(p)
	if err != nil {
		if absent(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if !loc.Info.Mode().IsRegular() {
		return nil, false, nil
	}
	if o := s.byFile[loc.File]; o != nil {
		// The same file under another name: the loader reuses it.
		s.nameObject(o, name)
		s.b.addLocated(loc, "", loader.path)
		return o, false, nil
	}
	info, err := s.r.elfInfo(loc.File, loc.Info.Size())
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			miss.Rejected = append(miss.Rejected, fmt.Sprintf("%s: %v", p, fe.Err))
			return nil, false, nil
		}
		return nil, false, err
	}
	if err := info.loadableWith(s.ref); err != nil {
		miss.Rejected = append(miss.Rejected, fmt.Sprintf("%s: %v", p, err))
		return nil, false, nil
	}
	if d.soname && info.Soname != "" && info.Soname != name {
		return nil, false, nil
	}
	o := &object{path: p, file: loc.File, info: info, loader: loader, role: role, reason: reason}
	s.b.addLocated(loc, reason, loader.path)
	names := []string{name}
	if s.flavor == glibc {
		names = append(names, info.Soname)
	}
	s.register(o, names...)
	return o, true, nil
}

// searchPath is where the loader looks for a library needed by loader.
func (s *session) searchPath(loader *object) []searchDir {
	if s.flavor == musl {
		return s.muslSearchPath(loader)
	}
	var dirs []searchDir
	// glibc: the DT_RPATH of the object and of the objects that loaded
	// it up to the program, unless the object has DT_RUNPATH (an object
	// with DT_RUNPATH has no DT_RPATH for this purpose either).
	if !loader.info.HasRunPath {
		seen := map[*object]bool{}
		for l := loader; l != nil; l = l.loader {
			seen[l] = true
			dirs = append(dirs, s.rpathDirs(l, false)...)
		}
		if !seen[s.program] {
			dirs = append(dirs, s.rpathDirs(s.program, false)...)
		}
	}
	if v, ok := s.getenv("LD_LIBRARY_PATH"); ok {
		for _, el := range splitEnvPath(v, true) {
			if dir, ok := s.expandDST(el, s.program); ok {
				dirs = append(dirs, searchDir{dir: s.abs(dir), from: "LD_LIBRARY_PATH"})
			}
		}
	}
	if loader.info.HasRunPath {
		dirs = append(dirs, s.rpathDirs(loader, true)...)
	}
	if loader.info.Flags1&uint64(elf.DF_1_NODEFLIB) != 0 {
		return dirs
	}
	for _, d := range s.cacheDirs {
		dirs = append(dirs, searchDir{dir: d, from: "ld.so.cache", soname: true})
	}
	for _, d := range s.defaultDirs {
		dirs = append(dirs, searchDir{dir: d, from: "default"})
	}
	return dirs
}

// rpathDirs is one object's DT_RPATH (or DT_RUNPATH) as directories.
func (s *session) rpathDirs(o *object, runpath bool) []searchDir {
	raw, from := o.info.RPath, "RPATH of "+o.path
	if runpath {
		raw, from = o.info.RunPath, "RUNPATH of "+o.path
	} else if !o.info.HasRPath || o.info.HasRunPath {
		return nil
	}
	var dirs []searchDir
	for _, el := range strings.Split(raw, ":") {
		dir, ok := s.expandDST(el, o)
		if !ok {
			continue
		}
		dirs = append(dirs, searchDir{dir: s.abs(dir), from: from})
	}
	return dirs
}

// muslSearchPath: LD_LIBRARY_PATH, then the run path of the object and of
// each object that loaded it (musl treats DT_RPATH and DT_RUNPATH alike,
// DT_RUNPATH winning), then the system path.
func (s *session) muslSearchPath(loader *object) []searchDir {
	var dirs []searchDir
	if v, ok := s.getenv("LD_LIBRARY_PATH"); ok {
		for _, el := range splitEnvPath(v, false) {
			dirs = append(dirs, searchDir{dir: s.abs(el), from: "LD_LIBRARY_PATH"})
		}
	}
	for l := loader; l != nil; l = l.loader {
		raw, from := l.info.RPath, "RPATH of "+l.path
		if l.info.HasRunPath {
			raw, from = l.info.RunPath, "RUNPATH of "+l.path
		} else if !l.info.HasRPath {
			continue
		}
		origin := s.origin(l)
		for _, el := range strings.Split(raw, ":") {
			el = strings.ReplaceAll(strings.ReplaceAll(el, "${ORIGIN}", origin), "$ORIGIN", origin)
			dirs = append(dirs, searchDir{dir: s.abs(el), from: from})
		}
	}
	for _, d := range s.muslDirs {
		dirs = append(dirs, searchDir{dir: s.abs(d), from: s.muslDirsFrom})
	}
	return dirs
}

// muslReserved reports names musl's loader answers with itself: its libc
// holds libc, libm, libpthread, librt, libdl, libutil and libxnet.
func muslReserved(name string) bool {
	rest, ok := strings.CutPrefix(name, "lib")
	if !ok {
		return false
	}
	for _, r := range []string{"c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet."} {
		if strings.HasPrefix(rest, r) {
			return true
		}
	}
	return false
}

// origin is what $ORIGIN means for o: the program's directory as the
// kernel reports it (/proc/self/exe, without links), a library's
// directory as the loader opened it.
func (s *session) origin(o *object) string {
	if o == s.program {
		return path.Dir(o.file)
	}
	return rawDir(o.path)
}

// rawDir is p without its last element, not cleaned: glibc keeps a
// library's directory as the search produced it.
func rawDir(p string) string {
	i := strings.LastIndex(p, "/")
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// expandDST expands glibc's dynamic string tokens ($ORIGIN, $LIB,
// $PLATFORM, also in braces). ok is false when a known token has no value
// here: glibc then drops the element. An empty element is the working
// directory.
func (s *session) expandDST(el string, o *object) (string, bool) {
	if el == "" {
		return s.cwd, true
	}
	if !strings.Contains(el, "$") {
		return el, true
	}
	var b strings.Builder
	for i := 0; i < len(el); i++ {
		if el[i] != '$' {
			b.WriteByte(el[i])
			continue
		}
		name, length := dstName(el[i+1:])
		var val string
		switch name {
		case "ORIGIN":
			val = s.origin(o)
		case "LIB":
			val = s.libDST
		case "PLATFORM":
			val = s.platform
		default:
			b.WriteByte('$')
			continue
		}
		if val == "" {
			return "", false
		}
		b.WriteString(val)
		i += length
	}
	return b.String(), true
}

// dstName reads a token name after '$': "{NAME}" or NAME ended by anything
// but a letter, digit or '_'. length is what it spans.
func dstName(s string) (name string, length int) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", 0
		}
		return s[1:end], end + 1
	}
	n := 0
	for n < len(s) && (s[n] == '_' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= '0' && s[n] <= '9') {
		n++
	}
	return s[:n], n
}

// ldconfDirs is what ld.so.cache holds when the image has one: the
// directories of /etc/ld.so.conf and the files it includes, read once per
// Resolver. Without a cache file glibc's loader skips this step.
func (s *session) ldconfDirs() []string {
	s.r.mu.Lock()
	res := s.r.ldconf
	s.r.mu.Unlock()
	if res == nil {
		res = s.readLdconf()
		s.r.mu.Lock()
		s.r.ldconf = res
		s.r.mu.Unlock()
	}
	for _, loc := range res.files {
		s.b.addLocated(loc, reasonLdCache, "")
	}
	s.warnings = append(s.warnings, res.warnings...)
	return res.dirs
}

func (s *session) readLdconf() *ldconfResult {
	res := &ldconfResult{}
	warnf := func(format string, a ...any) { res.warnings = append(res.warnings, fmt.Sprintf(format, a...)) }
	cache, err := s.r.root.locate("/etc/ld.so.cache")
	if err != nil || !cache.Info.Mode().IsRegular() {
		return res
	}
	res.files = append(res.files, cache)
	seen := map[string]bool{}
	var parse func(file string, depth int)
	parse = func(file string, depth int) {
		if depth > 16 {
			warnf("%s: includes nested too deep", file)
			return
		}
		loc, data, err := s.r.root.readFile(file, 1<<20)
		if err != nil {
			if !absent(err) {
				warnf("reading %s: %v", file, err)
			}
			return
		}
		if seen[loc.File] {
			return
		}
		seen[loc.File] = true
		for _, line := range parseLdSoConf(data) {
			if line.Dir != "" {
				res.dirs = append(res.dirs, line.Dir)
				continue
			}
			for _, pat := range line.Include {
				if !strings.HasPrefix(pat, "/") {
					pat = path.Dir(file) + "/" + pat
				}
				matches, err := s.r.root.glob(pat)
				if err != nil {
					warnf("%s: include %s: %v", file, pat, err)
					continue
				}
				for _, m := range matches {
					parse(m, depth+1)
				}
			}
		}
	}
	parse("/etc/ld.so.conf", 0)
	return res
}
