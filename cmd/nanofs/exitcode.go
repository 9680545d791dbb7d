package main

import (
	"context"
	"errors"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm/build"
)

// Exit codes, documented in the README: scripts tell a failure worth
// retrying (network) from one that needs another input.
const (
	exitFailure      = 1   // anything else
	exitBadInput     = 2   // the image or the arguments cannot make a unikernel
	exitNotFound     = 3   // the image (or a blob of it) does not exist
	exitNetwork      = 4   // the registry could not be reached, kept failing, or was too slow
	exitUnauthorized = 5   // the registry refused the credentials
	exitInterrupted  = 130 // Ctrl-C or SIGTERM, as shells report SIGINT
)

// exitCode maps a verb's error to the process exit code. Interrupted means
// the user's signal cancelled ctx, not any cancellation inside a library.
func exitCode(ctx context.Context, err error) int {
	var (
		arch    *resolve.ArchError
		prog    *resolve.ProgramError
		missing *resolve.MissingLibraryError
		slow    *lazy.SlowError
		batch   *build.BatchError
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &batch): // images failed for different reasons: no one code says it
		return exitFailure
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, lazy.ErrNetwork) || errors.As(err, &slow):
		return exitNetwork
	case errors.Is(err, lazy.ErrUnauthorized):
		return exitUnauthorized
	case errors.Is(err, lazy.ErrNotFound):
		return exitNotFound
	case errors.As(err, &arch) || errors.As(err, &prog) || errors.As(err, &missing) ||
		errors.Is(err, resolve.ErrNoEntrypoint) || errors.Is(err, lazy.ErrPlatform) || errors.Is(err, lazy.ErrLayerTooLarge):
		return exitBadInput
	}
	return exitFailure
}
