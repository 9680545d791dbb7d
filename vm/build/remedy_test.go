package build

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm"
)

// TestReword: a remedy (RemedyOf) names its options through the caller's
// words for them and rewrites the part of the message it says it does;
// rewording again changes nothing, and the error is still the library's.
func TestReword(t *testing.T) {
	flag := func(option string) string { return "<" + option + ">" }
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"none", errors.New("disk full"), "disk full"},
		{"platform", fmt.Errorf("open x: %w", lazy.ErrPlatform), "open x: " + lazy.ErrPlatform.Error() + " (choose one with <platform>)"},
		{"option", &vm.OptionError{Option: vm.OptionVMM, Value: "xen", Err: errors.New("unknown")}, "<vmm> xen: unknown (use <vmm> qemu)"},
		{"no entrypoint", fmt.Errorf("resolve: %w", resolve.ErrNoEntrypoint), "resolve: " + resolve.ErrNoEntrypoint.Error() + ": name one with <entry>"},
		{"include", &resolve.IncludeError{Pattern: "/x/*", Err: resolve.ErrNoMatch}, "<include> /x/* " + resolve.ErrNoMatch.Error()},
		{"directory", fmt.Errorf("/srv: %w", ErrNoConfig), "/srv: a directory has no image config: name the program with <entry>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Reword(tc.err, flag)
			assert.Equal(t, tc.want, got.Error())
			assert.Equal(t, tc.want, Reword(got, flag).Error(), "reworded twice")
			assert.ErrorIs(t, got, tc.err)
		})
	}
}
