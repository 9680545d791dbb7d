package opspkg

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/disk"
)

// An ops package is what `ops pkg load` boots: a directory named after the
// package holding package.manifest (JSON) and sysroot/, the files of the
// unikernel's root at their paths. ops keeps local packages under
// <ops home>/local_packages/<arch>/<name>; an archive that `ops pkg add`
// installs holds the directory's contents at its top.
const (
	packageManifestName = "package.manifest"
	packageSysroot      = "sysroot"
)

// PackageManifest is the package.manifest of an ops package: the subset of
// ops's configuration that a package carries. Args starts with the
// program's name, as ops passes it to the kernel.
type PackageManifest struct {
	Program             string            `json:"Program"`
	Args                []string          `json:"Args,omitempty"`
	Env                 map[string]string `json:"Env,omitempty"`
	Version             string            `json:"Version,omitempty"`
	Description         string            `json:"Description,omitempty"`
	ManifestPassthrough map[string]any    `json:"ManifestPassthrough,omitempty"`
}

// Package describes an ops package to write.
type Package struct {
	Name     string // the directory name, e.g. node_16.3.0
	Arch     string // GOARCH of its programs: amd64 or arm64
	Manifest PackageManifest
}

// PackageInfo says what was written.
type PackageInfo struct {
	Path  string // the archive, or the installed directory
	Files int    // regular files in sysroot
	Bytes int64  // their bytes
}

// packageNameRE is what ops accepts as a local package directory name:
// no path separators, and a "_" before the version.
var packageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*_[A-Za-z0-9._+-]+$`)

// CheckPackageName accepts what ops takes for a local package directory:
// NAME_VERSION, no path separators.
func CheckPackageName(name string) error {
	if !packageNameRE.MatchString(name) {
		return fmt.Errorf("package name %q: want NAME_VERSION (letters, digits, '.', '-', '+'; ops splits at the last '_')", name)
	}
	return nil
}

// NewPackage makes the package for a manifest (ManifestFromPlan, or one
// changed since): the program at its path inside sysroot (ops's absolute
// Program form, so that libraries found through $ORIGIN and files next to
// the program stay where the program expects them), its arguments and
// environment, and the working directory and Extra keys passed through to
// the kernel's manifest. name is NAME_VERSION.
func NewPackage(m disk.Manifest, name, arch string) (*Package, error) {
	if !path.IsAbs(m.Program) {
		return nil, fmt.Errorf("program %q: want an absolute path", m.Program)
	}
	if err := CheckPackageName(name); err != nil {
		return nil, err
	}
	if arch != "amd64" && arch != "arm64" {
		return nil, fmt.Errorf("architecture %q: ops packages exist for amd64 and arm64", arch)
	}
	pm := PackageManifest{
		Program: m.Program,
		Args:    m.Arguments,
		Env:     m.Environment,
		Version: name[strings.LastIndex(name, "_")+1:],
	}
	if len(pm.Args) == 0 {
		pm.Args = []string{pm.Program}
	}
	if m.Cwd != "" || len(m.Extra) > 0 {
		pm.ManifestPassthrough = map[string]any{}
		for k, v := range m.Extra {
			pm.ManifestPassthrough[k] = passthroughValue(v)
		}
		if m.Cwd != "" {
			pm.ManifestPassthrough["cwd"] = m.Cwd
		}
	}
	return &Package{Name: name, Arch: arch, Manifest: pm}, nil
}

// passthroughValue writes a manifest value as ops's configuration holds
// one: strings, lists and maps (its manifest language has no numbers, and
// a flag is "t").
func passthroughValue(v tfs.Value) any {
	switch v := v.(type) {
	case tfs.String:
		return string(v)
	case tfs.Buffer:
		return string(v)
	case tfs.Int:
		return strconv.FormatInt(int64(v), 10)
	case tfs.Uint:
		return strconv.FormatUint(uint64(v), 10)
	case tfs.Flag:
		return "t"
	case tfs.Vector:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = passthroughValue(e)
		}
		return out
	case tfs.Tuple:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = passthroughValue(e)
		}
		return out
	}
	return fmt.Sprint(v)
}

// packageSink receives a package's entries, parents first; names are
// slash-separated and relative to the package's directory.
type packageSink interface {
	dir(name string, mode fs.FileMode) error
	symlink(name, target string) error
	file(name string, mode fs.FileMode, size int64, r io.Reader) error
}

// WriteArchive writes the package as a gzip-compressed tar to out (through
// a temporary file renamed into place), the package directory's contents
// at the top as `ops pkg add` wants them, with an entry for every
// directory and no hard links (ops's extractor creates neither parents nor
// links). Files are streamed from fsys, the image the plan was made from.
// The same inputs give the same bytes.
func (p *Package) WriteArchive(ctx context.Context, out string, fsys fs.FS, plan *resolve.Plan) (*PackageInfo, error) {
	tmp, err := tfs.CreateOutput(out, "package archive")
	if err != nil {
		return nil, err
	}
	defer tmp.Abort()

	zw, err := gzip.NewWriterLevel(tmp, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	info, err := p.write(ctx, &tarSink{tw: tw}, fsys, plan)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	if err := tmp.Commit(); err != nil {
		return nil, err
	}
	info.Path = out
	return info, nil
}

// Install writes the package into opsHome/local_packages/<arch>/<name>,
// where `ops pkg load -l <name>` finds it. The package is assembled in a
// temporary directory beside its place and swapped in whole, so an
// existing package of that name is replaced only by a complete one.
func (p *Package) Install(ctx context.Context, opsHome string, fsys fs.FS, plan *resolve.Plan) (*PackageInfo, error) {
	parent := filepath.Join(opsHome, "local_packages", p.Arch)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+p.Name+".tmp-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	info, err := p.write(ctx, &dirSink{root: tmp}, fsys, plan)
	if err != nil {
		return nil, err
	}
	dest := filepath.Join(parent, p.Name)
	old := tmp + ".old"
	if err := os.Rename(dest, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Rename(old, dest) // put the previous package back
		return nil, err
	}
	if err := os.RemoveAll(old); err != nil {
		return nil, fmt.Errorf("removing the replaced package: %w", err)
	}
	info.Path = dest
	return info, nil
}

// prefetcher is an image that can fetch many files' bytes at once (a lazy
// image); a package is written one file after another, so fetching first
// lets the downloads overlap.
type prefetcher interface {
	Prefetch(ctx context.Context, names []string) error
}

func (p *Package) write(ctx context.Context, sink packageSink, fsys fs.FS, plan *resolve.Plan) (*PackageInfo, error) {
	manifest, err := json.MarshalIndent(p.Manifest, "", "  ")
	if err != nil {
		return nil, err
	}
	manifest = append(manifest, '\n')
	if err := sink.file(packageManifestName, 0o644, int64(len(manifest)), bytes.NewReader(manifest)); err != nil {
		return nil, err
	}
	if err := sink.dir(packageSysroot, 0o755); err != nil {
		return nil, err
	}
	if pf, ok := fsys.(prefetcher); ok {
		if err := pf.Prefetch(ctx, plan.ImageFiles()); err != nil {
			return nil, fmt.Errorf("fetching the plan's files: %w", err)
		}
	}
	ps := &planSink{sink: sink, plan: plan, fsys: fsys, info: &PackageInfo{}}
	if err := plan.Walk(ctx, ps); err != nil {
		return nil, err
	}
	return ps.info, nil
}

// planSink writes a plan's entries under sysroot.
type planSink struct {
	sink packageSink
	plan *resolve.Plan
	fsys fs.FS
	info *PackageInfo
}

func (s *planSink) Dir(e resolve.Entry) error { return s.sink.dir(packageSysroot+e.Path, e.Mode) }

func (s *planSink) Symlink(e resolve.Entry) error {
	if dir, ok := topLevelDirLink(s.plan, e); ok {
		return spreadDirLink(s.sink, s.plan, e, dir)
	}
	return s.sink.symlink(packageSysroot+e.Path, hostSafeTarget(e.Path, e.Target))
}

func (s *planSink) File(e resolve.Entry) error {
	s.info.Files++
	s.info.Bytes += e.Size
	return copyEntry(s.sink, packageSysroot+e.Path, s.fsys, e)
}

// topLevelDirLink reports whether e is a link at the top of the root to a
// directory of the plan (usrmerge's /lib -> usr/lib), and that directory.
// ops cannot load a package whose sysroot has one: it reads such a link as
// a file.
func topLevelDirLink(plan *resolve.Plan, e resolve.Entry) (string, bool) {
	if path.Dir(e.Path) != "/" {
		return "", false
	}
	target := e.Target
	if !path.IsAbs(target) {
		target = path.Join("/", target)
	}
	t, ok := plan.Lookup(path.Clean(target))
	return t.Path, ok && t.Kind == resolve.KindDir
}

// spreadDirLink writes a top-level link to a directory as a directory of
// links, one to each entry of the plan in the target directory, so that
// every path through the link still reaches the same file.
func spreadDirLink(sink packageSink, plan *resolve.Plan, link resolve.Entry, dir string) error {
	name := packageSysroot + link.Path
	if err := sink.dir(name, 0o755); err != nil {
		return err
	}
	for _, c := range plan.Entries {
		if c.Path == dir || path.Dir(c.Path) != dir {
			continue
		}
		base := path.Base(c.Path)
		if err := sink.symlink(name+"/"+base, hostSafeTarget(link.Path+"/"+base, c.Path)); err != nil {
			return err
		}
	}
	return nil
}

func copyEntry(sink packageSink, name string, fsys fs.FS, e resolve.Entry) error {
	rc, err := e.Open(fsys)
	if err != nil {
		return err
	}
	defer rc.Close()
	return sink.file(name, e.Mode, e.Size, rc)
}

// hostSafeTarget rewrites a link's target relative to the link's
// directory, resolved as the unikernel resolves it: inside the image root,
// where ".." stops at "/". ops reads sysroot on the host and drops links
// that do not resolve there; an absolute target, or a relative one with
// more ".." than the link is deep, would be looked up outside sysroot (and
// could pick up the host's own files). Plan paths are canonical, so the
// rewritten target names the same file inside the unikernel too.
func hostSafeTarget(link, target string) string {
	dir := path.Dir(link)
	resolved := path.Clean(target)
	if !path.IsAbs(resolved) {
		resolved = path.Join(dir, target) // Join cleans: ".." stops at the root
	}
	rel, err := filepath.Rel(dir, resolved)
	if err != nil {
		return "."
	}
	return filepath.ToSlash(rel)
}

// tarSink writes entries to a tar stream with fixed owners and times, so
// that the archive depends on the contents only.
type tarSink struct{ tw *tar.Writer }

var packageTime = time.Unix(0, 0).UTC()

func (s *tarSink) header(name string, typ byte, mode fs.FileMode) *tar.Header {
	return &tar.Header{
		Typeflag: typ, Name: name, Mode: int64(resolve.UnixMode(mode)), ModTime: packageTime,
		Uname: "root", Gname: "root", Format: tar.FormatPAX,
	}
}

func (s *tarSink) dir(name string, mode fs.FileMode) error {
	h := s.header(name, tar.TypeDir, mode)
	h.Name += "/"
	return s.tw.WriteHeader(h)
}

func (s *tarSink) symlink(name, target string) error {
	h := s.header(name, tar.TypeSymlink, 0o777)
	h.Linkname = target
	return s.tw.WriteHeader(h)
}

func (s *tarSink) file(name string, mode fs.FileMode, size int64, r io.Reader) error {
	h := s.header(name, tar.TypeReg, mode)
	h.Size = size
	if err := s.tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(s.tw, io.LimitReader(r, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%d bytes, the image said %d", n, size)
	}
	return nil
}

// dirSink writes entries into a directory on the host.
type dirSink struct{ root string }

func (s *dirSink) path(name string) string { return filepath.Join(s.root, filepath.FromSlash(name)) }

func (s *dirSink) dir(name string, mode fs.FileMode) error {
	p := s.path(name)
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	// Keep the directory writable for its owner, or the package could not
	// be replaced or removed later.
	return os.Chmod(p, mode.Perm()|0o700)
}

func (s *dirSink) symlink(name, target string) error { return os.Symlink(target, s.path(name)) }

func (s *dirSink) file(name string, mode fs.FileMode, size int64, r io.Reader) error {
	f, err := os.OpenFile(s.path(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes, the image said %d", n, size)
	}
	if err == nil {
		// No setuid or setgid bits on the host: they mean nothing to ops
		// and something to the host.
		err = f.Chmod(mode.Perm())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
