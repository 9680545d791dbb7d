package content

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm"
	"github.com/nanofs/nanofs/vm/content/hostfs"
	"github.com/nanofs/nanofs/vm/opsconfig"
)

// Source is one local file or directory a build adds, for the summary.
type Source struct {
	Src   string `json:"src"`   // as named: the add spec's SRC, the argument, the config entry
	Path  string `json:"path"`  // where it is in the image
	From  string `json:"from"`  // FromAdd, FromArgument or FromConfig
	Files int    `json:"files"` // regular files and links
	Bytes int64  `json:"bytes"`
}

// ParseAdd reads an add spec, SRC[:DST], against the working directory
// cwd. A value that names an existing local path is SRC alone, colons and
// all; otherwise DST follows the last colon and must be absolute (a DST
// ending in "/" is a directory to put SRC into). Without DST, SRC goes to
// the same path relative to the image root as it has relative to cwd.
func ParseAdd(spec, cwd string) (a hostfs.Add, src string, err error) {
	src, dst := spec, ""
	if _, err := os.Lstat(hostPath(cwd, spec)); err != nil {
		if i := strings.LastIndexByte(spec, ':'); i >= 0 {
			src, dst = spec[:i], spec[i+1:]
			if !path.IsAbs(dst) {
				return a, src, addErr(spec, fmt.Errorf("DST %q must be an absolute path in the image", dst))
			}
		}
	}
	if src == "" {
		return a, src, addErr(spec, errors.New("no SRC"))
	}
	host := hostPath(cwd, src)
	if _, err := os.Stat(host); err != nil {
		return a, src, addErr(spec, err)
	}
	if dst == "" {
		rel, err := filepath.Rel(cwd, host)
		if err != nil || !filepath.IsLocal(rel) {
			return a, src, addErr(spec, fmt.Errorf("%s is outside the working directory %s: say where it goes in the image with %s:/PATH", host, cwd, src))
		}
		if rel == "." {
			return a, src, addErr(spec, fmt.Errorf("this is the whole working directory: say where it goes in the image with %s:/PATH", src))
		}
		dst = "/" + filepath.ToSlash(rel)
	} else if strings.HasSuffix(dst, "/") {
		dst += filepath.Base(host)
	}
	for _, el := range strings.Split(dst, "/") {
		if el == ".." {
			return a, src, addErr(spec, errors.New("DST may not hold \"..\""))
		}
	}
	return hostfs.Add{Src: host, Dst: path.Clean(dst)}, src, nil
}

// addErr is the error of one add spec.
func addErr(spec string, err error) error {
	return &vm.OptionError{Option: vm.OptionAdd, Value: spec, Err: err}
}

func hostPath(cwd, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(cwd, p)
}

// autoAdd picks the arguments of the program that name a local file or
// directory by a relative path: each is added at the same path under the
// program's working directory, where the program will look for it. An
// option (starting with "-"), an absolute path, a path through "..", the
// working directory itself, and a path img (the image with the explicit
// adds) already has are left alone (why, at -v).
func autoAdd(debugf func(string, ...any), img fs.FS, args []string, workdir, cwd string) ([]hostfs.Add, []string) {
	taken := map[string]bool{}
	var adds []hostfs.Add
	var names []string
	for _, a := range args {
		if a == "" || strings.HasPrefix(a, "-") || filepath.IsAbs(a) {
			continue
		}
		host := filepath.Join(cwd, a)
		st, err := os.Stat(host)
		if err != nil {
			continue // not a local path: an ordinary argument
		}
		switch rel := filepath.Clean(a); {
		case rel == ".":
			debugf("not adding argument %s: it is the whole working directory (add it with %s %s:%s)", a, vm.OptionName(vm.OptionAdd), a, workdir)
			continue
		case !filepath.IsLocal(rel) || slices.Contains(strings.Split(filepath.ToSlash(a), "/"), ".."):
			debugf("not adding argument %s: it leads out of the working directory", a)
			continue
		}
		dst := path.Join(workdir, filepath.ToSlash(filepath.Clean(a)))
		if taken[dst] {
			continue // named twice
		}
		if _, err := fs.Stat(img, strings.TrimPrefix(dst, "/")); err == nil {
			debugf("not adding argument %s: the image already has %s (the program's working directory is %s)", a, dst, workdir)
			continue
		}
		kind := "file"
		if st.IsDir() {
			kind = "directory"
		}
		debugf("argument %s names a local %s: adding it as %s", a, kind, dst)
		taken[dst] = true
		adds = append(adds, hostfs.Add{Src: host, Dst: dst})
		names = append(names, a)
	}
	return adds, names
}

// configAdds are the Files, Dirs and MapDirs of an ops config. As ops
// does: Files and Dirs are relative to the working directory and land at
// the same path under the image root; a MapDirs key is HOSTDIR/PATTERN
// (relative to the config file's directory), and every entry under
// HOSTDIR whose name matches PATTERN is copied to the value directory at
// its path relative to HOSTDIR (a matching directory is made; its
// contents follow where their names match too).
func configAdds(c *opsconfig.Config, cwd, configDir string) ([]hostfs.Add, []string, error) {
	var adds []hostfs.Add
	var names []string
	for _, list := range [][]string{c.Files, c.Dirs} {
		for _, f := range list {
			host := hostPath(cwd, f)
			if _, err := os.Stat(host); err != nil {
				return nil, nil, err
			}
			dst := path.Clean("/" + filepath.ToSlash(f))
			if filepath.IsAbs(f) {
				dst = path.Clean(filepath.ToSlash(f))
			} else if !filepath.IsLocal(f) {
				return nil, nil, fmt.Errorf("%s leads out of the working directory: use MapDirs for files from elsewhere", f)
			}
			adds = append(adds, hostfs.Add{Src: host, Dst: dst})
			names = append(names, f)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(c.MapDirs)) {
		dest := c.MapDirs[key]
		dir, pattern := filepath.Split(hostPath(configDir, key))
		if _, err := filepath.Match(pattern, ""); err != nil {
			return nil, nil, fmt.Errorf("MapDirs %q: %w", key, err)
		}
		err := filepath.WalkDir(dir, func(host string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ok, _ := filepath.Match(pattern, d.Name()); !ok || host == filepath.Clean(dir) {
				return nil
			}
			rel, err := filepath.Rel(dir, host)
			if err != nil {
				return err
			}
			adds = append(adds, hostfs.Add{Src: host, Dst: path.Join(dest, filepath.ToSlash(rel)), Shallow: true})
			names = append(names, host)
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("MapDirs %q: %w", key, err)
		}
	}
	return adds, names, nil
}

// Provenance of an added file, as Source.From says it (a CLI may say
// FromAdd with its flag).
const (
	FromAdd      = vm.OptionAdd // an add spec, SRC[:DST] (WithAdd)
	FromArgument = "argument"
	FromConfig   = "config"
)

// Request says which local files a build adds.
type Request struct {
	Adds       []string             // SRC[:DST] specs (ParseAdd)
	Config     *opsconfig.Config    // its Files, Dirs and MapDirs (nil: none)
	ConfigFile string               // where Config was read from: MapDirs are relative to its directory
	Args       []string             // the program's arguments: those naming local files are added
	AutoAdd    bool                 // add the local files Args name
	Overwrite  bool                 // added files may replace the image's
	Workdir    string               // the program's working directory in the image (absolute)
	Cwd        string               // the host's working directory (default: os.Getwd)
	Logf       func(string, ...any) // what a user wants to know (nil: dropped)
	Debugf     func(string, ...any) // detail (nil: dropped)
}

// Layer is the image with the added local files over it.
type Layer struct {
	*hostfs.FS
	Sources []Source // where the added files came from, in the order given
}

// CollisionError says that an added file would replace what the image
// has at its path; Request.Overwrite allows it.
type CollisionError = hostfs.CollisionError

// Lay lays the local files r adds (the config's files, the add specs,
// arguments naming local files) over img. It returns nil when there are
// none.
func Lay(img fs.FS, r Request) (*Layer, error) {
	logf, debugf := r.Logf, r.Debugf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if debugf == nil {
		debugf = func(string, ...any) {}
	}
	cwd := r.Cwd
	if cwd == "" {
		var err error
		if cwd, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	var adds, flagAdds []hostfs.Add
	var from, flagFrom []Source
	flagDst := map[string]bool{}
	for _, spec := range r.Adds {
		a, src, err := ParseAdd(spec, cwd)
		if err != nil {
			return nil, err
		}
		flagAdds = append(flagAdds, a)
		flagFrom = append(flagFrom, Source{Src: src, From: FromAdd})
		flagDst[a.Dst] = true
	}
	if r.Config != nil {
		configDir := "."
		if abs, err := filepath.Abs(r.ConfigFile); err == nil {
			configDir = filepath.Dir(abs)
		}
		cadds, names, err := configAdds(r.Config, cwd, configDir)
		if err != nil {
			return nil, &vm.OptionError{Option: vm.OptionConfig, Value: r.ConfigFile, Err: err}
		}
		for i, a := range cadds {
			if flagDst[a.Dst] {
				debugf("%s: %s goes to %s, where %s puts something else", r.ConfigFile, names[i], a.Dst, vm.OptionName(vm.OptionAdd))
				continue
			}
			adds = append(adds, a)
			from = append(from, Source{Src: names[i], From: FromConfig})
		}
	}
	adds, from = append(adds, flagAdds...), append(from, flagFrom...)
	var opts []hostfs.Option
	if r.Overwrite {
		opts = append(opts, hostfs.WithOverwrite())
	}
	layer, err := hostfs.New(img, adds, opts...)
	if err != nil {
		return nil, addError(err)
	}
	if r.AutoAdd {
		// Against the image with the explicit adds: an argument already
		// there is not added again.
		auto, names := autoAdd(debugf, layer, r.Args, r.Workdir, cwd)
		for i, a := range auto {
			if err := layer.Add(a); err != nil {
				return nil, addError(err)
			}
			from = append(from, Source{Src: names[i], From: FromArgument})
		}
	}
	if len(from) == 0 {
		return nil, nil
	}
	for _, s := range layer.Skipped() {
		logf("warning: left out %s: a Nanos filesystem holds no devices, FIFOs or sockets", s)
	}
	for i, p := range layer.Placed() {
		s := &from[i]
		s.Path, s.Files, s.Bytes = p.Path, p.Files, p.Bytes
		size := vm.ByteCount(p.Bytes)
		if st, err := os.Stat(p.Src); err == nil && st.IsDir() {
			size = fmt.Sprintf("%d %s, %s", p.Files, plural(p.Files, "file", "files"), size)
		}
		switch s.From {
		case FromArgument:
			logf("added %s (%s) from the working directory", s.Src, size)
		default:
			debugf("added %s as %s (%s)", s.Src, s.Path, size)
		}
		for _, r := range p.Replaced {
			logf("replaced %s of the image with %s (%s)", r, s.Src, vm.OptionName(vm.OptionOverwrite))
		}
	}
	return &Layer{FS: layer, Sources: from}, nil
}

// addError wraps an error of laying the files over the image (a
// *CollisionError among them).
func addError(err error) error {
	return fmt.Errorf("adding local files: %w", err)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Added is the resolve input for the added entries: every entry, with
// where it comes from. resolve takes an added directory the image does
// not have whole, and the entries of one merged into an image directory
// one by one (the image's own entries there are not added).
func (l *Layer) Added() []resolve.Added {
	var out []resolve.Added
	for _, e := range l.Entries() {
		out = append(out, resolve.Added{Path: e.Path, Src: e.Src, Dir: e.Mode.IsDir(), Merged: e.Merged})
	}
	return out
}

// Identity digests the added layer (paths, kinds, modes, sizes, link
// targets and file contents), so that the disk's UUIDs change with what
// was added and stay the same for the same files.
func (l *Layer) Identity() ([]byte, error) {
	h := sha256.New()
	for _, e := range l.Entries() {
		fmt.Fprintf(h, "added\x00%s\x00%o\x00%d\x00%s\x00", e.Path, uint32(e.Mode), e.Size, e.Target)
		if !e.Mode.IsRegular() {
			continue
		}
		f, err := l.Open(strings.TrimPrefix(e.Path, "/"))
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Src, err)
		}
	}
	return h.Sum(nil), nil
}

// ImageFiles drops from names (a plan's files) the added ones: those come
// from the host, not the image.
func (l *Layer) ImageFiles(names []string) []string {
	if l == nil {
		return names
	}
	added := map[string]bool{}
	for _, e := range l.Entries() {
		added[strings.TrimPrefix(e.Path, "/")] = true
	}
	return slices.DeleteFunc(names, func(n string) bool { return added[n] })
}
