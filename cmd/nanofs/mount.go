package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nanofs/nanofs/fusefs"
	"github.com/spf13/cobra"
)

func init() { verbs = append(verbs, newMountCmd) }

func newMountCmd(g *globals) *cobra.Command {
	var (
		background bool
		prefetch   bool
		images     imageFlags
	)
	cmd := &cobra.Command{
		Use:   "mount SOURCE DIR",
		Short: "Mount SOURCE read-only on the empty directory DIR (FUSE)",
		Long: `Mount SOURCE read-only on DIR, an empty directory, with FUSE. SOURCE is an
image (a registry reference such as node:16.3.0, an OCI layout directory or a
docker-save tarball: its layers merged), a directory, or a Nanos disk image
(its root filesystem). Nothing is read ahead: a directory is read when
something lists it, a file's bytes are fetched when something reads them.

The mount lasts until Ctrl-C (or SIGTERM), or until "nanofs umount DIR".
With --background the server detaches, and its pid is printed once the mount
is ready.`,
		Example: `  nanofs mount node:16.3.0 /mnt/x
  nanofs mount ./rootfs /mnt/x
  nanofs mount node.img /mnt/y
  nanofs mount --background ./rootfs /mnt/x && ls /mnt/x && nanofs umount /mnt/x`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if background && !fusefs.IsServer() {
				return mountBackground(cmd.Context(), g, args[1])
			}
			return mountForeground(cmd.Context(), g, &images, prefetch, args[0], args[1])
		},
	}
	cmd.Flags().BoolVar(&background, "background", false, "detach once the mount is ready and print the server's pid")
	cmd.Flags().BoolVar(&prefetch, "prefetch", false, "images: fetch the entrypoint and every file it needs in the background once mounted")
	images.register(cmd.Flags())
	return cmd
}

func mountForeground(ctx context.Context, g *globals, images *imageFlags, prefetch bool, src, dir string) (err error) {
	ready := fusefs.TakeReady()
	defer func() { ready.Report(err) }()

	source, err := images.open(ctx, g, src)
	if err != nil {
		return err
	}
	defer source.Close()
	srv, err := fusefs.Mount(dir, source.FS, fusefs.WithSource(source.MountName()))
	if err != nil {
		return err
	}
	g.logf("mounted %s on %s (Ctrl-C or `nanofs umount %s` unmounts it)", src, srv.Dir(), dir)
	ready.Report(nil)
	if source.Image != nil && prefetch {
		go func() {
			plan, err := source.PrefetchProgram(ctx)
			if err != nil && ctx.Err() == nil {
				g.logf("prefetch: %v", err)
			} else if err == nil {
				g.debugf("prefetched %d files (%s) that %s needs", len(plan.ImageFiles()), byteCount(plan.Size()), plan.Program)
			}
		}()
	}

	_, err = srv.ServeUntil(ctx, func() {
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		g.logf("%s is busy: detached it; serving the programs still inside until they leave (interrupt again to stop now)", srv.Dir())
	})
	if err != nil {
		return err
	}
	g.debugf("unmounted %s", srv.Dir())
	return nil
}

// mountBackground starts this same command again as a detached server and
// returns once that server reports the mount ready, or why it could not.
func mountBackground(ctx context.Context, g *globals, dir string) error {
	if !hasFlag(os.Args[1:], "background") {
		return errors.New("--background needs the nanofs command line (os.Args) to start the server from")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--background: finding this program: %w", err)
	}
	pid, err := fusefs.StartServer(ctx, exe, os.Args[1:])
	if err != nil {
		return err
	}
	if pid <= 0 {
		return fmt.Errorf("the mount server reported ready but its pid is unknown (%d)", pid)
	}
	g.logf("mounted on %s, server pid %d (`nanofs umount %s` unmounts it)", dir, pid, dir)
	fmt.Fprintln(g.stdout, pid)
	return nil
}

// hasFlag reports whether the long flag --name appears in args.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}
