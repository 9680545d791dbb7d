package build

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm"
)

// TestRemedyOf: a remedy names its options through the caller's words for
// them, and rewrites the part of the message it says it does.
func TestRemedyOf(t *testing.T) {
	flag := func(option string) string { return "<" + option + ">" }
	apply := func(err error) string {
		msg := err.Error()
		for _, r := range RemedyOf(err) {
			if r.Old == "" {
				msg += " (" + r.Say(flag) + ")"
			} else {
				msg = strings.Replace(msg, r.Old, r.Say(flag), 1)
			}
		}
		return msg
	}
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
			assert.Equal(t, tc.want, apply(tc.err))
		})
	}
}
