package main

import (
	"github.com/nanofs/nanofs/fusefs"
	"github.com/spf13/cobra"
)

func init() { verbs = append(verbs, newUmountCmd) }

func newUmountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "umount DIR",
		Short: "Unmount a nanofs mount, also one whose server has died",
		Long: `Unmount the nanofs mount on DIR. This also clears a mount whose server was
killed (one that answers "transport endpoint is not connected"). The unmount
is lazy: programs still using the mount keep their open files and working
directory, everyone else sees the empty directory at once. DIR must hold a
nanofs mount; any other filesystem is left alone.`,
		Example: "  nanofs umount /mnt/x",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fusefs.Unmount(args[0]); err != nil {
				return err
			}
			g.debugf("unmounted %s", args[0])
			return nil
		},
	}
}
