package main

import (
	"github.com/spf13/cobra"

	"github.com/nanofs/nanofs/vm/fslist"
)

func init() { verbs = append(verbs, newLsCmd) }

func newLsCmd(g *globals) *cobra.Command {
	var img imageFlags
	var recursive bool
	cmd := &cobra.Command{
		Use:   "ls IMAGE [PATH]",
		Short: "List a directory of an image, like ls -l, without pulling it",
		Long: `List PATH (default /) of IMAGE like "ls -l": type and permissions, link
count, owner and group ids, size, modification time (UTC), name and symlink
target. A directory lists its entries (symbolic links to directories are
followed); anything else lists itself.

IMAGE is a registry reference (node:20, registry.example.com/app@sha256:...,
Docker Hub by default), an OCI image layout directory, a docker-save tarball,
a directory or a Nanos disk image. Of an image only the index is read: its
manifest and config, the table of contents of eStargz layers, and other layers
in full (once: they are cached). With --verbose the bytes fetched are reported
per layer.`,
		Example: `  nanofs ls node:20 /usr/local/bin
  nanofs ls --platform linux/arm64 alpine:3.20 /etc
  nanofs ls -R ./oci-layout /app
  nanofs ls -v localhost:5000/app:latest`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/"
			if len(args) == 2 {
				p = args[1]
			}
			name, err := fslist.Path(p)
			if err != nil {
				return err
			}
			src, err := img.open(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			err = fslist.List(g.stdout, src.FS, name, fslist.Options{Format: fslist.Long, FollowDir: true, Recursive: recursive})
			if src.Image != nil {
				reportFetched(g, src.Image.Stats())
			}
			return err
		},
	}
	img.register(cmd.Flags())
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "list subdirectories too")
	return cmd
}
