package build

import (
	"errors"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
)

// Failure is the kind of thing that went wrong, for a caller that tells
// a failure worth retrying (network) from one that needs another input
// (the CLI's exit codes).
type Failure int

const (
	FailureOther        Failure = iota // anything else, or a batch's images that failed for different reasons
	FailureBadInput                    // the image or the options cannot make a unikernel
	FailureNotFound                    // the image (or a blob of it) does not exist
	FailureNetwork                     // the registry could not be reached, kept failing, or was too slow
	FailureUnauthorized                // the registry refused the credentials
)

// FailureOf sorts err. A cancellation is FailureOther unless the network
// failed too: only the caller knows whether its user interrupted.
func FailureOf(err error) Failure {
	var (
		arch    *resolve.ArchError
		prog    *resolve.ProgramError
		missing *resolve.MissingLibraryError
		slow    *lazy.SlowError
		batch   *BatchError
	)
	switch {
	case err == nil, errors.As(err, &batch):
		return FailureOther
	case errors.Is(err, lazy.ErrNetwork) || errors.As(err, &slow):
		return FailureNetwork
	case errors.Is(err, lazy.ErrUnauthorized):
		return FailureUnauthorized
	case errors.Is(err, lazy.ErrNotFound):
		return FailureNotFound
	case errors.As(err, &arch) || errors.As(err, &prog) || errors.As(err, &missing) ||
		errors.Is(err, resolve.ErrNoEntrypoint) || errors.Is(err, lazy.ErrPlatform) || errors.Is(err, lazy.ErrLayerTooLarge):
		return FailureBadInput
	}
	return FailureOther
}
