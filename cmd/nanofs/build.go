package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nanofs/nanofs/vm"
	"github.com/nanofs/nanofs/vm/artifact"
	"github.com/nanofs/nanofs/vm/build"
	"github.com/nanofs/nanofs/vm/build/progress"
	"github.com/nanofs/nanofs/vm/content"
	"github.com/nanofs/nanofs/vm/kernel"
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

	// Local content and --config.
	adds      []string // --add SRC[:DST]
	overwrite bool
	noAutoAdd bool
	workdir   string
	config    string

	// The registry as the store of built disks.
	push    string // --push REF
	reuse   bool   // --reuse
	noReuse bool   // --no-reuse
	batch   batchFlags
}

func newBuildCmd(g *globals) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build [IMAGE...]",
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

IMAGE may also be a directory holding a root filesystem (name the program with
--entry); inside a nanofs mount, IMAGE may be left out: the image mounted there
is built, read through the mount.

Local files join the image's: --add SRC[:DST] copies a file or directory in
(streamed like the image's files; symbolic links inside it kept as links), an
argument (-a) that names a local file by a relative path is copied to that
path under the program's working directory, and --config reads an ops
config.json (Files, Dirs, MapDirs, Args, Env, Klibs, ManifestPassthrough...).
An added path that the image already holds is an error unless --overwrite.

The registry is the store of built unikernels: --push REF pushes the disk as
an OCI artifact referring to IMAGE (its subject), annotated with what built it
and the digest of every build input (image digest, flags, added files, kernel).
Before building, --push (or --reuse) looks among IMAGE's referrers for an
artifact from the same inputs and fetches its disk instead (--no-reuse
builds anyway). "nanofs pull REF" and "nanofs run REF" take such an artifact.

Several images (arguments, or --images-from FILE, - for stdin) are built with
one cache, --jobs at a time, each into --output-dir and, with --push-to REPO,
pushed to REPO:<disk name>. A line (with --json, a JSON object) reports each
image as it finishes; an image that fails does not stop the others, and the
exit status is 1 with the failed images named.`,
		Example: `  nanofs build node:16.3.0 --entry node
  nanofs build localhost:5000/app:1.2 -o app.img -e MODE=prod --include '/usr/lib/app/plugins/*'
  nanofs build ./oci-layout-dir --json
  nanofs build node:16.3.0 --entry node -a hi.js          # hi.js from this directory, into the working directory
  nanofs build node:16.3.0 --entry node --add ./lib:/srv/lib --workdir /srv -a main.js
  nanofs build registry.example.com/app:1.2 --push registry.example.com/app:1.2-nanofs
  nanofs build --images-from images.txt --jobs 4 --push-to registry.example.com/unikernels --output-dir out --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || o.batch.imagesFrom != "" || o.batch.pushTo != "" {
				images, err := batchImages(args, o.batch.imagesFrom, cmd.InOrStdin())
				if err != nil {
					return err
				}
				return runBatch(cmd.Context(), g, images, &o)
			}
			image := ""
			if len(args) > 0 {
				image = args[0]
			}
			return runBuild(cmd.Context(), g, image, &o)
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
	f.StringVar(&o.push, "push", "", "push the disk to the registry as an OCI artifact at REF (REPO[:TAG]) referring to IMAGE; reuses a matching artifact unless --no-reuse")
	f.IntVar(&o.batch.jobs, "jobs", 2, "with several images: how many to build at once")
	f.StringVar(&o.batch.pushTo, "push-to", "", "push each image's disk as an artifact to REPO, tagged with its disk name (node-16.3.0); reuses matching artifacts unless --no-reuse")
	f.StringVar(&o.batch.imagesFrom, "images-from", "", "build the images listed in FILE too, one reference a line (- for stdin)")
	f.StringVar(&o.batch.outputDir, "output-dir", "", "with several images: the directory to write their disks to (default: the current one)")
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
	f.BoolVar(&o.reuse, "reuse", false, "fetch a disk pushed earlier from the same inputs (among IMAGE's referrers) instead of building (the default with --push)")
	f.BoolVar(&o.noReuse, "no-reuse", false, "build even when a matching artifact was pushed before")
}

// registerBoot adds the bootloader flags (--kernel is the caller's: `run`
// has its own).
func (o *buildOptions) registerBoot(f *pflag.FlagSet) {
	f.StringVar(&o.boot, "boot", "", "Nanos boot.img (default: NANOFS_BOOT, the nanofs cache, or an ops install)")
	f.StringVar(&o.version, "nanos-version", "", "Nanos release to take from the cache or an ops install (default: the newest there)")
}

// buildOpts turns the content flags into the library's options (p: the
// bars to draw on, or none); a bad image flag is reported before anything
// is opened.
func (o *buildOptions) buildOpts(g *globals, p *progress.Bars) ([]build.Option, error) {
	iopts, err := o.images.options()
	if err != nil {
		return nil, err
	}
	opts := []build.Option{
		build.WithImageOptions(iopts...),
		build.WithLog(g.logf, g.debugf),
		build.WithProgress(p.Show),
		build.WithEntry(o.entry), build.WithArgs(o.args...), build.WithEnv(o.env...),
		build.WithInclude(o.includes...), build.WithNameservers(o.dns...), build.WithWorkdir(o.workdir),
		build.WithAdd(o.adds...), build.WithConfigFile(o.config),
		build.WithKernelFiles(o.kernel, o.boot), build.WithNanosVersion(o.version), build.WithSize(o.size),
	}
	if o.overwrite {
		opts = append(opts, build.WithOverwrite())
	}
	if o.noAutoAdd {
		opts = append(opts, build.WithoutAutoAdd())
	}
	if o.noBootloader {
		opts = append(opts, build.WithoutBootloader())
	}
	if o.push != "" {
		opts = append(opts, build.WithPush(o.push))
	}
	opts = append(opts, build.WithReuse((o.reuse || o.push != "" || o.batch.pushTo != "") && !o.noReuse), build.WithToolVersion(version))
	if o.images.insecure {
		opts = append(opts, build.WithRegistryOptions(artifact.WithInsecure()))
	}
	return opts, nil
}

func runBuild(ctx context.Context, g *globals, ref string, o *buildOptions) error {
	opts, err := o.buildOpts(g, newProgress(g))
	if err != nil {
		return err
	}
	res, err := build.Build(ctx, ref, append(opts, build.WithOutput(o.out))...)
	if err != nil {
		err = flagError(err)
		if errors.Is(err, kernel.ErrNoKernel) {
			err = fmt.Errorf("%w (or build with --no-bootloader for a root-filesystem-only disk)", err)
		}
		return err
	}
	sum := flagSummary(res.Summary())
	if o.json {
		return g.printJSON(sum)
	}
	if sum.Reused != "" {
		g.logf("wrote %s: %s fetched from %s (built before from the same inputs), %.1fs", sum.Output, byteCount(sum.DiskBytes), sum.Reused, sum.Seconds)
		return nil
	}
	reportFetched(g, res.Fetched)
	g.logf("wrote %s: %s (%d files, %s of them), fetched %s in %d requests, %.1fs",
		sum.Output, byteCount(sum.DiskBytes), sum.Files, byteCount(sum.PlanBytes), byteCount(sum.FetchedBytes), sum.Requests, sum.Seconds)
	if !sum.Bootable {
		g.logf("no bootloader: boot it directly with a kernel (nanofs run --kernel kernel.img %s)", sum.Output)
	}
	return nil
}

// flagHints says the library's options (in errors, remedies and log
// lines) in the words of the flags.
var flagHints = map[string]string{
	vm.OptionAdd: "--add", vm.OptionConfig: "--config", vm.OptionWorkdir: "--workdir", vm.OptionSize: "--size",
	vm.OptionAccel: "--accel", vm.OptionVMM: "--vmm", vm.OptionOverwrite: "--overwrite", vm.OptionEntry: "--entry",
	vm.OptionEnv: "--env", vm.OptionInclude: "--include", vm.OptionBoot: "--boot", vm.OptionKernel: "--kernel",
	vm.OptionPlatform: "--platform", vm.OptionMaxExpansion: "--max-expansion", vm.OptionMaxLayerSize: "--max-layer-size",
	vm.OptionMinRate: "--min-rate",
}

// flagSummary says the provenance of files added with --add by the flag,
// as the JSON summary always has.
func flagSummary(sum build.Summary) build.Summary {
	sum.Added = slices.Clone(sum.Added)
	for i, a := range sum.Added {
		if a.From == content.FromAdd {
			sum.Added[i].From = flagHints[vm.OptionAdd]
		}
	}
	return sum
}

// flagError rewords the library's error with its remedies, naming the
// flags to use (build.Reword). It is applied where a verb gets the
// library's error and, for errors met later (reading an image's files),
// once more in run; Reword leaves an error it reworded as it is.
func flagError(err error) error {
	return build.Reword(err, func(option string) string {
		if f, ok := flagHints[option]; ok {
			return f
		}
		return option
	})
}
