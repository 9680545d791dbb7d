package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nanofs/nanofs/vm/artifact"
	"github.com/nanofs/nanofs/vm/build"
)

func init() { verbs = append(verbs, newPullCmd) }

type pullOptions struct {
	out      string
	insecure bool
	json     bool
}

func newPullCmd(g *globals) *cobra.Command {
	var o pullOptions
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Fetch the disk image of a unikernel pushed with build --push",
		Long: `Fetch the Nanos disk image that "nanofs build --push" stored in a registry as
an OCI artifact (artifactType ` + artifact.ArtifactType + `), verified against
its digest. REF names the artifact (its tag, or REPO@DIGEST); "nanofs run REF"
boots it directly.`,
		Example: `  nanofs pull registry.example.com/app:1.2-nanofs -o app.img`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPull(cmd.Context(), g, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "output", "o", "", "disk image to write (default: from the reference, e.g. app-1.2-nanofs.img)")
	f.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP and TLS certificates that do not verify (localhost registries need no flag)")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON on stdout")
	return cmd
}

func runPull(ctx context.Context, g *globals, ref string, o pullOptions) error {
	out := o.out
	if out == "" {
		out = build.DefaultDiskName(ref)
	}
	var opts []artifact.Option
	if o.insecure {
		opts = append(opts, artifact.WithInsecure())
	}
	p, err := artifact.Pull(ctx, ref, out, opts...)
	if err != nil {
		return err
	}
	if o.json {
		return g.printJSON(p)
	}
	g.logf("wrote %s: %s from %s (%s %s)", p.Output, byteCount(p.Bytes), p.Ref,
		p.Annotations[artifact.AnnotationProgram], strings.Trim(p.Annotations[artifact.AnnotationArguments], "[]"))
	return nil
}
