package kernel

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Environment variables that name the kernel and bootloader files.
const (
	EnvKernel = "NANOFS_KERNEL" // path of img
	EnvBoot   = "NANOFS_BOOT"   // path of boot.img
)

// File names inside a release (and in the cache and ops layouts).
const (
	KernelFile = "kernel.img"
	BootFile   = "boot.img"
	klibsDir   = "klibs"
)

// Kernel names the Nanos kernel and BIOS bootloader a disk is built from
// and booted with.
type Kernel struct {
	Kernel  string // img: the kernel ELF, stored as /kernel in the boot FS
	Boot    string // boot.img: stage1 + stage2; "" when only a kernel was given
	KlibDir string // directory of loadable kernel libraries (release "klibs"), "" if none
	Version string // release version, "" when unknown (explicit paths)
	Source  string // where it was found: "flag", "env", "cache" or "ops"
}

// ErrNoKernel is returned (wrapped, with instructions) when no kernel can be
// found anywhere FindKernel looks.
var ErrNoKernel = errors.New("no Nanos kernel found")

// KernelOption configures FindKernel and Fetch.
type KernelOption func(*kernelConfig)

type kernelConfig struct {
	kernel, boot string
	version      string
	arch         string
	cacheDir     string
	opsHome      string
	getenv       func(string) string
	// fetch only
	releaseURL string
	sha256     string
	force      bool
	client     httpDoer
	progress   func(done, total int64)
}

// WithKernelFiles gives the kernel and bootloader paths explicitly (a
// CLI's options); they take precedence over everything else.
// Either may be empty.
func WithKernelFiles(kernel, boot string) KernelOption {
	return func(c *kernelConfig) { c.kernel, c.boot = kernel, boot }
}

// WithVersion selects a Nanos release version ("0.1.52"); without it the
// newest one found is used (FindKernel) or the latest release (Fetch).
func WithVersion(v string) KernelOption {
	return func(c *kernelConfig) { c.version = v }
}

// WithArch selects the guest architecture, as a GOARCH ("amd64", "arm64");
// default (or ""): runtime.GOARCH.
func WithArch(goarch string) KernelOption {
	return func(c *kernelConfig) {
		if goarch != "" {
			c.arch = goarch
		}
	}
}

// WithCacheDir replaces the nanofs release cache directory (default
// os.UserCacheDir()/nanofs/nanos).
func WithCacheDir(dir string) KernelOption {
	return func(c *kernelConfig) { c.cacheDir = dir }
}

// WithOpsHome replaces the ops directory searched for installed releases
// (default $OPS_HOME/.ops when OPS_HOME is set, else ~/.ops).
func WithOpsHome(dir string) KernelOption {
	return func(c *kernelConfig) { c.opsHome = dir }
}

// WithGetenv replaces os.Getenv for NANOFS_KERNEL, NANOFS_BOOT, OPS_HOME and
// NANOFS_RELEASE_URL (for tests).
func WithGetenv(getenv func(string) string) KernelOption {
	return func(c *kernelConfig) { c.getenv = getenv }
}

func newKernelConfig(opts []KernelOption) (*kernelConfig, error) {
	c := &kernelConfig{getenv: os.Getenv, arch: runtime.GOARCH}
	for _, o := range opts {
		o(c)
	}
	if c.arch != "amd64" && c.arch != "arm64" {
		return nil, fmt.Errorf("architecture %q: Nanos releases exist for amd64 and arm64", c.arch)
	}
	if c.version != "" {
		if err := checkVersion(c.version); err != nil {
			return nil, err
		}
	}
	if c.cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		c.cacheDir = d
	}
	if c.opsHome == "" {
		c.opsHome = opsHome(c.getenv)
	}
	return c, nil
}

// DefaultOpsHome is where ops keeps its releases and packages, as ops
// decides it: $OPS_HOME/.ops when OPS_HOME is set, else ~/.ops.
func DefaultOpsHome() (string, error) {
	if h := opsHome(os.Getenv); h != "" {
		return h, nil
	}
	return "", errors.New("no home directory to find ~/.ops in: set OPS_HOME")
}

func opsHome(getenv func(string) string) string {
	if h := getenv("OPS_HOME"); h != "" {
		return filepath.Join(h, ".ops")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".ops")
	}
	return ""
}

// DefaultCacheDir is where Fetch stores releases:
// os.UserCacheDir()/nanofs/nanos, one directory per version.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locating the cache directory: %w", err)
	}
	return filepath.Join(d, "nanofs", "nanos"), nil
}

// checkVersion accepts release names ("0.1.52", "nightly") and refuses
// anything that could step out of a directory or a URL path segment.
func checkVersion(v string) error {
	if v == "" || v == "." || v == ".." || len(v) > 64 ||
		strings.ContainsFunc(v, func(r rune) bool {
			return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '.' || r == '-' || r == '_')
		}) {
		return fmt.Errorf("invalid Nanos version %q", v)
	}
	return nil
}

// FindKernel locates the kernel and bootloader. It looks, in order, at:
// the explicit paths of WithKernelFiles; NANOFS_KERNEL and NANOFS_BOOT; the
// nanofs cache (<cache>/<version>/img, boot.img, as Fetch writes
// it); an ops install (<ops home>/<version>/ as `ops` downloads releases,
// "-arm" appended for arm64, the version taken from <ops home>/latest.txt
// when none is asked). The explicit and environment levels may name one
// file each: the kernel comes from the first level naming one, boot.img
// from the first level naming one that is not a release of another version.
// Every file found is checked (kernel: an ELF for the architecture;
// boot.img: see ReadBootImage). Without any kernel it returns an error
// wrapping ErrNoKernel that says how to provide one.
func FindKernel(opts ...KernelOption) (Kernel, error) {
	c, err := newKernelConfig(opts)
	if err != nil {
		return Kernel{}, err
	}
	levels := []Kernel{
		{Kernel: c.kernel, Boot: c.boot, Source: "flag"},
		{Kernel: c.getenv(EnvKernel), Boot: c.getenv(EnvBoot), Source: "env"},
	}
	if k, ok := c.cached(); ok {
		levels = append(levels, k)
	}
	if k, ok := c.opsInstall(); ok {
		levels = append(levels, k)
	}
	var found Kernel
	for _, l := range levels {
		if l.Kernel != "" {
			found = l
			found.Boot = ""
			break
		}
	}
	for _, l := range levels {
		if l.Boot != "" && (l.Version == "" || found.Version == "" || l.Version == found.Version) {
			found.Boot = l.Boot
			break
		}
	}
	if found.Kernel == "" {
		return Kernel{}, &SupplyError{Err: ErrNoKernel, sep: ": run `nanofs kernel fetch` (needs internet access), or ", cacheDir: c.cacheDir}
	}
	if err := CheckELF(found.Kernel, c.arch); err != nil {
		return Kernel{}, fmt.Errorf("kernel from %s: %w", found.Source, err)
	}
	if found.Boot != "" {
		if _, err := ReadBootImage(found.Boot); err != nil {
			return Kernel{}, fmt.Errorf("bootloader from %s: %w", found.Source, err)
		}
	}
	return found, nil
}

// FilesAsOptions is where the instructions in this package's errors say
// that the caller can name the files itself (SupplyError.Flagged says it
// otherwise).
const FilesAsOptions = "(or give the two files as options)"

// SupplyError is an error (no kernel, a failed download) with the
// instructions for providing a kernel without downloading one.
type SupplyError struct {
	Err      error
	sep      string // between Err and the instructions
	cacheDir string
}

func (e *SupplyError) Error() string { return e.Flagged(FilesAsOptions) }

// Flagged is the message with files (FilesAsOptions) saying how the
// caller names the two files itself, e.g. with its flags.
func (e *SupplyError) Flagged(files string) string {
	return fmt.Sprintf("%v%sset %s=/path/to/kernel.img and %s=/path/to/boot.img %s, or copy an ops install's release directory (e.g. ~/.ops/<version>/ with kernel.img and boot.img) to %s",
		e.Err, e.sep, EnvKernel, EnvBoot, files, filepath.Join(e.cacheDir, "<version>"))
}

func (e *SupplyError) Unwrap() error { return e.Err }

// releaseDir returns the kernel found in dir if it holds img.
func releaseDir(dir, version, source string) (Kernel, bool) {
	k := Kernel{Version: version, Source: source}
	if fi, err := os.Stat(filepath.Join(dir, KernelFile)); err != nil || !fi.Mode().IsRegular() {
		return k, false
	}
	k.Kernel = filepath.Join(dir, KernelFile)
	if fi, err := os.Stat(filepath.Join(dir, BootFile)); err == nil && fi.Mode().IsRegular() {
		k.Boot = filepath.Join(dir, BootFile)
	}
	if fi, err := os.Stat(filepath.Join(dir, klibsDir)); err == nil && fi.IsDir() {
		k.KlibDir = filepath.Join(dir, klibsDir)
	}
	return k, true
}

// cached looks in the nanofs cache: the asked version, else the newest.
func (c *kernelConfig) cached() (Kernel, bool) {
	suffix := archSuffix(c.arch)
	if c.version != "" {
		return releaseDir(filepath.Join(c.cacheDir, c.version+suffix), c.version, "cache")
	}
	for _, v := range versionsIn(c.cacheDir, suffix) {
		if k, ok := releaseDir(filepath.Join(c.cacheDir, v+suffix), v, "cache"); ok {
			return k, true
		}
	}
	return Kernel{}, false
}

// opsInstall looks in the ops home the way ops itself resolves a release:
// <ops home>/<version>[-arm]/, the version from latest.txt by default.
func (c *kernelConfig) opsInstall() (Kernel, bool) {
	if c.opsHome == "" {
		return Kernel{}, false
	}
	suffix := archSuffix(c.arch)
	if c.version != "" {
		return releaseDir(filepath.Join(c.opsHome, c.version+suffix), c.version, "ops")
	}
	if b, err := os.ReadFile(filepath.Join(c.opsHome, "latest.txt")); err == nil {
		v := strings.TrimSpace(string(b))
		if checkVersion(v) == nil {
			if k, ok := releaseDir(filepath.Join(c.opsHome, v+suffix), v, "ops"); ok {
				return k, true
			}
		}
	}
	for _, v := range versionsIn(c.opsHome, suffix) {
		if k, ok := releaseDir(filepath.Join(c.opsHome, v+suffix), v, "ops"); ok {
			return k, true
		}
	}
	return Kernel{}, false
}

// archSuffix is the directory suffix ops gives non-x86 releases.
func archSuffix(goarch string) string {
	if goarch == "arm64" {
		return "-arm"
	}
	return ""
}

// versionsIn lists the numbered release directories in dir ("0.1.52",
// with suffix for arm), newest first.
func versionsIn(dir, suffix string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var vs []string
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !strings.HasSuffix(name, suffix) {
			continue
		}
		v := strings.TrimSuffix(name, suffix)
		if suffix == "" && strings.HasSuffix(v, "-arm") {
			continue
		}
		if _, ok := parseVersion(v); ok {
			vs = append(vs, v)
		}
	}
	slices.SortFunc(vs, func(a, b string) int {
		pa, _ := parseVersion(a)
		pb, _ := parseVersion(b)
		return -slices.Compare(pa, pb)
	})
	return vs
}

// parseVersion splits a dotted numeric version ("0.1.52").
func parseVersion(v string) ([]int, bool) {
	parts := strings.Split(v, ".")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, false
		}
		out[i] = n
	}
	return out, len(out) > 0
}

// CheckELF checks that path is an executable ELF for goarch: a
// mismatched or corrupt kernel would only fail inside the VM, silently.
func CheckELF(path, goarch string) error {
	f, err := elf.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return err
		}
		return fmt.Errorf("%s is not an ELF kernel image: %w", path, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
	if f.Class != elf.ELFCLASS64 || f.Machine != want {
		return fmt.Errorf("%s is a %v %v ELF, not an %s kernel", path, f.Class, f.Machine, goarch)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s is an ELF of type %v, not an executable kernel", path, f.Type)
	}
	return nil
}
