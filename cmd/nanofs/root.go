package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/nanofs/nanofs/vm"
	"github.com/nanofs/nanofs/vm/build/progress"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// globals are the flags every verb shares.
type globals struct {
	verbose bool
	quiet   bool
	stdout  io.Writer
	stderr  io.Writer
}

// exitError lets a verb choose the process exit code (for example the
// guest's exit code in `nanofs run`) without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// verb constructors register here, one file per verb.
var verbs []func(*globals) *cobra.Command

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "nanofs",
		Short: "Turn Docker/OCI images into bootable Nanos unikernels, lazily and without a Docker daemon",
		Long: `nanofs reads an image straight from its registry (or an OCI layout or docker-save
tarball), fetches only the bytes it needs, finds the program and every file it
loads by reading ELF headers, and writes a bootable Nanos disk image.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetVersionTemplate("nanofs {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "print more detail (bytes fetched, files resolved) on stderr")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print only errors")
	root.MarkFlagsMutuallyExclusive("verbose", "quiet")
	for _, v := range verbs {
		root.AddCommand(v(g))
	}
	return root
}

// run executes the CLI and returns the process exit code. Errors go to
// stderr, prefixed with the program name; output goes to stdout only.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "nanofs: %v\n", flagError(err))
	return exitCode(ctx, err)
}

// logf prints a progress or detail line on stderr unless --quiet.
func (g *globals) logf(format string, a ...any) {
	if g.quiet {
		return
	}
	fmt.Fprintf(g.stderr, format+"\n", flagArgs(a)...)
}

// debugf prints only with --verbose.
func (g *globals) debugf(format string, a ...any) {
	if !g.verbose {
		return
	}
	fmt.Fprintf(g.stderr, format+"\n", flagArgs(a)...)
}

// flagArgs says the options a library names in its messages
// (vm.OptionName) with their flags.
func flagArgs(a []any) []any {
	out := slices.Clone(a)
	for i, x := range a {
		if name, ok := x.(vm.OptionName); ok && flagHints[string(name)] != "" {
			out[i] = flagHints[string(name)]
		}
	}
	return out
}

// newProgress returns the verb's progress bars on stderr: only on a
// terminal, and never with --quiet.
func newProgress(g *globals) *progress.Bars {
	if g.quiet {
		return nil
	}
	return progress.OnTerminal(g.stderr)
}

// printJSON prints v on stdout as indented JSON, with <, > and & as they
// are (arguments are shell text, not HTML).
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
