package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/fslist"
)

func init() { verbs = append(verbs, newInspectCmd) }

type inspectOptions struct {
	cat      string
	manifest bool
	verify   bool
	boot     bool
}

func newInspectCmd(g *globals) *cobra.Command {
	var o inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect IMAGE [PATH]",
		Short: "List, print or check the files of a Nanos disk image or TFS volume",
		Long: `Read a Nanos disk image (its root filesystem, or with --boot its boot
filesystem) or a raw TFS volume. Without options, list the tree under PATH
(default /) like "ls -l": type and permissions, link count, size, path and
symlink target. --cat prints one file, --manifest prints the root tuple's keys
(program, arguments, environment, ...) as JSON, and --verify checks the image
against every rule of the Nanos image format, printing each problem with its
location (exit status 1 if there is any).`,
		Example: `  nanofs inspect app.img
  nanofs inspect app.img /etc
  nanofs inspect app.img --cat /etc/passwd
  nanofs inspect app.img --manifest
  nanofs inspect disk.img --verify`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 && (o.cat != "" || o.manifest || o.verify) {
				return errors.New("PATH is only for listing; --cat takes its own path")
			}
			return runInspect(g, args, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cat, "cat", "", "print the contents of this file")
	f.BoolVar(&o.manifest, "manifest", false, "print the root tuple's keys as JSON")
	f.BoolVar(&o.verify, "verify", false, "check the whole image against the format rules")
	f.BoolVar(&o.boot, "boot", false, "read the boot filesystem of a disk image instead of the root filesystem")
	cmd.MarkFlagsMutuallyExclusive("cat", "manifest", "verify")
	return cmd
}

func runInspect(g *globals, args []string, o inspectOptions) error {
	name := args[0]
	if o.verify {
		err := tfs.VerifyFile(name)
		var ve *tfs.VerifyError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				fmt.Fprintln(g.stdout, p)
			}
			return fmt.Errorf("%s: %d problems", name, len(ve.Problems))
		}
		if err != nil {
			return err
		}
		g.logf("%s: no problems found", name)
		return nil
	}

	part := tfs.RootPartition
	if o.boot {
		part = tfs.BootPartition
	}
	fsys, file, err := tfs.OpenFile(name, tfs.WithPartition(part))
	if err != nil {
		return err
	}
	defer file.Close()
	g.debugf("%s: TFS v%d at byte %d, %d bytes, label %q, UUID %s", name, fsys.Version(), fsys.Offset(), fsys.Size(), fsys.Label(), tfs.FormatUUID(fsys.UUID()))

	switch {
	case o.manifest:
		return g.printJSON(fsys.Manifest())
	case o.cat != "":
		return inspectCat(g, fsys, o.cat)
	}
	start, err := fslist.Path("/")
	if len(args) == 2 {
		start, err = fslist.Path(args[1])
	}
	if err != nil {
		return err
	}
	// A file, or a symlink shown as itself like ls -l does; a directory
	// with everything below it.
	return fslist.List(g.stdout, fsys, start, fslist.Options{Format: fslist.Brief, Recursive: true})
}

func inspectCat(g *globals, fsys *tfs.FS, p string) error {
	name, err := fslist.Path(p)
	if err != nil {
		return err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a directory", p)
	}
	_, err = io.Copy(g.stdout, f)
	return err
}
