package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/nanofs/nanofs/internal/fslist"
)

func init() { verbs = append(verbs, newCatCmd) }

func newCatCmd(g *globals) *cobra.Command {
	var img imageFlags
	cmd := &cobra.Command{
		Use:   "cat IMAGE PATH",
		Short: "Print a file of an image, fetching only that file",
		Long: `Print the file at PATH in IMAGE on stdout (symbolic links followed, inside
the image). Of an eStargz layer only the chunks of that file are fetched;
other layers are downloaded whole once and cached. IMAGE is a registry
reference, an OCI image layout directory or a docker-save tarball. With
--verbose the bytes fetched are reported per layer.`,
		Example: `  nanofs cat node:20 /etc/os-release
  nanofs cat -v localhost:5000/app:estargz /usr/bin/app > app`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := fslist.Path(args[1])
			if err != nil {
				return err
			}
			src, err := img.open(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			f, err := src.FS.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			info, err := f.Stat()
			if err != nil {
				return err
			}
			if !info.Mode().IsRegular() {
				return fmt.Errorf("%s: not a regular file (%v)", args[1], info.Mode().Type())
			}
			// Fetch and verify the whole file before the first byte goes
			// out: a corrupt chunk must not leave half a file on stdout.
			if src.Image != nil {
				if err := src.Image.Prefetch(cmd.Context(), []string{name}); err != nil {
					return fmt.Errorf("%s: %w (nothing written)", args[1], err)
				}
				defer reportFetched(g, src.Image.Stats())
			}
			_, err = io.CopyBuffer(g.stdout, f, make([]byte, 1<<20))
			return err
		},
	}
	img.register(cmd.Flags())
	return cmd
}
