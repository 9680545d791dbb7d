package build

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nanofs/nanofs/fusefs"
	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm"
	"github.com/nanofs/nanofs/vm/artifact"
	"github.com/nanofs/nanofs/vm/content"
	"github.com/nanofs/nanofs/vm/disk"
	"github.com/nanofs/nanofs/vm/kernel"
	"github.com/nanofs/nanofs/vm/opsconfig"
	"github.com/nanofs/nanofs/vm/opspkg"
)

// Result is what a build made and what it cost.
type Result struct {
	Source   lazy.Source
	Image    string // the image's canonical name (a directory: its path)
	Output   string // the disk written ("" for a package)
	Plan     *resolve.Plan
	Manifest disk.Manifest
	Files    int // regular files in the plan
	Disk     *disk.DiskInfo
	Kernel   string // the img the disk boots ("" without bootloader)
	Package  *PackageResult
	Added    []content.Source // local files and directories copied in
	Config   *opsconfig.Config
	Fetched  lazy.Stats // what reading the image cost
	TOCBytes int64      // of Fetched: eStargz footers and TOCs
	MinFetch int64      // the fewest blob bytes the plan's image files cost (lazy.Image.MinTransfer)
	Elapsed  time.Duration
	// Published is what the build did with the registry (WithPush,
	// WithReuse); nil otherwise. A reused disk's Result has no Plan.
	Published *Published
}

// PackageResult is the ops package a build made.
type PackageResult struct {
	Name      string
	Arch      string
	Manifest  opspkg.PackageManifest
	Archive   string // the .tar.gz written ("" for none)
	Installed string // the package directory installed ("" for none)
	Files     int
	Bytes     int64
}

// NoBootError: a kernel was found but no bootloader next to it.
type NoBootError struct{ Kernel kernel.Kernel }

func (e *NoBootError) Error() string {
	return fmt.Sprintf("found the kernel %s (from %s) but no boot.img: name one or set %s", e.Kernel.Kernel, e.Kernel.Source, kernel.EnvBoot)
}

// ErrDiskImage: the source is a Nanos disk image, which is booted, not built.
var ErrDiskImage = errors.New("is a Nanos disk image, not a container image: boot it as it is")

// ErrNoConfig: a directory has no image config, so the program must be named.
var ErrNoConfig = errors.New("a directory has no image config: name the program to run")

// Build builds source into a disk image or, WithPackage, an ops package.
// An empty source is the image mounted where the working directory is
// (MountedRoot).
func Build(ctx context.Context, source string, opts ...Option) (*Result, error) {
	start := time.Now()
	o := newOptions(opts)
	var size int64
	var pub *publish
	src, res, err := o.prepare(ctx, source, func() error {
		if err := o.setTarget(); err != nil {
			return err
		}
		if o.size == "" || o.pkg != nil {
			return nil
		}
		var err error
		if size, err = tfs.ParseSize(o.size); err == nil && size == 0 {
			err = fmt.Errorf("%q is not a size like 512M or 2G", o.size)
		}
		if err != nil {
			return &vm.OptionError{Option: vm.OptionSize, Err: err}
		}
		return nil
	}, func() (*Result, error) {
		if !o.wantsRegistry() {
			return nil, nil
		}
		var err error
		if pub, err = o.prepublish(ctx, source); err != nil || pub == nil || !o.reuse || o.pkg != nil {
			return nil, err
		}
		return o.reused(ctx, source, pub)
	})
	if err == nil && src == nil { // reused
		o.progress(Progress{Phase: PhaseDone, Image: source})
		if o.push != "" {
			if err := o.pushArtifact(ctx, source, pub, res, artifact.File{Path: res.Output, MediaType: artifact.DiskMediaType}); err != nil {
				return nil, err
			}
		}
		res.Elapsed = time.Since(start)
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	defer src.close()
	if pub != nil {
		res.Published = &Published{Inputs: pub.inputs, Source: pub.src.Ref}
	}
	if o.pkg != nil {
		var pushed func() error
		if o.push != "" && pub != nil {
			var cleanup func()
			if pushed, cleanup, err = o.pushedPackage(ctx, source, pub, res); err != nil {
				return nil, err
			}
			defer cleanup()
		}
		err = o.writePackage(ctx, src, res)
		if err == nil && pushed != nil {
			err = pushed()
		}
	} else {
		err = o.writeDisk(ctx, source, src, size, res)
	}
	o.progress(Progress{Phase: PhaseDone, Image: source})
	if err != nil {
		return nil, err
	}
	o.measure(src, res)
	if o.push != "" && pub == nil {
		return nil, fmt.Errorf("%s: could not find the source's manifest to push an artifact for", source)
	}
	if pub != nil && o.push != "" && o.pkg == nil {
		if err := o.pushArtifact(ctx, source, pub, res, artifact.File{Path: res.Output, MediaType: artifact.DiskMediaType}); err != nil {
			return nil, err
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// Resolve opens source, lays the added files over it and works out the
// plan, writing nothing.
func Resolve(ctx context.Context, source string, opts ...Option) (*Result, error) {
	start := time.Now()
	o := newOptions(opts)
	src, res, err := o.prepare(ctx, source, func() error { return nil }, nil)
	if err != nil {
		return nil, err
	}
	defer src.close()
	o.progress(Progress{Phase: PhaseDone, Image: source})
	o.measure(src, res)
	res.Elapsed = time.Since(start)
	return res, nil
}

// prepare checks the options (check: those of the output), opens the
// source and resolves the plan. The caller closes the source. When early
// (if not nil) answers a Result, that is the outcome (a disk fetched from
// the registry instead of built): prepare returns it with no Source.
func (o *options) prepare(ctx context.Context, source string, check func() error, early func() (*Result, error)) (*Source, *Result, error) {
	if err := o.loadConfig(); err != nil {
		return nil, nil, err
	}
	workdir, err := o.checkWorkdir()
	if err != nil {
		return nil, nil, err
	}
	if err := check(); err != nil {
		return nil, nil, err
	}
	if o.pkg != nil {
		if err := o.pkg.check(source); err != nil {
			return nil, nil, err
		}
	}
	if early != nil {
		res, err := early()
		if err != nil || res != nil {
			return nil, res, err
		}
	}
	// A tag is first read as the manifest it named last time while the
	// registry is asked where it points now; nothing is written before
	// the answer. If it moved, the build starts again from the new one.
	for tagLater := true; ; tagLater = false {
		src, err := open(ctx, source, o, false, tagLater)
		o.progress(Progress{Phase: PhaseResolve, Image: source})
		if tagLater && errors.Is(err, lazy.ErrTagMoved) {
			o.debugf("%v: reading it again", err)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		res := &Result{Source: src.Kind, Image: src.Name, Config: o.config}
		err = o.resolve(src, workdir, res)
		if cerr := src.checkTag(ctx); cerr != nil {
			// What the registry says comes first, as when it was asked
			// before the image was read: a plan made from a manifest the
			// tag no longer names (or a failure to make one) is no answer.
			err = cerr
		}
		if err == nil {
			return src, res, nil
		}
		src.close()
		if !tagLater || !errors.Is(err, lazy.ErrTagMoved) {
			return nil, nil, err
		}
		o.debugf("%v: reading it again", err)
	}
}

// checkTag waits for the registry to confirm that the image's tag still
// names the manifest it was opened from (lazy.WithTagCheckLater).
func (s *Source) checkTag(ctx context.Context) error {
	if s.Image == nil {
		return nil
	}
	err := s.Image.CheckTag(ctx)
	if err != nil && s.Kind.Kind == lazy.KindRegistry && unreachable(err) {
		err = &UnreachableError{Err: err}
	}
	return err
}

// measure records what reading the image cost.
func (o *options) measure(src *Source, res *Result) {
	if src.Image == nil {
		return
	}
	res.Fetched = src.Image.Stats()
	for _, l := range res.Fetched.Layers {
		res.TOCBytes += l.TOCBytes
	}
	names := res.Plan.ImageFiles()
	if src.layer != nil {
		names = src.layer.ImageFiles(names)
	}
	var err error
	if res.MinFetch, err = src.Image.MinTransfer(names); err != nil {
		o.debugf("measuring the plan's transfer size: %v", err)
	}
}

// ImageConfig is what an image's config says about its program, as
// resolve takes it.
func ImageConfig(img *lazy.Image) resolve.Config {
	c := img.Config()
	return resolve.Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}
}

// loadConfig reads the ops config once and lays it under the options: an
// option that was given wins over the key that sets the same thing.
func (o *options) loadConfig() error {
	if o.configFile != "" && o.config == nil {
		c, err := opsconfig.Load(o.configFile)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return &vm.OptionError{Option: vm.OptionConfig, Err: err}
			}
			return &vm.OptionError{Option: vm.OptionConfig, Value: o.configFile, Err: err}
		}
		for _, w := range c.Warnings {
			o.logf("warning: %s: %s", o.configFile, w)
		}
		o.config = c
	}
	c := o.config
	if c == nil || o.configApplied {
		return nil
	}
	o.configApplied = true
	o.env = append(c.SortedEnv(), o.env...) // the options come later: they win
	if len(o.dns) == 0 {
		o.dns = c.NameServers
	}
	if c.DisableArgsCopy {
		o.noAutoAdd = true
	}
	if o.size == "" {
		o.size = c.BaseVolumeSz
	}
	if o.kernel == "" {
		o.kernel = c.Kernel
	}
	if o.boot == "" && !o.noBootloader {
		o.boot = c.Boot
	}
	if o.version == "" {
		o.version = c.NanosVersion
	}
	return nil
}

// programArgs are the program's arguments a build sets: the options', else
// the config's Args; none keeps the image's Cmd.
func (o *options) programArgs() []string {
	if !o.argsSet && o.config != nil {
		return o.config.Args
	}
	return o.args
}

func (o *options) klibs() []string {
	if o.config == nil {
		return nil
	}
	return o.config.Klibs
}

func (o *options) checkWorkdir() (string, error) {
	if o.workdir == "" {
		return "", nil
	}
	if !path.IsAbs(o.workdir) {
		return "", &vm.OptionError{Option: vm.OptionWorkdir, Value: o.workdir, Err: errors.New("want an absolute path in the image")}
	}
	return path.Clean(o.workdir), nil
}

// Source is an opened source: where files are read from and what the
// image says about its program.
type Source struct {
	Kind lazy.Source
	Name string // the image's canonical name; a directory or disk: its absolute path
	Ref  string // as the caller named it (Open)
	FS   fs.FS  // the files
	// Image is the image when the source is one (nil for a directory or a
	// disk).
	Image *lazy.Image

	digest string // what identifies the contents, for the disk's seed
	fsys   fs.FS  // FS, with the added files over it once laid
	cfg    resolve.Config
	hasCfg bool
	arch   string
	layer  *content.Layer // the added files (nil without)
	closer func() error
}

// Close lets go of the source.
func (s *Source) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer()
}

func (s *Source) close() { s.Close() }

// Open opens what ref names, as lazy.Classify sorts it: an image (files
// fetched when read), a directory (read through os.Root: no link leads
// out of it) or a Nanos disk image (its root filesystem). An empty ref is
// the nanofs mount the working directory is in (MountedRoot). Only
// WithImageOptions, WithLog, WithProgress and WithHostDir matter here.
func Open(ctx context.Context, ref string, opts ...Option) (*Source, error) {
	o := newOptions(opts)
	src, err := open(ctx, ref, o, true, false)
	o.progress(Progress{Phase: PhaseDone, Image: ref})
	if err != nil {
		return nil, err
	}
	src.Ref = ref
	return src, nil
}

// MountName is how a mount table names the source: a directory by its
// absolute path, anything else as the caller named it.
func (s *Source) MountName() string {
	if s.Kind.Kind == lazy.KindDirectory {
		return s.Name
	}
	return s.Ref
}

// open opens ref; disks: a Nanos disk image is a source too; tagLater: a
// tag may be read as the manifest it named last time, the caller calls
// Source.checkTag before it writes anything (lazy.WithTagCheckLater).
func open(ctx context.Context, ref string, o *options, disks, tagLater bool) (*Source, error) {
	if ref == "" {
		dir, err := MountedRoot(o.cwd)
		if err != nil {
			return nil, err
		}
		ref = dir
	}
	kind, err := lazy.Classify(ref)
	if err != nil {
		return nil, err
	}
	switch kind.Kind {
	case lazy.KindDisk:
		if !disks {
			return nil, fmt.Errorf("%s %w", ref, ErrDiskImage)
		}
		return openDisk(kind, o)
	case lazy.KindDirectory:
		root, err := os.OpenRoot(kind.Path)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		abs, _ := filepath.Abs(kind.Path)
		o.debugf("reading the directory %s", abs)
		return &Source{Kind: kind, Name: abs, FS: root.FS(), digest: "dir:" + abs, fsys: root.FS(), arch: runtime.GOARCH, closer: root.Close}, nil
	}
	iopts := append(slices.Clone(o.imageOpts), lazy.WithProgress(func(s lazy.Stats) {
		o.progress(Progress{Phase: PhaseOpen, Image: ref, Fetched: s.Bytes})
	}))
	if tagLater {
		iopts = append(iopts, lazy.WithTagCheckLater())
	}
	img, err := lazy.Open(ctx, ref, iopts...)
	if err != nil {
		if kind.Kind == lazy.KindRegistry && unreachable(err) {
			err = &UnreachableError{Err: err}
		}
		return nil, err
	}
	o.debugf("opened %s", img.Name())
	return &Source{
		Kind: kind, Name: img.Name(), FS: img, Image: img, digest: img.Digest().String(), fsys: img, hasCfg: true,
		cfg: ImageConfig(img), arch: img.ConfigFile().Architecture, closer: img.Close,
	}, nil
}

// openDisk opens the root filesystem of a Nanos disk image; a file that is
// none may yet be a tarball that does not start like one.
func openDisk(kind lazy.Source, o *options) (*Source, error) {
	f, err := os.Open(kind.Path)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("source: %w", err)
	}
	fsys, err := tfs.Open(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("source %s is neither a Nanos disk image nor a docker-save tarball: %w", kind.Path, err)
	}
	abs, _ := filepath.Abs(kind.Path)
	o.debugf("reading the root filesystem of the Nanos disk image %s", abs)
	return &Source{Kind: kind, Name: abs, FS: fsys, fsys: fsys, closer: f.Close}, nil
}

// PrefetchProgram warms the cache with what the image's program needs,
// the files Build would copy, and returns the plan it fetched for.
func (s *Source) PrefetchProgram(ctx context.Context) (*resolve.Plan, error) {
	if s.Image == nil {
		return nil, errors.New("only an image is fetched")
	}
	plan, err := resolve.Resolve(s.Image, s.cfg, resolve.WithAllowMissing())
	if err != nil {
		return nil, err
	}
	if err := s.Image.Prefetch(ctx, plan.ImageFiles()); err != nil {
		return nil, err
	}
	return plan, nil
}

// resolve lays the added files over the source and works out the plan
// over both.
func (o *options) resolve(src *Source, workdir string, res *Result) error {
	if !src.hasCfg && o.entry == "" {
		return fmt.Errorf("%s: %w", src.Name, ErrNoConfig)
	}
	cfg := src.cfg
	if workdir != "" {
		cfg.WorkingDir = workdir
	}
	cwd := cfg.WorkingDir
	if !path.IsAbs(cwd) {
		cwd = path.Clean("/" + cwd) // as resolve and the kernel take it
	}
	layer, err := content.Lay(src.fsys, content.Request{
		Adds: o.adds, Config: o.config, ConfigFile: o.configFile, Args: o.programArgs(), AutoAdd: !o.noAutoAdd,
		Overwrite: o.overwrite, Workdir: cwd, Cwd: o.cwd, Logf: o.logf, Debugf: o.debugf,
	})
	if err != nil {
		return err
	}
	ropts := o.resolveOptions()
	if layer != nil {
		src.fsys, src.layer, res.Added = layer, layer, layer.Sources
		ropts = append(ropts, resolve.WithAdded(layer.Added()...))
	}
	plan, err := resolve.Resolve(src.fsys, cfg, ropts...)
	if err != nil {
		return fmt.Errorf("%s: %w", src.Kind.Ref, err)
	}
	if w := plan.Wrapper; w != nil {
		o.logf("evaluated the entrypoint wrapper %s: it runs %s", w.Script, strings.Join(w.Exec, " "))
		for _, e := range w.Effects {
			o.debugf("  wrapper: %s", e)
		}
	}
	for _, w := range plan.Warnings {
		o.logf("warning: %s", w)
	}
	for _, r := range plan.Runtimes {
		o.logf("%s runtime: added %s (%d files, %s)", r.Rule, r.Reason, r.Files, vm.ByteCount(r.Bytes))
	}
	for _, f := range plan.Generated {
		if f.Replaced {
			o.logf("generated %s, replacing the image's copy (as a container runtime does)", f.Path)
		}
	}
	res.Plan, res.Manifest = plan, disk.ManifestFromPlan(plan)
	if o.config != nil && len(o.config.Manifest) > 0 {
		res.Manifest.Extra = maps.Clone(o.config.Manifest)
	}
	for _, e := range plan.Entries {
		if e.Kind == resolve.KindFile || e.Kind == resolve.KindGenerated {
			res.Files++
		}
	}
	return nil
}

func (o *options) resolveOptions() []resolve.Option {
	var opts []resolve.Option
	if o.entry != "" {
		opts = append(opts, resolve.WithEntry(o.entry))
	}
	if args := o.programArgs(); len(args) > 0 {
		opts = append(opts, resolve.WithArgs(args...))
	}
	if len(o.env) > 0 {
		opts = append(opts, resolve.WithEnv(o.env...))
	}
	if len(o.includes) > 0 {
		opts = append(opts, resolve.WithInclude(o.includes...))
	}
	if len(o.dns) > 0 {
		opts = append(opts, resolve.WithNameservers(o.dns...))
	}
	if o.machine != elf.EM_NONE {
		opts = append(opts, resolve.WithMachine(o.machine)) // WithResolveOptions may override it
	}
	return append(opts, o.resolveOpts...)
}

// setTarget sets the machine a build's program must be built for: that of
// the platform the image is read for (lazy.WithPlatform's architecture, or
// the host's). The disk and package writers check the plan against the
// kernel's machine besides.
func (o *options) setTarget() error {
	p := lazy.PlatformOf(o.imageOpts...)
	m, err := resolve.MachineForArch(p.Architecture)
	if err != nil {
		return fmt.Errorf("%w %s: %w", lazy.ErrPlatform, p.Architecture, err)
	}
	o.machine = m
	return nil
}

// findKernel picks the kernel and bootloader the disk boots with.
func (o *options) findKernel() (kernel.Kernel, error) {
	var kopts []kernel.KernelOption
	if o.kernel != "" || o.boot != "" {
		kopts = append(kopts, kernel.WithKernelFiles(o.kernel, o.boot))
	}
	if o.version != "" {
		kopts = append(kopts, kernel.WithVersion(o.version))
	}
	k, err := kernel.FindKernel(kopts...)
	if err != nil {
		return k, err
	}
	if o.config != nil && o.config.KlibDir != "" {
		k.KlibDir = o.config.KlibDir
	}
	if k.Boot == "" {
		return k, &NoBootError{Kernel: k}
	}
	return k, nil
}

func (o *options) writeDisk(ctx context.Context, ref string, src *Source, size int64, res *Result) error {
	var dopts []disk.DiskOption
	if size > 0 {
		dopts = append(dopts, disk.WithDiskSize(size))
	}
	// The kernel is looked for once the image is known to be good: a
	// missing image is the first thing to hear about.
	if o.noBootloader {
		dopts = append(dopts, disk.WithoutBootloader())
	} else {
		k, err := o.findKernel()
		if err != nil {
			return err
		}
		dopts = append(dopts, disk.WithKernel(k))
		res.Kernel = k.Kernel
	}
	out := o.output
	if out == "" {
		out = DefaultDiskName(ref)
	}
	var addedID []byte
	if src.layer != nil {
		var err error
		if addedID, err = src.layer.Identity(); err != nil {
			return err
		}
	}
	if klibs := o.klibs(); len(klibs) > 0 {
		dopts = append(dopts, disk.WithKlibs(klibs...))
	}
	var written atomic.Int64
	need := res.Plan.Size()
	dopts = append(dopts,
		disk.WithManifest(res.Manifest),
		disk.WithSeed(diskSeed(src.digest, res.Manifest, [][]string{o.includes, o.dns, o.klibs()}, addedID)),
		disk.WithParallel(o.parallel),
		disk.WithFileWritten(func(string, int64) {
			p := Progress{Phase: PhaseWrite, Image: ref, Need: need, Files: res.Files, Written: int(written.Add(1))}
			if src.Image != nil {
				st := src.Image.Stats()
				p.Fetched, p.Layers = st.Bytes, st.Layers
			}
			o.progress(p)
		}),
	)
	o.progress(Progress{Phase: PhaseWrite, Image: ref, Need: need, Files: res.Files})
	info, err := disk.WriteDisk(ctx, out, src.fsys, res.Plan, dopts...)
	if err != nil {
		return err
	}
	res.Output, res.Disk = out, info
	return nil
}

func (p *pkgOptions) check(ref string) error {
	if p.name == "" {
		p.name = DefaultPackageName(ref)
	}
	if err := opspkg.CheckPackageName(p.name); err != nil {
		return err
	}
	if p.install && p.opsHome == "" {
		h, err := kernel.DefaultOpsHome()
		if err != nil {
			return err
		}
		p.opsHome = h
	}
	return nil
}

func (o *options) writePackage(ctx context.Context, src *Source, res *Result) error {
	if klibs := o.klibs(); len(klibs) > 0 {
		o.logf("warning: a package cannot carry klibs (%s): give them to ops (Klibs in its config)", strings.Join(klibs, ", "))
	}
	p, err := opspkg.NewPackage(res.Manifest, o.pkg.name, src.arch)
	if err != nil {
		return err
	}
	if len(p.Manifest.ManifestPassthrough) > 0 {
		keys, _ := json.Marshal(map[string]any{"ManifestPassthrough": p.Manifest.ManifestPassthrough})
		o.logf("warning: ops pkg load ignores a package's ManifestPassthrough (the working directory and other kernel keys): give them to ops in a config file (-c) as %s", keys)
	}
	pr := &PackageResult{Name: o.pkg.name, Arch: src.arch, Manifest: p.Manifest}
	var info *opspkg.PackageInfo
	if o.pkg.archive != "" {
		if info, err = p.WriteArchive(ctx, o.pkg.archive, src.fsys, res.Plan); err != nil {
			return err
		}
		pr.Archive = info.Path
	}
	if o.pkg.install {
		if info, err = p.Install(ctx, o.pkg.opsHome, src.fsys, res.Plan); err != nil {
			return err
		}
		pr.Installed = info.Path
	}
	if info != nil {
		pr.Files, pr.Bytes = info.Files, info.Bytes
	}
	res.Package = pr
	return nil
}

// diskSeed makes the disk's UUIDs a function of what decides its contents:
// the image digest, the manifest, the lists that shape the plan, and the
// identity of any added local files (content.Layer.Identity). The same
// image, files and options give the same bytes; different programs from
// one image get different UUIDs.
func diskSeed(digest string, m disk.Manifest, lists [][]string, added ...[]byte) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "nanofs build\x00%s\x00%s\x00", digest, m.Program)
	if m.Cwd != "" {
		fmt.Fprintf(h, "cwd\x00%s\x00", m.Cwd)
	}
	if len(m.Extra) > 0 {
		if b, err := json.Marshal(m.Extra); err == nil { // map keys sorted: deterministic
			fmt.Fprintf(h, "extra\x00%s\x00", b)
		}
	}
	for _, a := range added {
		fmt.Fprintf(h, "added\x00%x\x00", a)
	}
	for _, a := range m.Arguments {
		fmt.Fprintf(h, "arg\x00%s\x00", a)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Environment)) {
		fmt.Fprintf(h, "env\x00%s=%s\x00", k, m.Environment[k])
	}
	for _, s := range lists {
		fmt.Fprintf(h, "list\x00%s\x00", strings.Join(s, "\x00"))
	}
	return h.Sum(nil)
}

// DefaultDiskName names the disk after the image, as ops names packages:
// node:16.3.0 -> node-16.3.0.img, a digest reference -> name-<12 hex>.img,
// a local source (layout, tarball, directory) -> its base name.
func DefaultDiskName(ref string) string {
	if base, ok := localBase(ref); ok {
		return base + ".img"
	}
	base, version := imageNameVersion(ref)
	return base + "-" + version + ".img"
}

// DefaultPackageName names a package as ops does, NAME_TAG: node:16.3.0
// -> node_16.3.0, a digest reference -> name_<12 hex>, no tag -> _latest;
// a local source by its base name.
func DefaultPackageName(ref string) string {
	if base, ok := localBase(ref); ok {
		return base + "_latest"
	}
	base, version := imageNameVersion(ref)
	return base + "_" + version
}

// localBase is the base name (without extension) of a local source.
func localBase(ref string) (string, bool) {
	src, err := lazy.Classify(ref)
	if err != nil || src.Kind == lazy.KindRegistry {
		return "", false
	}
	p := filepath.Clean(src.Path)
	if src.Kind == lazy.KindDirectory || src.Kind == lazy.KindOCILayout {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs // "." names its directory
		}
	}
	return strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)), true
}

// imageNameVersion splits a registry reference into the last element of
// its repository and its tag (or 12 hex digits of its digest).
func imageNameVersion(ref string) (string, string) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "image", "latest"
	}
	repo := r.Context().RepositoryStr()
	id := r.Identifier()
	if strings.HasPrefix(id, "sha256:") {
		id = strings.TrimPrefix(id, "sha256:")[:12]
	}
	return repo[strings.LastIndex(repo, "/")+1:], id
}

// MountedRoot is the root of the nanofs mount that holds dir (default:
// the working directory): building from it reads the image through that
// view.
func MountedRoot(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	mp, _, err := fusefs.Enclosing(dir)
	if err != nil {
		return "", fmt.Errorf("no image named, and %w", err)
	}
	return mp, nil
}

// UnreachableError: the registry could not be reached. Its message says
// how to build without one.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%v (without a reachable registry, give an OCI image layout directory (oci:DIR) or a `docker save` tarball (docker-archive:FILE) instead)", e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachable tells a failure to reach a registry (no route, no such host,
// refused, timed out) from its answers.
func unreachable(err error) bool {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	if errors.As(err, &dnsErr) || errors.As(err, &opErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) {
		return true
	}
	// go-containerregistry's ping flattens some of these into text.
	msg := err.Error()
	for _, s := range []string{"connection refused", "no such host", "network is unreachable", "no route to host", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
