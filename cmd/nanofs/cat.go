package main

import (
	"github.com/spf13/cobra"
)

func init() { verbs = append(verbs, newCatCmd) }

func newCatCmd(g *globals) *cobra.Command {
	var img imageFlags
	cmd := &cobra.Command{
		Use:   "cat IMAGE PATH",
		Short: "Print a file of an image, fetching only that file",
		Long: `Print the file at PATH in IMAGE on stdout (symbolic links followed, inside
the image). Of an eStargz layer only the chunks of that file are fetched;
other layers are downloaded whole once and cached. IMAGE is anything "nanofs
ls" takes. With --verbose the bytes fetched are reported per layer.`,
		Example: `  nanofs cat node:20 /etc/os-release
  nanofs cat -v localhost:5000/app:estargz /usr/bin/app > app`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := img.open(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			err = src.CopyFile(cmd.Context(), g.stdout, args[1])
			if src.Image != nil {
				reportFetched(g, src.Image.Stats())
			}
			return err
		},
	}
	img.register(cmd.Flags())
	return cmd
}
