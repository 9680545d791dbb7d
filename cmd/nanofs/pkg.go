package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/nanofs/nanofs/vm/build"
)

func init() { verbs = append(verbs, newPkgCmd) }

type pkgOptions struct {
	build   buildOptions // what goes into the package: the same as a disk
	name    string
	out     string
	opsHome string
	json    bool
}

func newPkgCmd(g *globals) *cobra.Command {
	var o pkgOptions
	cmd := &cobra.Command{
		Use:   "pkg [from-docker] IMAGE",
		Short: "Make an ops package from IMAGE's program and exactly the files it needs, without Docker",
		Long: `Make an ops package (what "ops pkg from-docker" makes, without a Docker
daemon, a full pull or running anything) from IMAGE: the same program and
files "nanofs build" would put into a disk, laid out as ops expects:
package.manifest (Program, Args, Env, Version) and sysroot/ in a directory
named NAME.

By default the package is installed where ops keeps local packages,
<ops home>/local_packages/<arch>/NAME (ops home: $OPS_HOME/.ops or ~/.ops,
or --ops-home), so that "ops pkg load -l NAME" boots it. With -o the package
is written as a .tar.gz archive instead, which "ops pkg add FILE --name NAME"
installs (installed too when --ops-home is given). NAME defaults to the
image's NAME_TAG, as ops names packages.

ops reads sysroot on the host, so absolute symbolic links are stored
relative to their directory (else ops resolves them against the host's
root), and a top-level link to a directory (usrmerge's /lib -> usr/lib) is
stored as a directory of links to the target's entries (ops cannot load a
package with such a link).`,
		Example: `  nanofs pkg node:16.3.0 --entry node
  nanofs pkg from-docker node:16.3.0 -f node               # as ops users type it
  ops pkg load -l node_16.3.0 -a hi.js
  nanofs pkg localhost:5000/app:1.2 -o app_1.2.tar.gz`,
		Args: func(cmd *cobra.Command, args []string) error {
			// "nanofs pkg from-docker IMAGE", as ops users type it.
			if len(args) == 2 && args[0] == "from-docker" {
				return nil
			}
			if len(args) == 1 && args[0] == "from-docker" {
				return errors.New("pkg from-docker: name the IMAGE to package")
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				args = args[1:]
			}
			if cmd.Flags().Changed("size") {
				return errors.New("--size is a disk's size; a package has none")
			}
			install := o.out == "" || cmd.Flags().Changed("ops-home")
			return runPkg(cmd.Context(), g, args[0], &o, install)
		},
	}
	f := cmd.Flags()
	o.build.registerContent(f)
	_ = f.MarkHidden("size")
	f.StringArrayVarP(&o.build.args, "arg", "a", nil, "argument for the program, replacing the image's command (repeatable)")
	f.StringVar(&o.name, "name", "", "package name, NAME_VERSION (default: from the image, e.g. node_16.3.0)")
	f.StringVarP(&o.out, "output", "o", "", "write the package as this .tar.gz archive")
	f.StringVar(&o.opsHome, "ops-home", "", "ops directory to install into (default: $OPS_HOME/.ops or ~/.ops)")
	f.BoolVar(&o.json, "json", false, "print a summary as JSON on stdout")
	f.StringVar(&o.build.push, "push", "", "push the package archive to the registry as an OCI artifact at REF (REPO[:TAG]) referring to IMAGE")
	return cmd
}

func runPkg(ctx context.Context, g *globals, ref string, o *pkgOptions, install bool) error {
	opts, err := o.build.buildOpts(g, newProgress(g))
	if err != nil {
		return err
	}
	res, err := build.Build(ctx, ref, append(opts, build.WithPackage(o.name, o.out, install, o.opsHome))...)
	if err != nil {
		return flagError(err)
	}
	sum := res.PackageSummary()
	if o.json {
		return g.printJSON(sum)
	}
	reportFetched(g, res.Fetched)
	where := sum.Archive
	if sum.Installed != "" {
		where = sum.Installed
		if sum.Archive != "" {
			where = sum.Archive + " and " + sum.Installed
		}
	}
	g.logf("wrote %s: %s (%d files, %s), program %s, fetched %s, %.1fs",
		sum.Name, where, sum.Files, byteCount(sum.Bytes), sum.Manifest.Program, byteCount(sum.FetchedBytes), sum.Seconds)
	if sum.Installed != "" {
		g.logf("boot it with: ops pkg load -l %s", sum.Name)
	} else {
		g.logf("install it with: ops pkg add %s --name %s", sum.Archive, sum.Name)
	}
	return nil
}
