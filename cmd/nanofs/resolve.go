package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm/build"
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
	target := o.root
	switch {
	case o.root != "" && len(args) > 0:
		return errors.New("give either --root DIR or IMAGE-OR-DIR, not both")
	case o.root == "" && len(args) == 0:
		return errors.New("name what to resolve: an image or a directory (--root DIR)")
	case o.root == "":
		target = args[0]
	default:
		if st, err := os.Stat(o.root); err != nil || !st.IsDir() {
			if err == nil {
				err = fmt.Errorf("%s is not a directory", o.root)
			}
			return fmt.Errorf("--root: %w", err)
		}
	}
	iopts, err := o.images.options()
	if err != nil {
		return err
	}
	var ropts []resolve.Option
	if o.arch != "any" {
		m, err := resolve.MachineForArch(o.arch)
		if err != nil {
			return fmt.Errorf("--arch: %w", err)
		}
		ropts = append(ropts, resolve.WithMachine(m))
	}
	res, err := build.Resolve(cmd.Context(), target,
		build.WithImageOptions(iopts...), build.WithLog(g.logf, g.debugf), build.WithProgress(newProgress(g).Show),
		build.WithEntry(o.entry), build.WithArgs(o.args...), build.WithEnv(o.env...), build.WithInclude(o.includes...),
		build.WithoutAutoAdd(), build.WithResolveOptions(ropts...))
	if err != nil {
		return flagError(err)
	}
	plan := res.Plan
	g.debugf("resolve: %s: %s program %s, %d entries, %d bytes", target, plan.Linkage, plan.Program, len(plan.Entries), plan.Size())
	if o.json {
		return plan.WriteJSON(g.stdout)
	}
	return plan.WriteTree(g.stdout)
}
