package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/nanofs/nanofs/vm/kernel"
	"github.com/spf13/cobra"
)

func init() { verbs = append(verbs, newKernelCmd) }

func newKernelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kernel",
		Short: "Get the Nanos kernel and bootloader that disk images are built from",
		Long: `nanofs needs the Nanos kernel (kernel.img) and BIOS bootloader (boot.img) to build
and boot disk images. It looks for them, in order: --kernel/--boot flags,
the NANOFS_KERNEL and NANOFS_BOOT environment variables, the nanofs cache
(filled by "nanofs kernel fetch"), and an ops install (~/.ops/<version>/).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newKernelFetchCmd(g), newKernelPathCmd(g))
	return cmd
}

func newKernelFetchCmd(g *globals) *cobra.Command {
	var version, arch, sha string
	var force bool
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Download an official Nanos release into the nanofs cache",
		Long: `Download the official Nanos release for the platform (the archive ops uses),
check it, and cache it under the user cache directory, so that later builds
and runs find it without network access. The latest release is fetched
unless --version says otherwise; a cached version is not downloaded again.
NANOFS_RELEASE_URL replaces the download location (a mirror).

On success it prints NANOFS_KERNEL=... and NANOFS_BOOT=... lines.`,
		Example: `  nanofs kernel fetch
  nanofs kernel fetch --version 0.1.52`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := []kernel.KernelOption{kernel.WithVersion(version), kernel.WithArch(arch), kernel.WithSHA256(sha)}
			if force {
				opts = append(opts, kernel.WithForce())
			}
			pr := newProgress(g)
			bar := pr.Bytes("Nanos kernel", 0)
			opts = append(opts, kernel.WithProgress(func(done, total int64) {
				bar.SetTotal(total)
				bar.Set(done)
			}))
			k, err := kernel.Fetch(cmd.Context(), opts...)
			pr.Done()
			if err != nil {
				return fmt.Errorf("kernel fetch: %w", err)
			}
			g.logf("Nanos %s is in %s", k.Version, filepath.Dir(k.Kernel))
			printKernel(g.stdout, k)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&version, "version", "", "Nanos release to fetch, e.g. 0.1.52 (default: the latest)")
	f.StringVar(&arch, "arch", "", "guest architecture: amd64 or arm64 (default: this machine's)")
	f.StringVar(&sha, "sha256", "", "expected SHA-256 of the release archive (hex)")
	f.BoolVar(&force, "force", false, "download again even if the version is cached")
	return cmd
}

func newKernelPathCmd(g *globals) *cobra.Command {
	var kernelImg, boot, version string
	cmd := &cobra.Command{
		Use:   "path",
		Short: "Print which kernel and bootloader builds and runs would use",
		Long: `Print the kernel.img and boot.img that would be used, as NANOFS_KERNEL=... and
NANOFS_BOOT=... lines (usable with eval), and where they were found on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := kernel.FindKernel(kernel.WithKernelFiles(kernelImg, boot), kernel.WithVersion(version))
			if err != nil {
				return flagError(err)
			}
			where := k.Source
			if k.Version != "" {
				where += ", version " + k.Version
			}
			g.logf("found in: %s", where)
			printKernel(g.stdout, k)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kernelImg, "kernel", "", "kernel.img to use")
	f.StringVar(&boot, "boot", "", "boot.img to use")
	f.StringVar(&version, "nanos-version", "", "Nanos release version to look for")
	return cmd
}

func printKernel(w io.Writer, k kernel.Kernel) {
	fmt.Fprintf(w, "%s=%s\n", kernel.EnvKernel, k.Kernel)
	if k.Boot != "" {
		fmt.Fprintf(w, "%s=%s\n", kernel.EnvBoot, k.Boot)
	}
}
