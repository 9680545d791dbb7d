package resolve

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
)

// Config is the part of an image's configuration that decides what runs,
// with Docker's meaning: the program is Entrypoint followed by Cmd (or Cmd
// alone), looked up in the PATH of Env, started in WorkingDir.
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // NAME=VALUE
	WorkingDir string
	User       string // name or uid (maybe ":group"): whose HOME the environment gets
}

// DefaultPath is the PATH a container gets when its image sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxScriptDepth bounds #! scripts run by scripts (the kernel allows 4
// levels of interpreters).
const maxScriptDepth = 4

// Resolver works out plans over one image filesystem. It caches what it
// reads (the filesystem must not change meanwhile) and is safe for
// concurrent use.
type Resolver struct {
	root *rootFS

	mu     sync.Mutex
	elfs   map[string]elfResult // canonical path -> headers
	ldconf *ldconfResult
}

type elfResult struct {
	info *elfInfo
	err  error
}

type ldconfResult struct {
	dirs     []string
	files    []*located // what the loader reads at run time (the cache)
	warnings []string
}

// NewResolver returns a Resolver over fsys, the image's root directory.
// fsys may implement fs.ReadLinkFS (without it there are no symbolic
// links); files that implement io.ReaderAt are read at the offsets needed,
// others through io.Seeker, or whole.
func NewResolver(fsys fs.FS) *Resolver {
	return &Resolver{root: newRootFS(fsys), elfs: map[string]elfResult{}}
}

// Resolve works out the plan of the program the image config (changed by
// opts) runs in fsys. It reads headers only and never runs anything.
func Resolve(fsys fs.FS, cfg Config, opts ...Option) (*Plan, error) {
	return NewResolver(fsys).Resolve(cfg, opts...)
}

// Resolve works out the plan of the program cfg (changed by opts) runs.
func (r *Resolver) Resolve(cfg Config, opts ...Option) (*Plan, error) {
	return r.newSession(opts).run(cfg, "")
}

// Closure works out the plan of one ELF file at path p in the image as
// ldd sees it: the file itself (a program or a shared library, which need
// not be executable), its loader and its libraries, plus the extras opts
// ask for. WithEntry and WithArgs do not apply.
func (r *Resolver) Closure(p string, opts ...Option) (*Plan, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%s: not an absolute path in the image", p)
	}
	return r.newSession(opts).run(Config{}, p)
}

func (r *Resolver) newSession(opts []Option) *session {
	return &session{
		r:         r,
		o:         newOptions(opts),
		b:         newPlanBuilder(r.root),
		byName:    map[string]*object{},
		byFile:    map[string]*object{},
		aheadDone: map[string]bool{},
	}
}

// elfInfo reads (once) the headers of the canonical file p.
func (r *Resolver) elfInfo(p string, size int64) (*elfInfo, error) {
	r.mu.Lock()
	res, ok := r.elfs[p]
	r.mu.Unlock()
	if ok {
		return res.info, res.err
	}
	f, err := r.root.open(p, size)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r.readEndEarly(p, size)
	tr := &ioErrReaderAt{r: f}
	info, err := readELF(tr, f.size)
	if err != nil {
		if tr.err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, tr.err) // the filesystem failed: not cached
		}
		err = &FormatError{Path: p, Err: err}
	}
	r.mu.Lock()
	r.elfs[p] = elfResult{info, err}
	r.mu.Unlock()
	return info, err
}

// warmUp queues the small files a resolve reads on its way whatever the
// program (the user database, the loader's configuration, the name
// service switch, and with extras the other files of the C library's
// configuration that go in every plan), when the file system fetches files from far away
// (Prefetcher): they then travel together at the start rather than one
// round trip after another as they are read. Names the image does not
// have are ignored. The program (object, or argv[0] on PATH, unless a
// shell that may only evaluate a command line) goes with them: its header
// is the first thing read after the user database.
func (s *session) warmUp(object string, argv []string) {
	if s.r.root.prefetch == nil {
		return
	}
	names := []string{"/etc/passwd", "/etc/ld.so.conf"}
	program := object
	if program == "" && len(argv) > 0 && argv[0] != "" && !shells[path.Base(argv[0])] {
		program = argv[0]
	}
	if program != "" {
		if _, loc, err := s.lookPath(program); err == nil && loc.Info.Mode().IsRegular() {
			names = append(names, loc.File)
		}
	}
	if confs, err := fs.Glob(s.r.root.fsys, "etc/ld.so.conf.d/*.conf"); err == nil {
		for _, c := range confs {
			names = append(names, "/"+c)
		}
	}
	if s.o.extras {
		// The small files addExtras puts in the plan whatever the
		// program: they are then in when the disk is written.
		for _, f := range etcFiles {
			names = append(names, f.path)
		}
		for _, f := range glibcFiles {
			names = append(names, f.path)
		}
	}
	s.r.root.prefetchLater(names...)
}

// readEndEarly starts reading the last byte of the canonical file p when
// the file system fetches files from far away (Prefetcher), and returns at
// once. A shared library's dynamic section usually lies near its end:
// its bytes then travel with the header's rather than one round trip
// after them. The file's bytes are all needed anyway once it is in the
// plan; failures are the header read's to report.
func (r *Resolver) readEndEarly(p string, size int64) {
	if r.root.prefetch == nil || size <= 1 {
		return
	}
	go func() {
		f, err := r.root.open(p, size)
		if err != nil {
			return
		}
		defer f.Close()
		var b [1]byte
		f.ReadAt(b[:], size-1) //nolint:errcheck // only a head start
	}()
}

// imports reports whether the canonical file p imports one of names.
func (r *Resolver) imports(p string, size int64, info *elfInfo, names []string) (bool, error) {
	f, err := r.root.open(p, size)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return info.importsAny(io.NewSectionReader(f, 0, f.size), names)
}

// ioErrReaderAt remembers a failure of the underlying reader, to tell a
// broken filesystem from a malformed file.
type ioErrReaderAt struct {
	r   io.ReaderAt
	err error
}

func (t *ioErrReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := t.r.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) && t.err == nil {
		t.err = err
	}
	return n, err
}

// libcFlavor is which C library's loader rules apply.
type libcFlavor int

const (
	glibc libcFlavor = iota
	musl
)

func (f libcFlavor) String() string {
	if f == musl {
		return "musl"
	}
	return "glibc"
}

// object is an ELF object of the process being worked out.
type object struct {
	path   string // as the loader opens it
	file   string // canonical
	info   *elfInfo
	loader *object // the object whose dependency loaded it (nil: program)
	role   Role
	reason string
	needed []Dependency
}

// session is one Resolve call.
type session struct {
	r *Resolver
	o options
	b *planBuilder

	env     []string
	cwd     string
	program *object
	interp  *object
	ref     *elfInfo // the program's identity, which every library must share
	flavor  libcFlavor
	objects []*object
	byName  map[string]*object
	byFile  map[string]*object
	// aheadDone holds the files whose libraries readAhead has gone
	// through already.
	aheadDone map[string]bool
	nss       *nssConfig // nssServices' answer, once asked

	libDST, platform string
	defaultDirs      []string
	cacheDirs        []string // what ld.so.cache holds (glibc)
	muslDirs         []string
	muslDirsFrom     string

	included  []*located // files added with WithInclude
	generated []GeneratedFile
	missing   []*MissingLibraryError
	warnings  []string
}

func (s *session) warnf(format string, a ...any) {
	s.warnings = append(s.warnings, fmt.Sprintf(format, a...))
}

// run works out the plan of cfg's program, or of the ELF file at object.
func (s *session) run(cfg Config, object string) (*Plan, error) {
	env, err := mergeEnv(cfg.Env, s.o.env)
	if err != nil {
		return nil, err
	}
	s.env = env
	// Relative to the root, as the runtime takes it, and never above it:
	// "../../etc" is "/etc".
	s.cwd = path.Clean("/" + cfg.WorkingDir)
	entrypoint := cfg.Entrypoint
	if len(entrypoint) == 1 && entrypoint[0] == "" {
		// ENTRYPOINT [""] clears the entrypoint, as Docker reads it: the
		// Cmd is the whole command.
		entrypoint = nil
	}
	argv := append(append([]string(nil), entrypoint...), cfg.Cmd...)
	switch {
	case s.o.entrySet: // docker run --entrypoint: the image's Cmd goes too
		argv = append([]string{s.o.entry}, s.o.args...)
	case s.o.argsSet:
		argv = append(append([]string(nil), entrypoint...), s.o.args...)
	}
	s.warmUp(object, argv)
	if err := s.dockerEnv(cfg.User); err != nil {
		return nil, err
	}
	plan := &Plan{}
	if object != "" {
		p := tidy(object)
		loc, err := s.r.root.locate(p)
		if err != nil {
			return nil, &ProgramError{Path: p, Err: err}
		}
		if err := s.setProgram(plan, p, loc, []string{p}, reasonProgram); err != nil {
			return nil, err
		}
	} else {
		if len(argv) == 0 || argv[0] == "" {
			return nil, ErrNoEntrypoint
		}
		if err := s.findProgram(plan, argv); err != nil {
			return nil, err
		}
		if plan.Linkage == Library {
			return nil, &ProgramError{Path: plan.Program, Err: errors.New("is a shared library, not a program: it names libraries but no ELF interpreter to load them")}
		}
	}
	if err := s.includeFiles(); err != nil {
		return nil, err
	}
	if err := s.includeAdded(); err != nil {
		return nil, err
	}
	if err := s.loadClosure(plan); err != nil {
		return nil, err
	}
	if s.o.extras {
		if err := s.addRuntimes(plan); err != nil {
			return nil, err
		}
	}
	if err := s.includeObjects(); err != nil {
		return nil, err
	}
	if s.o.extras {
		if err := s.addExtras(); err != nil {
			return nil, err
		}
	}
	if err := s.addWorkingDir(); err != nil {
		return nil, err
	}
	if len(s.missing) > 0 && !s.o.allowMissing {
		return nil, missingLibraries(s.missing)
	}
	plan.Env = s.env
	plan.Generated = s.generated
	plan.WorkingDir = s.cwd
	plan.Missing = s.missing
	plan.Warnings = s.warnings
	for _, o := range s.objects {
		plan.Objects = append(plan.Objects, Object{
			Path: o.path, File: o.file, Role: o.role, Reason: o.reason, Soname: o.info.Soname, Needed: o.needed,
		})
	}
	entries, err := s.b.finish()
	if err != nil {
		return nil, err
	}
	labelAdded(entries, s.o.added)
	plan.Entries = entries
	return plan, nil
}

// mergeEnv sets NAME=VALUE overrides over base, keeping base's order.
func mergeEnv(base, overrides []string) ([]string, error) {
	out := append([]string(nil), base...)
	for _, kv := range overrides {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("environment variable %q: want NAME=VALUE", kv)
		}
		replaced := false
		for i, old := range out {
			if n, _, _ := strings.Cut(old, "="); n == name {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out, nil
}

func (s *session) getenv(name string) (string, bool) {
	val, found := "", false
	for _, kv := range s.env {
		if n, v, ok := strings.Cut(kv, "="); ok && n == name {
			val, found = v, true
		}
	}
	return val, found
}

// tidy cleans p for display unless cleaning would change what it names
// (a ".." after a symbolic link is taken physically).
func tidy(p string) string {
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return p
		}
	}
	return path.Clean(p)
}

// abs makes p absolute against the working directory, unchanged otherwise.
func (s *session) abs(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return strings.TrimSuffix(s.cwd, "/") + "/" + p
}

// lookPath finds a program as execvp does in the image: a name with a
// slash is a path (relative to the working directory), any other is
// searched in PATH for an executable regular file.
func (s *session) lookPath(name string) (string, *located, error) {
	if strings.Contains(name, "/") {
		p := tidy(s.abs(name))
		loc, err := s.r.root.locate(p)
		if err != nil {
			if absent(err) {
				return "", nil, &ProgramError{Path: p, Err: fmt.Errorf("not found in the image: %w", err)}
			}
			return "", nil, err
		}
		return p, loc, nil
	}
	pathVar, ok := s.getenv("PATH")
	if !ok {
		pathVar = DefaultPath
	}
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" {
			dir = s.cwd
		}
		cand := tidy(s.abs(strings.TrimSuffix(dir, "/") + "/" + name))
		loc, err := s.r.root.locate(cand)
		if err != nil {
			if absent(err) {
				continue
			}
			return "", nil, err
		}
		if isExecutable(loc.Info) {
			return cand, loc, nil
		}
	}
	return "", nil, &ProgramError{Path: name, Err: fmt.Errorf("no executable named %s in PATH %s", name, pathVar)}
}

// findProgram follows argv[0] through PATH and #! lines to the ELF
// executable the kernel would start, and sets up the program object.
func (s *session) findProgram(plan *Plan, argv []string) error {
	p, loc, err := s.lookPath(argv[0])
	if err != nil {
		return err
	}
	reason := reasonProgram
	for depth := 0; ; depth++ {
		if !loc.Info.Mode().IsRegular() {
			return &ProgramError{Path: p, Err: errors.New("not a regular file")}
		}
		if !isExecutable(loc.Info) {
			return &ProgramError{Path: p, Err: fmt.Errorf("not executable (mode %s)", formatMode(loc.Info.Mode()))}
		}
		head, err := s.r.root.readHead(loc.File, shebangMax)
		if err != nil {
			return err
		}
		if isELF(head) {
			// Docker's shell form (CMD node app.js) runs /bin/sh -c: the
			// command line is evaluated like a wrapper script.
			if shells[path.Base(loc.File)] && len(argv) >= 3 && argv[1] == "-c" && plan.Wrapper == nil {
				name := argv[0]
				if len(argv) > 3 {
					name = argv[3]
				}
				w, err := s.evalScript(p+" -c", []byte(argv[2]), append([]string{name}, argv[min(len(argv), 4):]...))
				switch {
				case err == nil:
					plan.Wrapper = w
					reason = fmt.Sprintf("%s (run by the shell command line %q, evaluated at build time)", reasonProgram, argv[2])
					argv = w.Exec
					if p, loc, err = s.lookPath(argv[0]); err != nil {
						return &WrapperError{Script: w.Script, Err: fmt.Errorf("runs %s: %w", argv[0], err)}
					}
					continue
				case !errors.Is(err, errNoExec):
					return err
				}
			}
			break
		}
		interp, arg, ok := parseShebang(head)
		if !ok {
			return &ProgramError{Path: p, Err: errors.New("neither an ELF executable nor a #! script")}
		}
		if depth == maxScriptDepth {
			return &ProgramError{Path: p, Err: fmt.Errorf("more than %d levels of #! interpreters", maxScriptDepth)}
		}
		if shells[path.Base(interp)] && plan.Wrapper == nil {
			w, err := s.evalWrapper(p, loc, argv)
			switch {
			case err == nil:
				plan.Wrapper = w
				reason = fmt.Sprintf("%s (exec'd by the entrypoint wrapper %s, evaluated at build time)", reasonProgram, p)
				argv = w.Exec
				if p, loc, err = s.lookPath(argv[0]); err != nil {
					return &WrapperError{Script: w.Script, Err: fmt.Errorf("execs %s: %w", argv[0], err)}
				}
				continue
			case !errors.Is(err, errNoExec):
				return err
			}
			s.warnf("%s ends without exec'ing a program: it is run by its shell %s, which cannot start other programs in a unikernel", p, interp)
		}
		s.b.addLocated(loc, reasonScript+" (run by "+interp+")", "")
		plan.Scripts = append(plan.Scripts, p)
		next := []string{interp}
		if arg != "" {
			next = append(next, arg)
		}
		next = append(append(next, p), argv[1:]...)
		if path.Base(interp) == "env" {
			// A unikernel cannot exec: run env's command directly.
			cmd, err := s.envCommand(next[1:])
			if err != nil {
				return &ProgramError{Path: p, Err: fmt.Errorf("#!%s: %w", interp, err)}
			}
			reason = fmt.Sprintf("%s (named by %s's #! line, run directly instead of through %s)", reasonProgram, p, interp)
			next = cmd
			p, loc, err = s.lookPath(cmd[0])
			if err != nil {
				return err
			}
		} else {
			script := p
			p = tidy(s.abs(interp))
			reason = fmt.Sprintf("%s (#! interpreter of %s)", reasonProgram, script)
			loc, err = s.r.root.locate(p)
			if err != nil {
				if absent(err) {
					msg := fmt.Errorf("its #! interpreter %s is not in the image", p)
					if strings.HasSuffix(interp, "\r") {
						msg = fmt.Errorf("its #! line ends in a carriage return (DOS line endings): interpreter %q", interp)
					}
					return &ProgramError{Path: script, Err: msg}
				}
				return err
			}
		}
		argv = next
	}
	return s.setProgram(plan, p, loc, argv, reason)
}

// setProgram makes the ELF file at p the program.
func (s *session) setProgram(plan *Plan, p string, loc *located, argv []string, reason string) error {
	if !loc.Info.Mode().IsRegular() {
		return &ProgramError{Path: p, Err: errors.New("not a regular file")}
	}
	info, err := s.r.elfInfo(loc.File, loc.Info.Size())
	if err != nil {
		return &ProgramError{Path: p, Err: err}
	}
	if s.o.machine != elf.EM_NONE && (info.Machine != s.o.machine ||
		(wantClass(s.o.machine) != elf.ELFCLASSNONE && info.Class != wantClass(s.o.machine))) {
		return &ArchError{Path: p, Class: info.Class, Machine: info.Machine, Want: s.o.machine}
	}
	if !linuxABI(info.OSABI) {
		return &ProgramError{Path: p, Err: fmt.Errorf("not a Linux program (OS ABI %v)", info.OSABI)}
	}
	if info.Type != elf.ET_EXEC && info.Type != elf.ET_DYN {
		return &ProgramError{Path: p, Err: fmt.Errorf("ELF type %v is not a program", info.Type)}
	}
	s.ref = info
	s.program = &object{path: p, file: loc.File, info: info, role: RoleProgram, reason: reason}
	s.b.addLocated(loc, reason, "")
	s.register(s.program, info.Soname)
	plan.Program = p
	plan.ProgramFile = loc.File
	plan.Args = argv
	plan.Machine, plan.Class = info.Machine, info.Class
	switch {
	case info.Interp != "":
		plan.Linkage = Dynamic
	case !info.Dynamic:
		plan.Linkage = Static
	case len(info.Needed) == 0 && info.Type == elf.ET_DYN:
		plan.Linkage = StaticPIE
	case len(info.Needed) == 0:
		plan.Linkage = Static
	default:
		plan.Linkage = Library
	}
	return nil
}

// envCommand returns the command env(1) runs given args, applying its
// NAME=VALUE assignments to the environment.
func (s *session) envCommand(args []string) ([]string, error) {
	for i := 0; i < len(args); {
		a := args[i]
		switch {
		case a == "--":
			i++
			return s.envRest(args[i:])
		case a == "-" || a == "-i" || a == "--ignore-environment":
			s.env = nil
			i++
		case a == "-S" || a == "--split-string":
			if i+1 == len(args) {
				return nil, errors.New("env -S without a string")
			}
			args = append(strings.Fields(args[i+1]), args[i+2:]...)
			i = 0
		case strings.HasPrefix(a, "-S"):
			args = append(strings.Fields(a[2:]), args[i+1:]...)
			i = 0
		case strings.HasPrefix(a, "--split-string="):
			args = append(strings.Fields(strings.TrimPrefix(a, "--split-string=")), args[i+1:]...)
			i = 0
		case a == "-u" || a == "--unset":
			if i+1 < len(args) {
				s.unsetenv(args[i+1])
			}
			i += 2
		case strings.HasPrefix(a, "-u"):
			s.unsetenv(a[2:])
			i++
		case strings.HasPrefix(a, "--unset="):
			s.unsetenv(strings.TrimPrefix(a, "--unset="))
			i++
		case strings.HasPrefix(a, "-"):
			return nil, fmt.Errorf("env option %s is not supported", a)
		case strings.Contains(a, "="):
			env, err := mergeEnv(s.env, []string{a})
			if err != nil {
				return nil, err
			}
			s.env = env
			i++
		default:
			return s.envRest(args[i:])
		}
	}
	return nil, errors.New("env names no command")
}

func (s *session) envRest(args []string) ([]string, error) {
	if len(args) == 0 || args[0] == "" {
		return nil, errors.New("env names no command")
	}
	return args, nil
}

func (s *session) unsetenv(name string) {
	out := s.env[:0:0]
	for _, kv := range s.env {
		if n, _, _ := strings.Cut(kv, "="); n != name {
			out = append(out, kv)
		}
	}
	s.env = out
}

// register adds an object to the process under the names a later
// DT_NEEDED can match.
func (s *session) register(o *object, names ...string) {
	s.objects = append(s.objects, o)
	s.byFile[o.file] = o
	s.nameObject(o, o.path)
	for _, n := range names {
		s.nameObject(o, n)
	}
}

func (s *session) nameObject(o *object, name string) {
	if name == "" {
		return
	}
	if _, ok := s.byName[name]; !ok {
		s.byName[name] = o
	}
}

// Reasons entries carry.
const (
	reasonProgram       = "program"
	reasonScript        = "script"
	reasonInterp        = "ELF interpreter (PT_INTERP)"
	reasonLibrary       = "shared library (DT_NEEDED)"
	reasonPreload       = "preloaded library"
	reasonDir           = "directory"
	reasonLink          = "symbolic link"
	reasonWorkDir       = "working directory"
	reasonGenerated     = "generated"
	reasonIncludePrefix = "include pattern "
	reasonLdCache       = "glibc's library cache: how ld.so finds libraries in ld.so.conf directories"
)

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
