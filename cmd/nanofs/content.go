package main

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

	"github.com/nanofs/nanofs/lazy/hostfs"
	"github.com/nanofs/nanofs/resolve"
)

// addSource is one local file or directory a build adds, for the summary.
type addSource struct {
	Src   string `json:"src"`   // as named: the --add SRC, the argument, the config entry
	Path  string `json:"path"`  // where it is in the image
	From  string `json:"from"`  // "--add", "argument", "config"
	Files int    `json:"files"` // regular files and links
	Bytes int64  `json:"bytes"`
}

// parseAdd reads an --add value, SRC[:DST], against the working directory
// cwd. A value that names an existing local path is SRC alone, colons and
// all; otherwise DST follows the last colon and must be absolute (a DST
// ending in "/" is a directory to put SRC into). Without DST, SRC goes to
// the same path relative to the image root as it has relative to cwd.
func parseAdd(spec, cwd string) (a hostfs.Add, src string, err error) {
	src, dst := spec, ""
	if _, err := os.Lstat(hostPath(cwd, spec)); err != nil {
		if i := strings.LastIndexByte(spec, ':'); i >= 0 {
			src, dst = spec[:i], spec[i+1:]
			if !path.IsAbs(dst) {
				return a, src, fmt.Errorf("--add %s: DST %q must be an absolute path in the image", spec, dst)
			}
		}
	}
	if src == "" {
		return a, src, fmt.Errorf("--add %s: no SRC", spec)
	}
	host := hostPath(cwd, src)
	if _, err := os.Stat(host); err != nil {
		return a, src, fmt.Errorf("--add %s: %w", spec, err)
	}
	if dst == "" {
		rel, err := filepath.Rel(cwd, host)
		if err != nil || !filepath.IsLocal(rel) {
			return a, src, fmt.Errorf("--add %s: %s is outside the working directory %s: say where it goes in the image with %s:/PATH", spec, host, cwd, src)
		}
		if rel == "." {
			return a, src, fmt.Errorf("--add %s: this is the whole working directory: say where it goes in the image with %s:/PATH", spec, src)
		}
		dst = "/" + filepath.ToSlash(rel)
	} else if strings.HasSuffix(dst, "/") {
		dst += filepath.Base(host)
	}
	for _, el := range strings.Split(dst, "/") {
		if el == ".." {
			return a, src, fmt.Errorf("--add %s: DST may not hold \"..\"", spec)
		}
	}
	return hostfs.Add{Src: host, Dst: path.Clean(dst)}, src, nil
}

func addError(err error) error {
	var ce *hostfs.CollisionError
	if errors.As(err, &ce) {
		return fmt.Errorf("adding local files: %w (--overwrite replaces it)", err)
	}
	return fmt.Errorf("adding local files: %w", err)
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
func autoAdd(g *globals, img fs.FS, args []string, workdir, cwd string) ([]hostfs.Add, []string) {
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
			g.debugf("not adding argument %s: it is the whole working directory (add it with --add %s:%s)", a, a, workdir)
			continue
		case !filepath.IsLocal(rel) || slices.Contains(strings.Split(filepath.ToSlash(a), "/"), ".."):
			g.debugf("not adding argument %s: it leads out of the working directory", a)
			continue
		}
		dst := path.Join(workdir, filepath.ToSlash(filepath.Clean(a)))
		if taken[dst] {
			continue // named twice
		}
		if _, err := fs.Stat(img, strings.TrimPrefix(dst, "/")); err == nil {
			g.debugf("not adding argument %s: the image already has %s (the program's working directory is %s)", a, dst, workdir)
			continue
		}
		kind := "file"
		if st.IsDir() {
			kind = "directory"
		}
		g.debugf("argument %s names a local %s: adding it as %s", a, kind, dst)
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
func configAdds(c *opsConfig, cwd, configDir string) ([]hostfs.Add, []string, error) {
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

// addContent lays the local files a build adds (--add, the config's
// files, arguments naming local files) over img. It returns nil when
// there are none.
func (o *buildOptions) addContent(g *globals, img fs.FS, workdir string) (*hostfs.FS, []addSource, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, nil, err
	}
	var adds, flagAdds []hostfs.Add
	var from, flagFrom []addSource
	flagDst := map[string]bool{}
	for _, spec := range o.adds {
		a, src, err := parseAdd(spec, cwd)
		if err != nil {
			return nil, nil, err
		}
		flagAdds = append(flagAdds, a)
		flagFrom = append(flagFrom, addSource{Src: src, From: "--add"})
		flagDst[a.Dst] = true
	}
	if o.opsCfg != nil {
		configDir := "."
		if abs, err := filepath.Abs(o.config); err == nil {
			configDir = filepath.Dir(abs)
		}
		cadds, names, err := configAdds(o.opsCfg, cwd, configDir)
		if err != nil {
			return nil, nil, fmt.Errorf("--config %s: %w", o.config, err)
		}
		for i, a := range cadds {
			if flagDst[a.Dst] {
				g.debugf("%s: %s goes to %s, where --add puts something else", o.config, names[i], a.Dst)
				continue
			}
			adds = append(adds, a)
			from = append(from, addSource{Src: names[i], From: "config"})
		}
	}
	adds, from = append(adds, flagAdds...), append(from, flagFrom...)
	var opts []hostfs.Option
	if o.overwrite {
		opts = append(opts, hostfs.WithOverwrite())
	}
	layer, err := hostfs.New(img, adds, opts...)
	if err != nil {
		return nil, nil, addError(err)
	}
	if !o.noAutoAdd {
		// Against the image with the explicit adds: an argument already
		// there is not added again.
		auto, names := autoAdd(g, layer, o.programArgs(), workdir, cwd)
		for i, a := range auto {
			if err := layer.Add(a); err != nil {
				return nil, nil, addError(err)
			}
			from = append(from, addSource{Src: names[i], From: "argument"})
		}
	}
	if len(from) == 0 {
		return nil, nil, nil
	}
	for _, s := range layer.Skipped() {
		g.logf("warning: left out %s: a Nanos filesystem holds no devices, FIFOs or sockets", s)
	}
	for i, p := range layer.Placed() {
		s := &from[i]
		s.Path, s.Files, s.Bytes = p.Path, p.Files, p.Bytes
		size := byteCount(p.Bytes)
		if st, err := os.Stat(p.Src); err == nil && st.IsDir() {
			size = fmt.Sprintf("%d %s, %s", p.Files, plural(p.Files, "file", "files"), size)
		}
		switch s.From {
		case "argument":
			g.logf("added %s (%s) from the working directory", s.Src, size)
		default:
			g.debugf("added %s as %s (%s)", s.Src, s.Path, size)
		}
		for _, r := range p.Replaced {
			g.logf("replaced %s of the image with %s (--overwrite)", r, s.Src)
		}
	}
	return layer, from, nil
}

// addedIncludes are the --include patterns that make resolve take every
// added entry: an added directory the image does not have whole, the
// entries of one merged into an image directory one by one (the image's
// own entries there are not added), each path escaped so that it matches
// only itself. Links that lead nowhere cannot be included that way and are
// returned apart.
func addedIncludes(layer *hostfs.FS) (patterns, dangling []string) {
	under := ""
	for _, e := range layer.Entries() {
		if under != "" && strings.HasPrefix(e.Path, under+"/") {
			continue
		}
		switch {
		case e.Mode.IsDir() && e.Merged:
			continue
		case e.Mode.IsDir():
			under = e.Path
		case e.Mode&fs.ModeSymlink != 0:
			if _, err := fs.Stat(layer, strings.TrimPrefix(e.Path, "/")); err != nil {
				dangling = append(dangling, e.Path)
				continue
			}
		}
		patterns = append(patterns, globEscape(e.Path))
	}
	return patterns, dangling
}

// globEscape quotes the path.Match metacharacters of p.
func globEscape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// labelAdded says in the plan where added entries come from.
func labelAdded(plan *resolve.Plan, layer *hostfs.FS) {
	src := map[string]string{}
	for _, e := range layer.Entries() {
		if e.Src != "" {
			src[e.Path] = e.Src
		}
	}
	for i := range plan.Entries {
		if s, ok := src[plan.Entries[i].Path]; ok {
			plan.Entries[i].Reason = "added from " + s
		}
	}
}

// addedIdentity digests the added layer (paths, kinds, modes, sizes, link
// targets and file contents), so that the disk's UUIDs change with what
// was added and stay the same for the same files.
func addedIdentity(layer *hostfs.FS) ([]byte, error) {
	h := sha256.New()
	for _, e := range layer.Entries() {
		fmt.Fprintf(h, "added\x00%s\x00%o\x00%d\x00%s\x00", e.Path, uint32(e.Mode), e.Size, e.Target)
		if !e.Mode.IsRegular() {
			continue
		}
		f, err := layer.Open(strings.TrimPrefix(e.Path, "/"))
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

// imageFiles are the plan's files read from the image: the added ones
// come from the host.
func (in *buildInput) imageFiles() []string {
	names := in.plan.ImageFiles()
	if in.added == nil {
		return names
	}
	added := map[string]bool{}
	for _, e := range in.added.Entries() {
		added[strings.TrimPrefix(e.Path, "/")] = true
	}
	return slices.DeleteFunc(names, func(n string) bool { return added[n] })
}
