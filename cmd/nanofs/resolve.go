package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"github.com/nanofs/nanofs/resolve"
	"github.com/spf13/cobra"
)

func init() { verbs = append(verbs, newResolveCmd) }

type resolveOptions struct {
	images   imageFlags
	root     string
	entry    string
	args     []string
	includes []string
	env      []string
	arch     string
	json     bool
}

// resolveSource is what `nanofs resolve` reads: an image's root
// filesystem and its config, and how to let go of them.
type resolveSource struct {
	fsys   fs.FS
	cfg    resolve.Config
	hasCfg bool // false for a plain directory, which has no image config
	close  func() error
}

func newResolveCmd(g *globals) *cobra.Command {
	var o resolveOptions
	cmd := &cobra.Command{
		Use:   "resolve [IMAGE-OR-DIR]",
		Short: "List the files a program needs from an image: its ELF closure and runtime extras",
		Long: `Work out, without running anything, every file the program of an image needs
in a unikernel: the entrypoint (through PATH and #! scripts), its ELF
interpreter and shared libraries as the dynamic loader would find them
(RPATH, RUNPATH, LD_LIBRARY_PATH, ld.so.conf, glibc and musl defaults), and
the runtime extras no ELF header names (NSS modules, /etc files, CA
certificates, a resolv.conf, libgcc_s). Only ELF headers and dynamic sections
are read.

The plan prints as a tree (lddtree style) or, with --json, as JSON: every
path with its kind, mode, size, the reason it is needed and what needs it.

A directory has no image config: name the program with --entry.`,
		Example: `  nanofs resolve --root ./rootfs --entry node -a /app/hello.js
  nanofs resolve ./rootfs --entry /usr/bin/python3 --include '/usr/lib/python3.11/*' --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runResolve(cmd, g, args, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.root, "root", "", "resolve in the local directory DIR, laid out as an image root")
	f.StringVar(&o.entry, "entry", "", "program to run, a name looked up in PATH or a path; replaces the image's entrypoint and command")
	f.StringArrayVarP(&o.args, "arg", "a", nil, "argument of the program (repeatable); replaces the image's command")
	f.StringArrayVar(&o.includes, "include", nil, "also add the files matching GLOB, an absolute path in the image (repeatable)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable, NAME=VALUE (repeatable)")
	f.StringVar(&o.arch, "arch", runtime.GOARCH, "architecture the program must be built for (amd64, arm64, ...; \"any\" to accept any)")
	f.BoolVar(&o.json, "json", false, "print the plan as JSON")
	o.images.register(f)
	return cmd
}

func runResolve(cmd *cobra.Command, g *globals, args []string, o resolveOptions) error {
	src, what, err := openResolveSource(cmd.Context(), g, &o.images, o.root, args)
	if err != nil {
		return err
	}
	defer src.close()
	if !src.hasCfg && o.entry == "" {
		return fmt.Errorf("%s is a directory, which has no image config: name the program with --entry", what)
	}
	opts := []resolve.Option{resolve.WithInclude(o.includes...), resolve.WithEnv(o.env...)}
	if o.entry != "" {
		opts = append(opts, resolve.WithEntry(o.entry))
	}
	if cmd.Flags().Changed("arg") {
		opts = append(opts, resolve.WithArgs(o.args...))
	}
	if o.arch != "any" {
		m, err := resolve.MachineForArch(o.arch)
		if err != nil {
			return fmt.Errorf("--arch: %w", err)
		}
		opts = append(opts, resolve.WithMachine(m))
	}
	plan, err := resolve.Resolve(src.fsys, src.cfg, opts...)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", what, err)
	}
	for _, w := range plan.Warnings {
		g.logf("warning: %s", w)
	}
	g.debugf("resolve: %s: %s program %s, %d entries, %d bytes", what, plan.Linkage, plan.Program, len(plan.Entries), plan.Size())
	if o.json {
		return plan.WriteJSON(g.stdout)
	}
	return plan.WriteTree(g.stdout)
}

// openResolveSource opens --root DIR, or the positional IMAGE-OR-DIR.
func openResolveSource(ctx context.Context, g *globals, images *imageFlags, root string, args []string) (*resolveSource, string, error) {
	target := root
	switch {
	case root != "" && len(args) > 0:
		return nil, "", errors.New("give either --root DIR or IMAGE-OR-DIR, not both")
	case root == "" && len(args) == 0:
		return nil, "", errors.New("name what to resolve: an image or a directory (--root DIR)")
	case root == "":
		target = args[0]
		if info, err := os.Stat(target); err != nil || !info.IsDir() || isOCILayout(target) {
			img, err := images.open(ctx, g, target)
			if err != nil {
				return nil, "", err
			}
			src := &resolveSource{fsys: img, cfg: resolveConfig(img.Config()), hasCfg: true, close: img.Close}
			return src, target, nil
		}
	}
	r, err := os.OpenRoot(target)
	if err != nil {
		return nil, "", fmt.Errorf("--root: %w", err)
	}
	return &resolveSource{fsys: r.FS(), close: r.Close}, target, nil
}
