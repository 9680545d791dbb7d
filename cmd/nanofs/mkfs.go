package main

import (
	"errors"
	"fmt"

	"github.com/nanofs/nanofs/tfs"
	"github.com/spf13/cobra"
)

func init() { verbs = append(verbs, newMkfsCmd) }

type mkfsOptions struct {
	output    string
	program   string
	args      []string
	env       []string
	cwd       string
	label     string
	seed      string
	freeSpace string
}

func newMkfsCmd(g *globals) *cobra.Command {
	var o mkfsOptions
	cmd := &cobra.Command{
		Use:   "mkfs DIR -o IMAGE",
		Short: "Write a Nanos root filesystem (TFS volume) holding the tree of a local directory",
		Long: `Write a Nanos TFS volume holding everything under DIR: directories, regular
files, symlinks and hard links (devices, FIFOs and sockets are skipped with a
warning). The root tuple gets the program to run, its arguments, environment
and working directory. The result is a raw volume, the root filesystem part of
a Nanos disk image; the same inputs always give the same bytes.

IMAGE is written to a temporary file next to it and renamed into place only
when complete.`,
		Example: `  nanofs mkfs ./rootfs -o app.img --program /bin/app -a --port -a 8080 -e HOME=/
  nanofs inspect app.img`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMkfs(cmd, g, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "image file to write (required)")
	f.StringVar(&o.program, "program", "", "path of the program inside DIR that Nanos runs")
	f.StringArrayVarP(&o.args, "arg", "a", nil, "append an argument after the program path (repeatable)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable, NAME=VALUE (repeatable)")
	f.StringVar(&o.cwd, "cwd", "", "initial working directory of the program")
	f.StringVar(&o.label, "label", "", fmt.Sprintf("volume label (at most %d bytes)", tfs.MaxLabelLen))
	f.StringVar(&o.seed, "seed", "", "seed the volume UUID is derived from (images differing only in UUID need different seeds)")
	f.StringVar(&o.freeSpace, "free-space", "1MiB", "free space to leave after the data for the kernel's log (e.g. 64MiB)")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func runMkfs(cmd *cobra.Command, g *globals, dir string, o mkfsOptions) error {
	free, err := tfs.ParseFreeSpace(o.freeSpace)
	if err != nil {
		return fmt.Errorf("--free-space: %w", err)
	}
	env, err := tfs.ParseEnv(o.env)
	if err != nil {
		return fmt.Errorf("--env %w", err)
	}
	if len(o.args) > 0 && o.program == "" {
		return errors.New("--arg needs --program (the argument vector starts with the program path)")
	}
	info, err := tfs.WriteDirVolume(cmd.Context(), dir, o.output, tfs.DirVolume{
		Program: o.program, Args: o.args, Env: env, Cwd: o.cwd, Label: o.label, Seed: []byte(o.seed), FreeSpace: free,
		Skipped: func(name, what string) {
			g.logf("mkfs: skipping /%s: %s cannot be stored in a Nanos filesystem", name, what)
		},
		Left: func(names []string) {
			g.debugf("mkfs: leaving out %v: the image being written lies inside %s", names, dir)
		},
	})
	if err != nil {
		return err
	}
	g.logf("wrote %s: %d bytes, UUID %s", o.output, info.Size, tfs.FormatUUID(info.UUID))
	return nil
}
