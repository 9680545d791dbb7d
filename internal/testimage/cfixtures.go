package testimage

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Fixtures is a directory laid out as an image root holding compiled C
// programs and the real host libraries they need (copied from the host:
// /lib64/ld-linux-x86-64.so.2, libc.so.6, ... with their real Debian paths
// /usr/lib/x86_64-linux-gnu/... and usrmerge links lib -> usr/lib, lib64 ->
// usr/lib64 as in Debian bookworm; musl's /lib/ld-musl-x86_64.so.1 for musl
// programs).
//
// Every host file is mirrored at its host path with the host's own chain of
// symbolic links on the way, so an absolute path the host's loader prints
// is a valid path in the image too. The tree is a read-only cache entry.
type Fixtures struct {
	Root string `json:"-"` // host directory that is the image root
	// Image-absolute paths ("/usr/local/bin/dyn") of the programs; "" when a compiler is missing.
	Dynamic       string // gcc, dynamically linked against glibc (links libm too)
	Static        string // gcc -static
	StaticPIE     string // gcc -static-pie
	RpathOrigin   string // -Wl,-rpath,'$ORIGIN/../lib' (DT_RPATH, --disable-new-dtags), needs PrivateLib
	RunpathOrigin string // same with --enable-new-dtags (DT_RUNPATH)
	PrivateLib    string // /opt/app/lib/libprivate.so, itself needing libc
	Dlopen        string // a program that dlopen()s Plugin by soname at run time (no DT_NEEDED on it)
	Plugin        string // the dlopened library; Dlopen's DT_RUNPATH $ORIGIN/../lib finds it at run time
	// Decoy is a 32-bit (ELFCLASS32) library with the same soname and file
	// name as PrivateLib, in /opt/app/lib32, which DecoyUser's DT_RPATH
	// ($ORIGIN/../lib32:$ORIGIN/../lib) searches before /opt/app/lib: a
	// resolver that ignores ELF class picks it wrongly.
	Decoy      string
	DecoyUser  string // the program whose search finds the decoy first
	Musl       string // musl-gcc dynamic program ("" without musl-gcc)
	MuslStatic string // musl-gcc -static
	ShebangSh  string // "#!/bin/sh" script (Root has /bin/sh -> dash copied from host + its libs)
	ShebangEnv string // "#!/usr/bin/env sh" script (Root has /usr/bin/env + its libs)
	// Expected maps each program path to the exact set of image-absolute
	// library paths a correct resolver must find (the ELF closure incl.
	// interpreter, sorted), computed independently by running the host's
	// loader in list mode (ldd; musl's loader with --list) on the compiled
	// binaries. A nil entry for static programs. For a script it is the
	// closure of the executables in Interpreters. Dlopen's entry does not
	// hold Plugin: nothing in its ELF headers names it.
	Expected map[string][]string
	// Interpreters maps each script to the executables that run it, in
	// order: its shebang interpreter, and for env the program env finds on
	// Debian's default PATH (/usr/local/sbin:...:/usr/bin:/sbin:/bin).
	Interpreters map[string][]string
}

// Programs lists the programs and scripts that exist, in a fixed order.
func (f *Fixtures) Programs() []string {
	var out []string
	for _, p := range []string{f.Dynamic, f.Static, f.StaticPIE, f.RpathOrigin, f.RunpathOrigin, f.Dlopen,
		f.DecoyUser, f.Musl, f.MuslStatic, f.ShebangSh, f.ShebangEnv} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// HostPath is the host path of an image-absolute path inside Root.
func (f *Fixtures) HostPath(imagePath string) string {
	return filepath.Join(f.Root, filepath.FromSlash(path.Clean("/"+imagePath)))
}

func (f *Fixtures) clone() *Fixtures {
	c := *f
	c.Expected = cloneLists(f.Expected)
	c.Interpreters = cloneLists(f.Interpreters)
	return &c
}

func cloneLists(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		if v == nil {
			out[k] = nil
		} else {
			out[k] = append([]string(nil), v...)
		}
	}
	return out
}

//go:embed csrc
var csrcFS embed.FS

// cfixturesVersion changes whenever the layout or the recipe below changes
// in a way the cache key would not see.
const cfixturesVersion = "cfixtures-v1"

// Image paths of the fixtures.
const (
	fxDynamic    = "/usr/local/bin/dyn"
	fxStatic     = "/usr/local/bin/static"
	fxStaticPIE  = "/usr/local/bin/static-pie"
	fxMusl       = "/usr/local/bin/musl"
	fxMuslStatic = "/usr/local/bin/musl-static"
	fxShebangSh  = "/usr/local/bin/hello.sh"
	fxShebangEnv = "/usr/local/bin/hello-env.sh"
	fxRpath      = "/opt/app/bin/rpath"
	fxRunpath    = "/opt/app/bin/runpath"
	fxDecoyUser  = "/opt/app/bin/decoy-user"
	fxDlopen     = "/opt/app/bin/dlopen"
	fxPrivateLib = "/opt/app/lib/libprivate.so"
	fxPlugin     = "/opt/app/lib/libplugin.so"
	fxDecoy      = "/opt/app/lib32/libprivate.so"
)

// Host programs the scripts run, mirrored into Root with their libraries.
const (
	hostSh  = "/bin/sh"
	hostEnv = "/usr/bin/env"
	// envSh is where env finds "sh" on Debian's default PATH
	// (/usr/bin comes before /bin).
	envSh = "/usr/bin/sh"
)

// compileStep is one compiler run. Arguments are given as the compiler
// sees them, with "@ROOT" standing for the image root, and run in the
// directory holding csrc's files, so only relative source names reach the
// outputs.
type compileStep struct {
	musl bool   // musl-gcc instead of gcc
	out  string // image path of the output
	args []string
}

var compileSteps = []compileStep{
	{out: fxPrivateLib, args: []string{"-O2", "-shared", "-fPIC", "-Wl,-soname,libprivate.so", "private.c"}},
	{out: fxPlugin, args: []string{"-O2", "-shared", "-fPIC", "-Wl,-soname,libplugin.so", "plugin.c"}},
	// -m32 without the 32-bit C library (gcc-multilib): it needs none.
	{out: fxDecoy, args: []string{"-m32", "-O2", "-shared", "-fPIC", "-nostdlib", "-Wl,-soname,libprivate.so", "decoy.c"}},
	{out: fxDynamic, args: []string{"-O2", "hello.c", "-Wl,--no-as-needed", "-lm"}},
	{out: fxStatic, args: []string{"-O2", "-static", "hello.c", "-lm"}},
	{out: fxStaticPIE, args: []string{"-O2", "-fPIE", "-static-pie", "hello.c", "-lm"}},
	{out: fxRpath, args: []string{"-O2", "rpath.c", "-L@ROOT/opt/app/lib", "-lprivate", "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"}},
	{out: fxRunpath, args: []string{"-O2", "rpath.c", "-L@ROOT/opt/app/lib", "-lprivate", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"}},
	{out: fxDecoyUser, args: []string{"-O2", "rpath.c", "-L@ROOT/opt/app/lib", "-lprivate", "-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib32:$ORIGIN/../lib"}},
	{out: fxDlopen, args: []string{"-O2", "dlopen.c", "-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"}},
	{musl: true, out: fxMusl, args: []string{"-O2", "hello.c", "-lm"}},
	{musl: true, out: fxMuslStatic, args: []string{"-O2", "-static", "hello.c", "-lm"}},
}

// scriptFiles maps csrc scripts to their image paths.
var scriptFiles = map[string]string{
	"hello.sh":     fxShebangSh,
	"hello-env.sh": fxShebangEnv,
}

// cfixtures holds CFixtures's once-per-process outcome.
var cfixtures struct {
	once sync.Once
	fx   *Fixtures
	skip string
	err  error
}

// CFixtures compiles the fixtures once (cached on disk under
// os.UserCacheDir()/nanofs-test/cfixtures/<key>, the key hashing the
// sources, the recipe, the compilers' versions and the host files copied
// in) and returns them. It skips, naming the package to install, when gcc
// is missing; the musl fields are "" when musl-gcc is missing. Callers must
// treat Root as read-only.
func CFixtures(t testing.TB) *Fixtures {
	t.Helper()
	cfixtures.once.Do(func() {
		cfixtures.fx, cfixtures.skip, cfixtures.err = loadCFixtures()
	})
	if cfixtures.skip != "" {
		t.Skip(cfixtures.skip)
	}
	if cfixtures.err != nil {
		t.Fatalf("testimage: C fixtures: %v", cfixtures.err)
	}
	return cfixtures.fx.clone()
}

// toolchain is what the fixtures are built with.
type toolchain struct {
	gcc, muslGCC string // paths; muslGCC "" when absent
	ldd          string
}

func loadCFixtures() (*Fixtures, string, error) {
	var tc toolchain
	var err error
	if tc.gcc, err = exec.LookPath("gcc"); err != nil {
		return nil, "testimage: gcc not found; install gcc and libc6-dev (apt-get install gcc libc6-dev)", nil
	}
	// gcc only recommends the C library's headers and archives; -static
	// needs libc.a, which gcc names by a bare "libc.a" when it has none.
	if libc, err := output(exec.Command(tc.gcc, "-print-file-name=libc.a")); err != nil || !filepath.IsAbs(strings.TrimSpace(libc)) {
		return nil, "testimage: gcc has no C library to link with; install libc6-dev (apt-get install libc6-dev)", nil
	}
	if tc.ldd, err = exec.LookPath("ldd"); err != nil {
		return nil, "testimage: ldd not found; install libc-bin", nil
	}
	tc.muslGCC, _ = exec.LookPath("musl-gcc")
	key, err := cfixturesKey(tc)
	if err != nil {
		return nil, "", err
	}
	base, err := cacheBase("cfixtures")
	if err != nil {
		return nil, "", err
	}
	entry, err := cachedDir(base, key, func(dir string) error { return buildCFixtures(tc, dir) })
	if err != nil {
		return nil, "", err
	}
	data, err := os.ReadFile(filepath.Join(entry, "fixtures.json"))
	if err != nil {
		return nil, "", err
	}
	fx := new(Fixtures)
	if err := json.Unmarshal(data, fx); err != nil {
		return nil, "", fmt.Errorf("%s: %w", entry, err)
	}
	fx.Root = filepath.Join(entry, "root")
	return fx, "", nil
}

// cfixturesKey hashes everything the fixtures tree is made of.
func cfixturesKey(tc toolchain) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", cfixturesVersion)
	for _, s := range compileSteps {
		fmt.Fprintf(h, "step %v %q %q\n", s.musl, s.out, s.args)
	}
	err := fs.WalkDir(csrcFS, "csrc", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := csrcFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(h, "src %q %x\n", p, sum)
		return nil
	})
	if err != nil {
		return "", err
	}
	version, err := output(exec.Command(tc.gcc, "--version"))
	if err != nil {
		return "", fmt.Errorf("gcc --version: %w", err)
	}
	machine, _ := output(exec.Command(tc.gcc, "-dumpmachine"))
	fmt.Fprintf(h, "gcc %q %q %q\n", tc.gcc, firstLine(version), strings.TrimSpace(machine))
	// The host files that get copied in: the loaders and libraries of the
	// scripts' interpreters, libm, and musl's loader (its libc).
	hostFiles := []string{hostSh, hostEnv}
	for _, prog := range []string{hostSh, hostEnv} {
		deps, err := loaderList(tc, prog)
		if err != nil {
			return "", err
		}
		hostFiles = append(hostFiles, deps...)
	}
	if libm, err := output(exec.Command(tc.gcc, "-print-file-name=libm.so.6")); err == nil {
		hostFiles = append(hostFiles, strings.TrimSpace(libm))
	}
	if tc.muslGCC != "" {
		script, err := os.ReadFile(tc.muslGCC)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "musl-gcc %q %x\n", tc.muslGCC, sha256.Sum256(script))
		hostFiles = append(hostFiles, muslLoader)
	}
	for _, f := range hostFiles {
		sum, err := fileSum(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "host %q %s\n", f, sum)
	}
	return "fixtures-" + hex.EncodeToString(h.Sum(nil))[:24], nil
}

// muslLoader is musl's dynamic loader, which is also its libc.
const muslLoader = "/lib/ld-musl-x86_64.so.1"

func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// buildCFixtures compiles into dir/root, copies the host files the
// programs need, and records the result in dir/fixtures.json.
func buildCFixtures(tc toolchain, dir string) error {
	// The loader prints $ORIGIN-relative paths under the directory as it
	// resolves it; without symbolic links in it the prefix comes off cleanly.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	root := filepath.Join(dir, "root")
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	if err := writeSources(src); err != nil {
		return err
	}
	// The usrmerge links first, as the host has them (lib -> usr/lib, ...).
	for _, top := range []string{"/bin", "/sbin", "/lib", "/lib64"} {
		if _, err := os.Lstat(top); err == nil {
			if err := mirrorHostPath(root, top); err != nil {
				return err
			}
		}
	}
	fx := &Fixtures{Expected: map[string][]string{}, Interpreters: map[string][]string{}}
	fields := map[string]*string{
		fxDynamic: &fx.Dynamic, fxStatic: &fx.Static, fxStaticPIE: &fx.StaticPIE,
		fxRpath: &fx.RpathOrigin, fxRunpath: &fx.RunpathOrigin, fxPrivateLib: &fx.PrivateLib,
		fxDlopen: &fx.Dlopen, fxPlugin: &fx.Plugin, fxDecoy: &fx.Decoy, fxDecoyUser: &fx.DecoyUser,
		fxMusl: &fx.Musl, fxMuslStatic: &fx.MuslStatic,
	}
	for _, s := range compileSteps {
		compiler := tc.gcc
		if s.musl {
			if tc.muslGCC == "" {
				continue
			}
			compiler = tc.muslGCC
		}
		out := filepath.Join(root, filepath.FromSlash(s.out))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		args := []string{"-o", out}
		for _, a := range s.args {
			args = append(args, strings.ReplaceAll(a, "@ROOT", root))
		}
		cmd := exec.Command(compiler, args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %w\n%s", filepath.Base(compiler), strings.Join(args, " "), err, out)
		}
		*fields[s.out] = s.out
	}
	for name, image := range scriptFiles {
		body, err := csrcFS.ReadFile("csrc/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(image)), body, 0o755); err != nil {
			return err
		}
	}
	fx.ShebangSh, fx.ShebangEnv = fxShebangSh, fxShebangEnv
	fx.Interpreters[fxShebangSh] = []string{hostSh}
	fx.Interpreters[fxShebangEnv] = []string{hostEnv, envSh}

	// The oracle: the host's loader lists what each program loads.
	for _, prog := range []string{fx.Dynamic, fx.RpathOrigin, fx.RunpathOrigin, fx.Dlopen, fx.DecoyUser, fx.Musl} {
		if prog == "" {
			continue
		}
		deps, err := loaderList(tc, filepath.Join(root, filepath.FromSlash(prog)))
		if err != nil {
			return err
		}
		if fx.Expected[prog], err = imageDeps(root, deps); err != nil {
			return fmt.Errorf("%s: %w", prog, err)
		}
	}
	for _, prog := range []string{fx.Static, fx.StaticPIE, fx.MuslStatic} {
		if prog != "" {
			fx.Expected[prog] = nil
		}
	}
	for script, interps := range fx.Interpreters {
		var all []string
		for _, interp := range interps {
			if err := mirrorHostPath(root, interp); err != nil {
				return err
			}
			deps, err := loaderList(tc, interp)
			if err != nil {
				return err
			}
			all = append(all, deps...)
		}
		if fx.Expected[script], err = imageDeps(root, all); err != nil {
			return fmt.Errorf("%s: %w", script, err)
		}
	}
	data, err := json.MarshalIndent(fx, "", "\t")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "fixtures.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.RemoveAll(src)
}

func writeSources(dst string) error {
	return fs.WalkDir(csrcFS, "csrc", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, strings.TrimPrefix(p, "csrc"))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := csrcFS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// imageDeps turns a loader's list into sorted image paths: paths inside
// root lose the root prefix, host paths are mirrored into root.
func imageDeps(root string, deps []string) ([]string, error) {
	set := map[string]bool{}
	for _, d := range deps {
		if rel, err := filepath.Rel(root, d); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			set[path.Clean("/"+filepath.ToSlash(rel))] = true
			continue
		}
		if err := mirrorHostPath(root, d); err != nil {
			return nil, err
		}
		set[d] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// loaderList runs the loader of prog in list mode (glibc's ldd, or musl's
// loader with --list) and returns the absolute paths it loaded, cleaned,
// in its order. A statically linked prog lists nothing.
func loaderList(tc toolchain, prog string) ([]string, error) {
	interp, err := elfInterp(prog)
	if err != nil {
		return nil, err
	}
	if interp == "" {
		return nil, nil
	}
	var cmd *exec.Cmd
	if strings.HasPrefix(path.Base(interp), "ld-musl") {
		cmd = exec.Command(interp, "--list", prog)
	} else {
		cmd = exec.Command(tc.ldd, prog)
	}
	cmd.Env = []string{"LC_ALL=C", "PATH=" + os.Getenv("PATH")}
	out, err := output(cmd)
	if err != nil {
		return nil, fmt.Errorf("listing libraries of %s: %w", prog, err)
	}
	return parseLoaderList(out)
}

// parseLoaderList reads ldd-style output: "name => /path (0x...)",
// "/path (0x...)", "name (0x...)" for the vDSO. A missing library is an
// error; paths are returned cleaned ($ORIGIN expands to "bin/../lib").
func parseLoaderList(out string) ([]string, error) {
	var paths []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasSuffix(line, ":") {
			continue
		}
		if strings.Contains(line, "statically linked") || strings.Contains(line, "not a dynamic executable") {
			return nil, nil
		}
		name, target, arrow := strings.Cut(line, " => ")
		if !arrow {
			target = name
		}
		if strings.HasPrefix(target, "not found") {
			return nil, fmt.Errorf("loader cannot find %s", name)
		}
		if i := strings.LastIndex(target, " (0x"); i >= 0 {
			target = target[:i]
		}
		target = strings.TrimSpace(target)
		if target == "" {
			if arrow { // "libx.so =>  (0x...)": glibc's way of saying nothing
				continue
			}
			return nil, fmt.Errorf("unexpected loader line %q", line)
		}
		if !path.IsAbs(target) {
			if arrow {
				return nil, fmt.Errorf("unexpected loader line %q", line)
			}
			continue // the vDSO: no file
		}
		paths = append(paths, path.Clean(target))
	}
	return paths, nil
}

// elfInterp returns prog's PT_INTERP, "" when it has none.
func elfInterp(prog string) (string, error) {
	f, err := elf.Open(prog)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		data, err := io.ReadAll(p.Open())
		if err != nil {
			return "", fmt.Errorf("%s: PT_INTERP: %w", prog, err)
		}
		return string(bytes.TrimRight(data, "\x00")), nil
	}
	return "", nil
}

// mirrorHostPath copies the host's hostPath into root at the same path,
// with every symbolic link met on the way recreated as it is on the host
// (so /lib64/ld-linux-x86-64.so.2 brings lib64 -> usr/lib64, the absolute
// link in /usr/lib64, and the loader itself). Directories are created with
// the host's permissions; existing entries are kept.
func mirrorHostPath(root, hostPath string) error {
	return mirrorHost(root, hostPath, 0)
}

func mirrorHost(root, hostPath string, depth int) error {
	if depth > 40 {
		return fmt.Errorf("%s: too many levels of symbolic links", hostPath)
	}
	if !path.IsAbs(hostPath) {
		return fmt.Errorf("%s: not an absolute path", hostPath)
	}
	parts := strings.Split(strings.Trim(path.Clean(hostPath), "/"), "/")
	cur := "/"
	for i, el := range parts {
		if el == "" {
			continue
		}
		cur = path.Join(cur, el)
		info, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		dst := filepath.Join(root, filepath.FromSlash(cur))
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(cur)
			if err != nil {
				return err
			}
			if err := ensureSymlink(dst, target); err != nil {
				return err
			}
			next := target
			if !path.IsAbs(target) {
				next = path.Join(path.Dir(cur), target)
			}
			return mirrorHost(root, path.Join(append([]string{next}, parts[i+1:]...)...), depth+1)
		case info.IsDir():
			if err := os.Mkdir(dst, info.Mode().Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case info.Mode().IsRegular() && i == len(parts)-1:
			if _, err := os.Lstat(dst); err == nil {
				return nil
			}
			return copyFile(dst, cur, info.Mode().Perm())
		default:
			return fmt.Errorf("%s: cannot mirror %v", cur, info.Mode().Type())
		}
	}
	return nil
}

func ensureSymlink(dst, target string) error {
	if have, err := os.Readlink(dst); err == nil {
		if have != target {
			return fmt.Errorf("%s: is a link to %s, want %s", dst, have, target)
		}
		return nil
	}
	return os.Symlink(target, dst)
}

func copyFile(dst, src string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm) // past the umask
}

// output runs cmd and returns its stdout; a failure carries stderr.
func output(cmd *exec.Cmd) (string, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
