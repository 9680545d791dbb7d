package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/lazy/hostfs"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm"
)

func init() { verbs = append(verbs, newBuildCmd) }

// buildOptions are the flags of `nanofs build`.
type buildOptions struct {
	images       imageFlags
	entry        string
	args         []string
	env          []string
	includes     []string
	dns          []string
	out          string
	size         string
	kernel       string
	boot         string
	version      string
	noBootloader bool
	json         bool

	// Local content (content.go) and --config (opsconfig.go).
	adds      []string // --add SRC[:DST]
	overwrite bool
	noAutoAdd bool
	workdir   string
	config    string
	opsCfg    *opsConfig // read from config, once
	klibs     []string   // from the config
	klibDir   string
}

func newBuildCmd(g *globals) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build IMAGE",
		Short: "Build a bootable Nanos disk image from IMAGE's program and exactly the files it needs",
		Long: `Build a Nanos disk image from IMAGE (a registry reference, an OCI layout
directory or a docker-save tarball). nanofs finds the program (the image's
Entrypoint and Cmd, or --entry), every library its ELF headers name, and the
runtime files a unikernel needs that ldd cannot see (NSS modules for DNS, /etc
files, CA certificates), then streams just those files from the registry into
the disk. Nothing in the image is executed; only the needed bytes are fetched
(eStargz images chunk by chunk).

The disk boots with "nanofs run". It needs a Nanos kernel and bootloader
(--kernel/--boot, NANOFS_KERNEL/NANOFS_BOOT, "nanofs kernel fetch", or an ops
install); --no-bootloader writes a root-filesystem-only disk for direct kernel
boot instead.

Local files join the image's: --add SRC[:DST] copies a file or directory in
(streamed like the image's files; symbolic links inside it kept as links), an
argument (-a) that names a local file by a relative path is copied to that
path under the program's working directory, and --config reads an ops
config.json (Files, Dirs, MapDirs, Args, Env, Klibs, ManifestPassthrough...).
An added path that the image already holds is an error unless --overwrite.`,
		Example: `  nanofs build node:16.3.0 --entry node
  nanofs build localhost:5000/app:1.2 -o app.img -e MODE=prod --include '/usr/lib/app/plugins/*'
  nanofs build ./oci-layout-dir --json
  nanofs build node:16.3.0 --entry node -a hi.js          # hi.js from this directory, into the working directory
  nanofs build node:16.3.0 --entry node --add ./lib:/srv/lib --workdir /srv -a main.js`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := runBuild(cmd.Context(), g, args[0], &o)
			if errors.Is(err, vm.ErrNoKernel) {
				err = fmt.Errorf("%w (or build with --no-bootloader for a root-filesystem-only disk)", err)
			}
			return err
		},
	}
	f := cmd.Flags()
	o.registerContent(f)
	f.StringArrayVarP(&o.args, "arg", "a", nil, "argument for the program, replacing the image's command (repeatable)")
	f.StringVarP(&o.out, "output", "o", "", "disk image to write (default: from the image name, e.g. node-16.3.0.img)")
	f.StringVar(&o.kernel, "kernel", "", "Nanos kernel.img (default: NANOFS_KERNEL, the nanofs cache, or an ops install)")
	o.registerBoot(f)
	f.BoolVar(&o.noBootloader, "no-bootloader", false, "write only the root filesystem behind a partition table, for direct kernel boot")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON on stdout")
	cmd.MarkFlagsMutuallyExclusive("no-bootloader", "boot")
	return cmd
}

// registerContent adds the flags that decide what goes into the disk; `run
// IMAGE` shares them.
func (o *buildOptions) registerContent(f *pflag.FlagSet) {
	o.images.register(f)
	f.StringVar(&o.entry, "entry", "", "program to run instead of the image's entrypoint and command (a name looked up in the image's PATH, or a path)")
	// ops users type -f/--file (ops pkg from-docker IMAGE -f node).
	f.StringVarP(&o.entry, "file", "f", "", "the same as --entry, as ops names it")
	f.StringArrayVarP(&o.env, "env", "e", nil, "environment variable NAME=VALUE over the image's Env (repeatable)")
	f.StringArrayVar(&o.includes, "include", nil, "also copy the files matching this absolute glob in the image, e.g. a runtime's lib dir (repeatable)")
	f.StringArrayVar(&o.dns, "dns", nil, "name server for the generated /etc/resolv.conf, which replaces the image's (repeatable)")
	f.StringVar(&o.size, "size", "", "disk size, e.g. 512M or 2G (default: as small as the files allow, plus 1 MiB free)")
	f.StringArrayVar(&o.adds, "add", nil, "copy the local file or directory SRC into the image at DST, SRC[:DST] (default DST: SRC's path relative to the current directory, under /) (repeatable)")
	f.BoolVar(&o.overwrite, "overwrite", false, "let added files replace the image's files (and directories) at their paths")
	f.BoolVar(&o.noAutoAdd, "no-auto-add", false, "do not add the local files that arguments of the program name")
	f.StringVar(&o.workdir, "workdir", "", "working directory of the program in the unikernel, replacing the image's WorkingDir")
	f.StringVar(&o.config, "config", "", "read an ops config.json (Args, Env, Files, Dirs, MapDirs, Klibs, RunConfig, ...); flags override it")
}

// registerBoot adds the bootloader flags (--kernel is the caller's: `run`
// has its own).
func (o *buildOptions) registerBoot(f *pflag.FlagSet) {
	f.StringVar(&o.boot, "boot", "", "Nanos boot.img (default: NANOFS_BOOT, the nanofs cache, or an ops install)")
	f.StringVar(&o.version, "nanos-version", "", "Nanos release to take from the cache or an ops install (default: the newest there)")
}

// buildSummary is what `nanofs build` reports when it is done.
type buildSummary struct {
	Output       string      `json:"output"`
	Image        string      `json:"image"`
	Program      string      `json:"program"`
	Args         []string    `json:"args"`
	Files        int         `json:"files"`
	Entries      int         `json:"entries"`
	PlanBytes    int64       `json:"plan_bytes"`
	MinFetch     int64       `json:"min_fetch_bytes"` // the yardstick for FetchedBytes: see lazy.Image.MinTransfer
	DiskBytes    int64       `json:"disk_bytes"`
	FetchedBytes int64       `json:"fetched_bytes"`
	TOCBytes     int64       `json:"toc_bytes"` // of FetchedBytes: eStargz footers and TOCs
	Requests     int64       `json:"requests"`
	Seconds      float64     `json:"seconds"`
	Bootable     bool        `json:"bootable"`
	Kernel       string      `json:"kernel,omitempty"`
	Skipped      []string    `json:"skipped,omitempty"`
	Warnings     []string    `json:"warnings,omitempty"`
	Added        []addSource `json:"added,omitempty"` // local files and directories copied in
	// Wrapper is the entrypoint wrapper evaluated at build time, whose final
	// exec gave Program and Args.
	Wrapper   *resolve.Wrapper        `json:"wrapper,omitempty"`
	Generated []resolve.GeneratedFile `json:"generated,omitempty"` // runtime-provided /etc files
	Runtimes  []resolve.RuntimeUse    `json:"runtimes,omitempty"`  // what the runtime rules added
}

// buildInput is what a build writes: the image, the plan of what to copy
// out of it, and the manifest that says how to run it.
type buildInput struct {
	img      *lazy.Image
	fsys     fs.FS // where the plan's files are read from: the image, with the added files over it
	plan     *resolve.Plan
	manifest vm.Manifest // with the config's root keys in Extra
	files    int         // regular files in the plan
	added    *hostfs.FS  // the added local files (nil without)
	sources  []addSource // where they come from
	klibs    []string    // kernel libraries the config asks for
}

// prepareBuild opens IMAGE and resolves what a build of it holds; `build`,
// `run IMAGE` and `pkg` share it. The caller closes in.img.
func prepareBuild(ctx context.Context, g *globals, ref string, o *buildOptions) (*buildInput, error) {
	if err := o.loadConfig(g); err != nil {
		return nil, err
	}
	cfgWorkdir := ""
	if o.workdir != "" {
		if !path.IsAbs(o.workdir) {
			return nil, fmt.Errorf("--workdir %s: want an absolute path in the image", o.workdir)
		}
		cfgWorkdir = path.Clean(o.workdir)
	}
	img, err := o.images.open(ctx, g, ref)
	if err != nil {
		return nil, err
	}
	in, err := o.prepare(g, ref, img, cfgWorkdir)
	if err != nil {
		img.Close()
		return nil, err
	}
	return in, nil
}

// prepare lays the added files over img and resolves the plan over both.
func (o *buildOptions) prepare(g *globals, ref string, img *lazy.Image, workdir string) (*buildInput, error) {
	cfg := resolveConfig(img.Config())
	if workdir != "" {
		cfg.WorkingDir = workdir
	}
	cwd := cfg.WorkingDir
	if !path.IsAbs(cwd) {
		cwd = path.Clean("/" + cwd) // as resolve and the kernel take it
	}
	in := &buildInput{img: img, fsys: img, klibs: o.klibs}
	ropts := o.resolveOptions()
	layer, sources, err := o.addContent(g, img, cwd)
	if err != nil {
		return nil, err
	}
	if layer != nil {
		in.fsys, in.added, in.sources = layer, layer, sources
		patterns, dangling := addedIncludes(layer)
		for _, p := range dangling {
			g.logf("warning: left out the added link %s: it leads to nothing in the image", p)
		}
		ropts = append(ropts, resolve.WithInclude(patterns...))
	}
	plan, err := resolve.Resolve(in.fsys, cfg, ropts...)
	var werr *resolve.WrapperError
	if errors.As(err, &werr) {
		return nil, fmt.Errorf("%s: %w with --entry PROGRAM", ref, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if w := plan.Wrapper; w != nil {
		g.logf("evaluated the entrypoint wrapper %s: it runs %s", w.Script, strings.Join(w.Exec, " "))
		for _, e := range w.Effects {
			g.debugf("  wrapper: %s", e)
		}
	}
	if layer != nil {
		labelAdded(plan, layer)
	}
	for _, w := range plan.Warnings {
		g.logf("warning: %s", w)
	}
	for _, r := range plan.Runtimes {
		g.logf("%s runtime: added %s (%d files, %s)", r.Rule, r.Reason, r.Files, byteCount(r.Bytes))
	}
	for _, f := range plan.Generated {
		if f.Replaced {
			g.logf("generated %s, replacing the image's copy (as a container runtime does)", f.Path)
		}
	}
	in.plan, in.manifest = plan, vm.ManifestFromPlan(plan)
	if o.opsCfg != nil && len(o.opsCfg.Manifest) > 0 {
		in.manifest.Extra = maps.Clone(o.opsCfg.Manifest)
	}
	for _, e := range plan.Entries {
		if e.Kind == resolve.KindFile || e.Kind == resolve.KindGenerated {
			in.files++
		}
	}
	return in, nil
}

func runBuild(ctx context.Context, g *globals, ref string, o *buildOptions) error {
	start := time.Now()
	if err := o.loadConfig(g); err != nil {
		return err
	}
	diskOpts, kernelName, err := o.diskOptions()
	if err != nil {
		return err
	}
	in, err := prepareBuild(ctx, g, ref, o)
	if err != nil {
		return err
	}
	defer in.img.Close()
	img, plan := in.img, in.plan
	out := o.out
	if out == "" {
		out = defaultDiskName(ref)
	}
	var addedID []byte
	if in.added != nil {
		if addedID, err = addedIdentity(in.added); err != nil {
			return err
		}
	}
	if len(in.klibs) > 0 {
		diskOpts = append(diskOpts, vm.WithKlibs(in.klibs...))
	}
	progress := newBuildProgress(g, img, plan.Size(), in.files)
	diskOpts = append(diskOpts,
		vm.WithManifest(in.manifest),
		vm.WithSeed(diskSeed(img.Digest().String(), in.manifest, o, addedID)),
		vm.WithParallel(8),
		vm.WithFileWritten(progress.fileWritten),
	)
	info, err := vm.WriteDisk(ctx, out, in.fsys, plan, diskOpts...)
	progress.done()
	if err != nil {
		return err
	}
	st := img.Stats()
	minFetch, err := img.MinTransfer(in.imageFiles())
	if err != nil {
		g.debugf("measuring the plan's transfer size: %v", err)
	}
	var tocs int64
	for _, l := range st.Layers {
		tocs += l.TOCBytes
	}
	sum := buildSummary{
		Output: out, Image: img.Name(), Program: plan.Program, Args: plan.Args,
		Files: in.files, Entries: len(plan.Entries), PlanBytes: plan.Size(), MinFetch: minFetch, DiskBytes: info.Size,
		FetchedBytes: st.Bytes, TOCBytes: tocs, Requests: st.Requests, Seconds: time.Since(start).Seconds(),
		Bootable: info.Bootloader, Kernel: kernelName, Skipped: info.Skipped, Warnings: plan.Warnings,
		Added: in.sources, Wrapper: plan.Wrapper, Generated: plan.Generated, Runtimes: plan.Runtimes,
	}
	if o.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	reportFetched(g, img)
	g.logf("wrote %s: %s (%d files, %s of them), fetched %s in %d requests, %.1fs",
		out, byteCount(sum.DiskBytes), sum.Files, byteCount(sum.PlanBytes), byteCount(sum.FetchedBytes), sum.Requests, sum.Seconds)
	if !info.Bootloader {
		g.logf("no bootloader: boot it directly with a kernel (nanofs run --kernel kernel.img %s)", out)
	}
	return nil
}

// diskOptions picks the kernel (unless --no-bootloader) and the disk size.
func (o *buildOptions) diskOptions() ([]vm.DiskOption, string, error) {
	var opts []vm.DiskOption
	if o.size != "" {
		n, err := parseSize(o.size)
		if err != nil {
			return nil, "", fmt.Errorf("--size: %w", err)
		}
		opts = append(opts, vm.WithDiskSize(n))
	}
	if o.noBootloader {
		return append(opts, vm.WithoutBootloader()), "", nil
	}
	var kopts []vm.KernelOption
	if o.kernel != "" || o.boot != "" {
		kopts = append(kopts, vm.WithKernelFiles(o.kernel, o.boot))
	}
	if o.version != "" {
		kopts = append(kopts, vm.WithVersion(o.version))
	}
	k, err := vm.FindKernel(kopts...)
	if err != nil {
		return nil, "", err
	}
	if o.klibDir != "" {
		k.KlibDir = o.klibDir
	}
	if k.Boot == "" {
		return nil, "", fmt.Errorf("found the kernel %s (from %s) but no boot.img: pass --boot or set %s", k.Kernel, k.Source, vm.EnvBoot)
	}
	return append(opts, vm.WithKernel(k)), k.Kernel, nil
}

func (o *buildOptions) resolveOptions() []resolve.Option {
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
	return opts
}

func resolveConfig(c lazy.Config) resolve.Config {
	return resolve.Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}
}

// diskSeed makes the disk's UUIDs a function of what decides its contents:
// the image digest, the manifest, and the identity of any added local
// files (addedIdentity). The same image, files and flags give the same
// bytes; different programs from one image get different UUIDs.
func diskSeed(digest string, m vm.Manifest, o *buildOptions, added ...[]byte) []byte {
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
	keys := make([]string, 0, len(m.Environment))
	for k := range m.Environment {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "env\x00%s=%s\x00", k, m.Environment[k])
	}
	for _, s := range [][]string{o.includes, o.dns, o.klibs} {
		fmt.Fprintf(h, "list\x00%s\x00", strings.Join(s, "\x00"))
	}
	return h.Sum(nil)
}

// defaultDiskName names the disk after the image, as ops names packages:
// node:16.3.0 -> node-16.3.0.img, a digest reference -> name-<12 hex>.img,
// a layout directory or tarball -> its base name.
func defaultDiskName(ref string) string {
	if _, err := os.Stat(ref); err == nil {
		base := strings.TrimSuffix(filepath.Base(filepath.Clean(ref)), filepath.Ext(ref))
		return base + ".img"
	}
	base, version := imageNameVersion(ref)
	return base + "-" + version + ".img"
}

// parseSize reads sizes like 512M, 2G, 1048576 (binary units).
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(s), "B"), "I"))
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	var n int64
	if _, err := fmt.Sscanf(t, "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != t {
		return 0, fmt.Errorf("%q is not a size like 512M or 2G", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// buildProgress draws one status line on a terminal: bytes fetched against
// the bytes the plan needs, and files written.
type buildProgress struct {
	g       *globals
	img     *lazy.Image
	need    int64
	files   int
	written atomic.Int64
	last    atomic.Int64 // unix nanoseconds of the last line drawn
	on      bool
}

func newBuildProgress(g *globals, img *lazy.Image, need int64, files int) *buildProgress {
	return &buildProgress{g: g, img: img, need: need, files: files, on: g.showProgress()}
}

func (p *buildProgress) fileWritten(string, int64) {
	n := p.written.Add(1)
	if !p.on {
		return
	}
	now := time.Now().UnixNano()
	if last := p.last.Load(); now-last < int64(100*time.Millisecond) && int(n) != p.files || !p.last.CompareAndSwap(last, now) {
		return
	}
	fmt.Fprintf(p.g.stderr, "\rfetched %s of %s needed, %d/%d files written ", byteCount(p.img.Stats().Bytes), byteCount(p.need), n, p.files)
}

func (p *buildProgress) done() {
	if p.on {
		fmt.Fprint(p.g.stderr, "\r\033[K")
	}
}
