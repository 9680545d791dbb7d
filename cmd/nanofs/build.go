package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nanofs/nanofs/lazy"
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
boot instead.`,
		Example: `  nanofs build node:16.3.0 --entry node
  nanofs build localhost:5000/app:1.2 -o app.img -e MODE=prod --include '/usr/lib/app/plugins/*'
  nanofs build ./oci-layout-dir --json`,
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
	f.StringArrayVarP(&o.env, "env", "e", nil, "environment variable NAME=VALUE over the image's Env (repeatable)")
	f.StringArrayVar(&o.includes, "include", nil, "also copy the files matching this absolute glob in the image, e.g. a runtime's lib dir (repeatable)")
	f.StringArrayVar(&o.dns, "dns", nil, "name server for the generated /etc/resolv.conf when the image has none (repeatable)")
	f.StringVar(&o.size, "size", "", "disk size, e.g. 512M or 2G (default: as small as the files allow, plus 1 MiB free)")
}

// registerBoot adds the bootloader flags (--kernel is the caller's: `run`
// has its own).
func (o *buildOptions) registerBoot(f *pflag.FlagSet) {
	f.StringVar(&o.boot, "boot", "", "Nanos boot.img (default: NANOFS_BOOT, the nanofs cache, or an ops install)")
	f.StringVar(&o.version, "nanos-version", "", "Nanos release to take from the cache or an ops install (default: the newest there)")
}

// buildSummary is what `nanofs build` reports when it is done.
type buildSummary struct {
	Output       string   `json:"output"`
	Image        string   `json:"image"`
	Program      string   `json:"program"`
	Args         []string `json:"args"`
	Files        int      `json:"files"`
	Entries      int      `json:"entries"`
	PlanBytes    int64    `json:"plan_bytes"`
	DiskBytes    int64    `json:"disk_bytes"`
	FetchedBytes int64    `json:"fetched_bytes"`
	Requests     int64    `json:"requests"`
	Seconds      float64  `json:"seconds"`
	Bootable     bool     `json:"bootable"`
	Kernel       string   `json:"kernel,omitempty"`
	Skipped      []string `json:"skipped,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
}

func runBuild(ctx context.Context, g *globals, ref string, o *buildOptions) error {
	start := time.Now()
	diskOpts, kernelName, err := o.diskOptions()
	if err != nil {
		return err
	}
	img, err := o.images.open(ctx, g, ref)
	if err != nil {
		return err
	}
	defer img.Close()

	plan, err := resolve.Resolve(img, resolveConfig(img.Config()), o.resolveOptions()...)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	for _, w := range plan.Warnings {
		g.logf("warning: %s", w)
	}
	out := o.out
	if out == "" {
		out = defaultDiskName(ref)
	}
	manifest := vm.ManifestFromPlan(plan)
	files := 0
	for _, e := range plan.Entries {
		if e.Kind == resolve.KindFile || e.Kind == resolve.KindGenerated {
			files++
		}
	}
	progress := newBuildProgress(g, img, plan.Size(), files)
	diskOpts = append(diskOpts,
		vm.WithManifest(manifest),
		vm.WithSeed(diskSeed(img.Digest().String(), manifest, o)),
		vm.WithParallel(8),
		vm.WithFileWritten(progress.fileWritten),
	)
	info, err := vm.WriteDisk(ctx, out, img, plan, diskOpts...)
	progress.done()
	if err != nil {
		return err
	}
	st := img.Stats()
	sum := buildSummary{
		Output: out, Image: img.Name(), Program: plan.Program, Args: plan.Args,
		Files: files, Entries: len(plan.Entries), PlanBytes: plan.Size(), DiskBytes: info.Size,
		FetchedBytes: st.Bytes, Requests: st.Requests, Seconds: time.Since(start).Seconds(),
		Bootable: info.Bootloader, Kernel: kernelName, Skipped: info.Skipped, Warnings: plan.Warnings,
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
	if len(o.args) > 0 {
		opts = append(opts, resolve.WithArgs(o.args...))
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
	return resolve.Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir}
}

// diskSeed makes the disk's UUIDs a function of what decides its contents:
// the image digest and the manifest. The same image and flags give the same
// bytes; different programs from one image get different UUIDs.
func diskSeed(digest string, m vm.Manifest, o *buildOptions) []byte {
	h := sha256.New()
	fmt.Fprintf(h, "nanofs build\x00%s\x00%s\x00", digest, m.Program)
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
	for _, s := range [][]string{o.includes, o.dns} {
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
	r, err := name.ParseReference(ref)
	if err != nil {
		return "disk.img"
	}
	repo := r.Context().RepositoryStr()
	base := repo[strings.LastIndex(repo, "/")+1:]
	id := r.Identifier()
	if strings.HasPrefix(id, "sha256:") {
		id = strings.TrimPrefix(id, "sha256:")[:12]
	}
	return base + "-" + id + ".img"
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
