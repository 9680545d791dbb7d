package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/nanofs/nanofs/vm"
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
	return cmd
}

// pkgSummary is what `nanofs pkg` reports.
type pkgSummary struct {
	Name         string             `json:"name"`
	Image        string             `json:"image"`
	Arch         string             `json:"arch"`
	Archive      string             `json:"archive,omitempty"`
	Installed    string             `json:"installed,omitempty"`
	Manifest     vm.PackageManifest `json:"manifest"`
	Files        int                `json:"files"`
	Bytes        int64              `json:"bytes"`
	FetchedBytes int64              `json:"fetched_bytes"`
	Seconds      float64            `json:"seconds"`
	Warnings     []string           `json:"warnings,omitempty"`
}

func runPkg(ctx context.Context, g *globals, ref string, o *pkgOptions, install bool) error {
	start := time.Now()
	opsHome := o.opsHome
	if install && opsHome == "" {
		h, err := vm.DefaultOpsHome()
		if err != nil {
			return err
		}
		opsHome = h
	}
	pkgName := o.name
	if pkgName == "" {
		pkgName = defaultPackageName(ref)
	}
	if err := vm.CheckPackageName(pkgName); err != nil {
		return err
	}
	in, err := prepareBuild(ctx, g, ref, &o.build)
	if err != nil {
		return err
	}
	defer in.img.Close()
	arch := in.img.ConfigFile().Architecture
	if len(in.klibs) > 0 {
		g.logf("warning: a package cannot carry klibs (%s): give them to ops (Klibs in its config)", strings.Join(in.klibs, ", "))
	}
	p, err := vm.NewPackage(in.manifest, pkgName, arch)
	if err != nil {
		return err
	}
	if len(p.Manifest.ManifestPassthrough) > 0 {
		keys, _ := json.Marshal(map[string]any{"ManifestPassthrough": p.Manifest.ManifestPassthrough})
		g.logf("warning: ops pkg load ignores a package's ManifestPassthrough (the working directory and other kernel keys): give them to ops in a config file (-c) as %s", keys)
	}
	sum := pkgSummary{Name: pkgName, Image: in.img.Name(), Arch: arch, Manifest: p.Manifest, Warnings: in.plan.Warnings}
	var info *vm.PackageInfo
	if o.out != "" {
		if info, err = p.WriteArchive(ctx, o.out, in.fsys, in.plan); err != nil {
			return err
		}
		sum.Archive = info.Path
	}
	if install {
		if info, err = p.Install(ctx, opsHome, in.fsys, in.plan); err != nil {
			return err
		}
		sum.Installed = info.Path
	}
	sum.Files, sum.Bytes = info.Files, info.Bytes
	sum.FetchedBytes, sum.Seconds = in.img.Stats().Bytes, time.Since(start).Seconds()
	if o.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	reportFetched(g, in.img)
	where := sum.Archive
	if sum.Installed != "" {
		where = sum.Installed
		if sum.Archive != "" {
			where = sum.Archive + " and " + sum.Installed
		}
	}
	g.logf("wrote %s: %s (%d files, %s), program %s, fetched %s, %.1fs",
		pkgName, where, sum.Files, byteCount(sum.Bytes), p.Manifest.Program, byteCount(sum.FetchedBytes), sum.Seconds)
	if sum.Installed != "" {
		g.logf("boot it with: ops pkg load -l %s", pkgName)
	} else {
		g.logf("install it with: ops pkg add %s --name %s", sum.Archive, pkgName)
	}
	return nil
}

// defaultPackageName names a package as ops does, NAME_TAG: node:16.3.0
// -> node_16.3.0, a digest reference -> name_<12 hex>, no tag -> _latest;
// a layout directory or tarball by its base name.
func defaultPackageName(ref string) string {
	if _, err := os.Stat(ref); err == nil {
		return strings.TrimSuffix(filepath.Base(filepath.Clean(ref)), filepath.Ext(ref)) + "_latest"
	}
	base, version := imageNameVersion(ref)
	return base + "_" + version
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
