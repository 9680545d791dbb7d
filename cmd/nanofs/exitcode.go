package main

import (
	"context"
	"errors"

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

var exitCodes = map[build.Failure]int{
	build.FailureOther: exitFailure, build.FailureBadInput: exitBadInput, build.FailureNotFound: exitNotFound,
	build.FailureNetwork: exitNetwork, build.FailureUnauthorized: exitUnauthorized,
}

// exitCode maps a verb's error to the process exit code. Interrupted means
// the user's signal cancelled ctx, not any cancellation inside a library.
func exitCode(ctx context.Context, err error) int {
	var batch *build.BatchError
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil && errors.Is(err, context.Canceled) && !errors.As(err, &batch):
		return exitInterrupted
	}
	return exitCodes[build.FailureOf(err)]
}
