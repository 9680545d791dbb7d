package build

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
)

// TestFailureOf: errors are sorted by what went wrong, through wrapping;
// a batch's failures and a bare cancellation say nothing one kind could.
func TestFailureOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Failure
	}{
		{"none", nil, FailureOther},
		{"plain", errors.New("disk full"), FailureOther},
		{"cancelled inside a library", fmt.Errorf("reading: %w", context.Canceled), FailureOther},
		{"network", fmt.Errorf("x: %w: %w", lazy.ErrNetwork, context.Canceled), FailureNetwork},
		{"too slow", &lazy.SlowError{}, FailureNetwork},
		{"unauthorized", fmt.Errorf("pull: %w", lazy.ErrUnauthorized), FailureUnauthorized},
		{"not found", fmt.Errorf("pull: %w", lazy.ErrNotFound), FailureNotFound},
		{"no entrypoint", fmt.Errorf("resolve: %w", resolve.ErrNoEntrypoint), FailureBadInput},
		{"platform", lazy.ErrPlatform, FailureBadInput},
		{"layer too large", lazy.ErrLayerTooLarge, FailureBadInput},
		{"missing library", &resolve.MissingLibraryError{Name: "libx.so.1"}, FailureBadInput},
		{"program", &resolve.ProgramError{Path: "/bin/x", Err: errors.New("not ELF")}, FailureBadInput},
		{"batch", &BatchError{Failed: []Item{{Image: "a", Err: lazy.ErrNotFound}}, Total: 2}, FailureOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, FailureOf(tc.err))
		})
	}
}
