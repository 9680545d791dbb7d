package resolve

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// Language runtimes load files that no ELF header names: Python its
// standard library and extension modules, Node the packages a script
// requires. Like the NSS and CA rules, each rule below finds them from the
// image (never by running the interpreter), leaves out what is never
// loaded (test suites, bytecode of other versions, documentation), and the
// plan reports the bytes each rule added.

// RuntimeUse is what one runtime rule added to a plan.
type RuntimeUse struct {
	Rule   string   `json:"rule"`   // "python", "node"
	Reason string   `json:"reason"` // why, e.g. "Python 3.11 standard library"
	Dirs   []string `json:"dirs"`   // the trees added
	Files  int      `json:"files"`
	Bytes  int64    `json:"bytes"`
}

// runtimeRule finds the trees a runtime loads for the session's program.
type runtimeRule struct {
	name string
	find func(s *session, plan *Plan) ([]runtimeTree, error)
}

// runtimeTree is one directory a runtime reads, with what to leave out.
type runtimeTree struct {
	dir    string
	reason string
	skip   func(rel string, d fs.DirEntry) bool // rel: the path under dir
}

// reasonRuntimePrefix starts the reason of the entries runtime rules add.
const reasonRuntimePrefix = "runtime: "

var runtimeRules = []runtimeRule{
	{name: "python", find: pythonTrees},
	{name: "node", find: nodeTrees},
	{name: "perl", find: compiledInTrees("perl", "Perl @INC directory")},
	{name: "ruby", find: compiledInTrees("ruby", "Ruby load path")},
	{name: "php", find: compiledInTrees("php", "PHP configuration, extension or include directory")},
	{name: "java", find: javaTrees},
}

// addRuntimes applies the runtime rules; the shared objects they add get
// their libraries with the included ones.
func (s *session) addRuntimes(plan *Plan) error {
	for _, rule := range runtimeRules {
		trees, err := rule.find(s, plan)
		if err != nil {
			return fmt.Errorf("%s runtime: %w", rule.name, err)
		}
		for _, t := range trees {
			use := RuntimeUse{Rule: rule.name, Reason: t.reason, Dirs: []string{t.dir}}
			if err := s.addRuntimeTree(t, &use); err != nil {
				return fmt.Errorf("%s runtime: %w", rule.name, err)
			}
			if use.Files > 0 {
				plan.Runtimes = append(plan.Runtimes, use)
			}
		}
	}
	return nil
}

// addRuntimeTree adds the files under t.dir (canonical) that t.skip lets
// through, counting what is new to the plan.
func (s *session) addRuntimeTree(t runtimeTree, use *RuntimeUse) error {
	return s.addTree(t.dir, reasonRuntimePrefix+t.reason, t.skip, func(loc *located) {
		use.Files++
		use.Bytes += loc.Info.Size()
	})
}

// Python.

var pythonName = regexp.MustCompile(`^python(\d+)\.(\d+)$`)

// pythonNeverLoaded are standard library directories a program does not
// import: test suites, the IDE, Tk demos, the pip bootstrapper, and the
// static library and Makefile of config-X.Y-*.
var pythonNeverLoaded = map[string]bool{
	"test": true, "tests": true, "idle_test": true, "idlelib": true, "turtledemo": true,
	"tkinter": true, "ensurepip": true, "lib2to3": true, "pydoc_data": true,
}

// pythonTrees: when the program is CPython (its file is pythonX.Y), the
// standard library with lib-dynload of that version under the program's
// prefix, the site and dist packages, and the directory of the script it
// runs.
func pythonTrees(s *session, plan *Plan) ([]runtimeTree, error) {
	if s.program == nil {
		return nil, nil
	}
	m := pythonName.FindStringSubmatch(path.Base(s.program.file))
	if m == nil {
		return nil, nil
	}
	version := m[1] + "." + m[2]
	tag := ".cpython-" + m[1] + m[2]
	skip := func(rel string, d fs.DirEntry) bool {
		base := path.Base(rel)
		switch {
		case d.IsDir():
			return pythonNeverLoaded[base] || strings.HasPrefix(base, "config-") || base == "site-packages" || base == "dist-packages"
		case strings.HasSuffix(base, ".pyc"):
			return !strings.Contains(base, tag) // bytecode of another version
		case strings.HasSuffix(base, ".exe"), strings.HasSuffix(base, ".txt") && !strings.Contains(rel, "/"):
			return true // Windows launchers, LICENSE.txt
		}
		return false
	}
	sitePkgs := func(rel string, d fs.DirEntry) bool {
		base := path.Base(rel)
		switch {
		case d.IsDir():
			return base == "tests" || base == "test"
		case strings.HasSuffix(base, ".pyc"):
			return !strings.Contains(base, tag)
		}
		return false
	}
	prefix := path.Dir(path.Dir(s.program.file)) // /usr/bin/python3.11 -> /usr
	var trees []runtimeTree
	add := func(dir, reason string, skip func(string, fs.DirEntry) bool) error {
		loc, err := s.r.root.locate(dir)
		if err != nil {
			if absent(err) {
				return nil
			}
			return err
		}
		if !loc.Info.IsDir() {
			return nil
		}
		for _, t := range trees {
			if t.dir == loc.File {
				return nil
			}
		}
		s.b.addLocated(loc, reasonDir, "")
		trees = append(trees, runtimeTree{dir: loc.File, reason: reason, skip: skip})
		return nil
	}
	stdlib := path.Join(prefix, "lib", "python"+version)
	if err := add(stdlib, "Python "+version+" standard library and lib-dynload", skip); err != nil {
		return nil, err
	}
	for _, dir := range []string{
		path.Join(stdlib, "site-packages"),
		path.Join(prefix, "lib", "python3", "dist-packages"), // Debian's
		path.Join(stdlib, "dist-packages"),
		"/usr/local/lib/python" + version + "/site-packages",
		"/usr/local/lib/python" + version + "/dist-packages",
	} {
		if err := add(dir, "Python "+version+" site packages", sitePkgs); err != nil {
			return nil, err
		}
	}
	if script := pythonScript(plan.Args); script != "" {
		if loc, err := s.r.root.locate(s.abs(script)); err == nil && loc.Info.Mode().IsRegular() {
			dir := path.Dir(loc.File)
			if dir != "/" && !s.inPath(dir) && dir != stdlib {
				if err := add(dir, "the directory of the script "+script+" (sys.path[0])", sitePkgs); err != nil {
					return nil, err
				}
			}
		}
	}
	return trees, nil
}

// pythonScript is the script file of a python command line, "" with -c or
// -m or none.
func pythonScript(args []string) string {
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-c" || a == "-m" || a == "-":
			return ""
		case a == "-W" || a == "-X" || a == "--check-hash-based-pycs":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return a
		}
	}
	return ""
}

// inPath reports whether dir is one of the PATH directories.
func (s *session) inPath(dir string) bool {
	pathVar, _ := s.getenv("PATH")
	for _, d := range strings.Split(pathVar, ":") {
		if path.Clean(d) == dir {
			return true
		}
	}
	return false
}

// Node.

// nodeTrees: a script inside node_modules/PKG (an npm-installed command)
// brings PKG and, through its package.json dependencies, the packages it
// requires from the same node_modules.
func nodeTrees(s *session, plan *Plan) ([]runtimeTree, error) {
	if s.program == nil || !strings.HasPrefix(path.Base(s.program.file), "node") {
		return nil, nil
	}
	var scripts []string
	scripts = append(scripts, plan.Scripts...)
	for _, a := range plan.Args[1:] {
		if !strings.HasPrefix(a, "-") {
			scripts = append(scripts, a)
			break
		}
	}
	var trees []runtimeTree
	seen := map[string]bool{}
	for _, sc := range scripts {
		loc, err := s.r.root.locate(s.abs(sc))
		if err != nil || !loc.Info.Mode().IsRegular() {
			continue
		}
		modules, pkg, ok := nodePackageOf(loc.File)
		if !ok {
			continue
		}
		queue := []string{pkg}
		for len(queue) > 0 {
			name := queue[0]
			queue = queue[1:]
			dir := path.Join(modules, name)
			if seen[dir] {
				continue
			}
			seen[dir] = true
			dl, err := s.r.root.locate(dir)
			if err != nil || !dl.Info.IsDir() {
				continue // an optional or missing dependency: node says so at run time
			}
			s.b.addLocated(dl, reasonDir, "")
			trees = append(trees, runtimeTree{dir: dl.File, reason: "Node package " + name + " (required by " + sc + ")", skip: nodeSkip})
			deps, err := s.nodeDependencies(path.Join(dl.File, "package.json"))
			if err != nil {
				s.warnf("%s: %v", dir, err)
			}
			queue = append(queue, deps...)
		}
	}
	return trees, nil
}

// nodePackageOf splits .../node_modules/PKG/... (PKG maybe @scope/name).
func nodePackageOf(file string) (modules, pkg string, ok bool) {
	i := strings.LastIndex(file, "/node_modules/")
	if i < 0 {
		return "", "", false
	}
	modules = file[:i+len("/node_modules")]
	rest := strings.Split(file[i+len("/node_modules/"):], "/")
	if len(rest) < 2 {
		return "", "", false
	}
	pkg = rest[0]
	if strings.HasPrefix(pkg, "@") {
		if len(rest) < 3 {
			return "", "", false
		}
		pkg += "/" + rest[1]
	}
	return modules, pkg, true
}

func nodeSkip(rel string, d fs.DirEntry) bool {
	base := path.Base(rel)
	if d.IsDir() {
		return base == "test" || base == "tests" || base == "__tests__" || base == "docs" || base == "example" || base == "examples" || base == ".github"
	}
	return strings.HasSuffix(base, ".md") || strings.HasSuffix(base, ".markdown")
}

// nodeDependencies reads the dependency names of a package.json.
func (s *session) nodeDependencies(p string) ([]string, error) {
	_, data, err := s.r.root.readFile(p, 4<<20)
	if err != nil {
		if absent(err) {
			return nil, nil
		}
		return nil, err
	}
	var pj struct {
		Dependencies         map[string]string `json:"dependencies"`
		OptionalDependencies map[string]string `json:"optionalDependencies"`
	}
	if err := json.Unmarshal(data, &pj); err != nil {
		return nil, fmt.Errorf("package.json: %w", err)
	}
	var names []string
	names = append(names, sortedKeys(pj.Dependencies)...)
	names = append(names, sortedKeys(pj.OptionalDependencies)...)
	return names, nil
}

// Perl, Ruby and PHP.

// compiledInTrees: Perl's @INC, Ruby's load path and PHP's php.ini
// directory, extension directory and include path are compiled into the
// interpreter (or its libperl, libruby, libphp) as strings: the rule takes
// every absolute path in their read-only data that names a directory of
// the image with the runtime's name in it.
func compiledInTrees(name, reason string) func(s *session, plan *Plan) ([]runtimeTree, error) {
	return func(s *session, plan *Plan) ([]runtimeTree, error) {
		if s.program == nil {
			return nil, nil
		}
		var objs []*object
		if strings.HasPrefix(path.Base(s.program.file), name) {
			objs = append(objs, s.program)
		}
		for _, o := range s.objects {
			if o != s.program && strings.HasPrefix(o.info.Soname, "lib"+name) {
				objs = append(objs, o)
			}
		}
		if len(objs) == 0 {
			return nil, nil
		}
		var trees []runtimeTree
		seen := map[string]bool{}
		for _, o := range objs {
			paths, err := s.rodataPaths(o, "/")
			if err != nil {
				s.warnf("%s: looking for the %s directories it names: %v", o.path, name, err)
				continue
			}
			for _, p := range paths {
				if !strings.Contains(p, name) || s.inPath(p) {
					continue
				}
				loc, err := s.r.root.locate(p)
				if err != nil || !loc.Info.IsDir() || loc.File == "/" || seen[loc.File] {
					continue
				}
				seen[loc.File] = true
				s.b.addLocated(loc, reasonDir, "")
				trees = append(trees, runtimeTree{dir: loc.File, reason: reason + " " + p + " (named by " + path.Base(o.path) + ")", skip: scriptRuntimeSkip})
			}
		}
		return trees, nil
	}
}

// scriptRuntimeSkip leaves out test suites and documentation.
func scriptRuntimeSkip(rel string, d fs.DirEntry) bool {
	base := path.Base(rel)
	if d.IsDir() {
		switch base {
		case "t", "test", "tests", "pod", "doc", "docs", "man", "rdoc", "ri":
			return true
		}
		return false
	}
	return strings.HasSuffix(base, ".pod") || strings.HasSuffix(base, ".md")
}

// Java.

// javaTrees: when the program is a JDK's bin/java, its JAVA_HOME's runtime:
// lib (the modules image, the libraries libjvm and the launcher load, the
// security and time zone data) and conf, without sources and legal notices.
func javaTrees(s *session, plan *Plan) ([]runtimeTree, error) {
	if s.program == nil || path.Base(s.program.file) != "java" {
		return nil, nil
	}
	home := path.Dir(path.Dir(s.program.file))
	if _, err := s.r.root.locate(path.Join(home, "lib", "modules")); err != nil {
		return nil, nil // not a modular JDK: nothing known to add
	}
	skip := func(rel string, d fs.DirEntry) bool {
		base := path.Base(rel)
		if d.IsDir() {
			return base == "legal" || base == "man" || base == "demo" || base == "sample"
		}
		return base == "src.zip" || base == "ct.sym"
	}
	var trees []runtimeTree
	for _, sub := range []string{"lib", "conf"} {
		loc, err := s.r.root.locate(path.Join(home, sub))
		if err != nil || !loc.Info.IsDir() {
			continue
		}
		s.b.addLocated(loc, reasonDir, "")
		trees = append(trees, runtimeTree{dir: loc.File, reason: "Java runtime " + path.Join(home, sub) + " (JAVA_HOME " + home + ")", skip: skip})
	}
	return trees, nil
}
