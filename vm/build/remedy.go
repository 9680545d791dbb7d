package build

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm"
	"github.com/nanofs/nanofs/vm/content"
	"github.com/nanofs/nanofs/vm/kernel"
)

// A Remedy says what to do about an error, naming the options to set
// (vm.Option*) through flag, so that a CLI says them with its flags.
type Remedy struct {
	// Old is the part of the error's message that Say replaces; "" adds
	// Say after the message, in parentheses.
	Old string
	Say func(flag func(option string) string) string
}

// RemedyOf lists the remedies for err, in the order to apply them (none
// for an error no option helps with).
func RemedyOf(err error) []Remedy {
	var rs []Remedy
	add := func(old string, say func(flag func(string) string) string) {
		rs = append(rs, Remedy{Old: old, Say: say})
	}
	hint := func(say func(flag func(string) string) string) { add("", say) }
	var oe *vm.OptionError
	if errors.As(err, &oe) {
		add(oe.Error(), func(flag func(string) string) string { return oe.Flagged(flag(oe.Option)) })
		if oe.Option == vm.OptionVMM {
			hint(func(flag func(string) string) string { return "use " + flag(vm.OptionVMM) + " qemu" })
		}
	}
	var supply *kernel.SupplyError
	if errors.As(err, &supply) {
		add(supply.Error(), func(flag func(string) string) string {
			return supply.Flagged(fmt.Sprintf("(or pass %s and %s)", flag(vm.OptionKernel), flag(vm.OptionBoot)))
		})
	}
	var (
		ce   *content.CollisionError
		nb   *NoBootError
		slow *lazy.SlowError
		we   *resolve.WrapperError
		ie   *resolve.IncludeError
		ml   *resolve.MissingLibraryError
	)
	switch {
	case errors.As(err, &ie):
		add(ie.Error(), func(flag func(string) string) string { return flag(vm.OptionInclude) + ie.Error()[len("include"):] })
	case errors.Is(err, resolve.ErrNoEntrypoint):
		msg := resolve.ErrNoEntrypoint.Error()
		add(msg, func(flag func(string) string) string { return msg + ": name one with " + flag(vm.OptionEntry) })
	case errors.As(err, &ml):
		hint(func(flag func(string) string) string {
			return fmt.Sprintf("if the program finds it by other means (a wrapper script setting LD_LIBRARY_PATH), set that variable with %s or add the file with %s GLOB",
				flag(vm.OptionEnv), flag(vm.OptionInclude))
		})
	case errors.As(err, &we):
		add(we.Error(), func(flag func(string) string) string {
			return we.Error() + " with " + flag(vm.OptionEntry) + " PROGRAM"
		})
	case errors.As(err, &ce):
		hint(func(flag func(string) string) string { return flag(vm.OptionOverwrite) + " replaces it" })
	case errors.As(err, &nb):
		add(nb.Error(), func(flag func(string) string) string {
			return fmt.Sprintf("found the kernel %s (from %s) but no boot.img: pass %s or set %s", nb.Kernel.Kernel, nb.Kernel.Source, flag(vm.OptionBoot), kernel.EnvBoot)
		})
	case errors.Is(err, lazy.ErrPlatform):
		hint(func(flag func(string) string) string { return "choose one with " + flag(vm.OptionPlatform) })
	case errors.Is(err, lazy.ErrLayerTooLarge):
		hint(func(flag func(string) string) string {
			return fmt.Sprintf("raise the bound with %s or %s if the layer is genuine", flag(vm.OptionMaxExpansion), flag(vm.OptionMaxLayerSize))
		})
	case errors.As(err, &slow):
		hint(func(flag func(string) string) string {
			return "lower " + flag(vm.OptionMinRate) + ", or 0 to wait for ever, if the link is just slow"
		})
	case errors.Is(err, ErrNoConfig):
		add(ErrNoConfig.Error(), func(flag func(string) string) string {
			return "a directory has no image config: name the program with " + flag(vm.OptionEntry)
		})
	}
	return rs
}

// Reword returns err with its remedies (RemedyOf) in its message, options
// named through flag; errors.Is and errors.As still see err. An error
// Reword returned is left as it is, so a caller may reword wherever an
// error surfaces without saying a remedy twice.
func Reword(err error, flag func(option string) string) error {
	var done *rewordedError
	if err == nil || errors.As(err, &done) {
		return err
	}
	for _, r := range RemedyOf(err) {
		msg := err.Error() + " (" + r.Say(flag) + ")"
		if r.Old != "" {
			msg = strings.Replace(err.Error(), r.Old, r.Say(flag), 1)
		}
		err = &rewordedError{msg: msg, err: err}
	}
	return err
}

// rewordedError is an error whose message Reword rewrote.
type rewordedError struct {
	msg string
	err error
}

func (e *rewordedError) Error() string { return e.msg }
func (e *rewordedError) Unwrap() error { return e.err }
