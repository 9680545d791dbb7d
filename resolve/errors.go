package resolve

import (
	"debug/elf"
	"errors"
	"fmt"
	"strings"
)

// ErrNoEntrypoint is returned when neither the image config nor the
// options name a program.
var ErrNoEntrypoint = errors.New("the image names no program (no Entrypoint or Cmd)")

// MissingLibraryError is a library the loader would not find.
type MissingLibraryError struct {
	Name     string   `json:"name"`               // the DT_NEEDED (or preload, or dlopen) name
	NeededBy string   `json:"neededBy"`           // the object that needs it
	Searched []string `json:"searched,omitempty"` // where the loader looks, in order: "DIR (source)"
	Rejected []string `json:"rejected,omitempty"` // files found but not loadable: "PATH: why"
}

func (e *MissingLibraryError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "library %s needed by %s not found in the image", e.Name, e.NeededBy)
	if len(e.Searched) > 0 {
		fmt.Fprintf(&b, " (searched %s)", strings.Join(e.Searched, ", "))
	} else if strings.Contains(e.Name, "/") {
		b.WriteString(" (a path: no search)")
	}
	if len(e.Rejected) > 0 {
		fmt.Fprintf(&b, "; rejected %s", strings.Join(e.Rejected, "; "))
	}
	return b.String()
}

// IncludeError is an include pattern (WithInclude) that cannot be used.
type IncludeError struct {
	Pattern string
	Err     error
}

// ErrNoMatch is an include pattern that matches nothing.
var ErrNoMatch = errors.New("matches nothing in the image")

func (e *IncludeError) Error() string {
	if errors.Is(e.Err, ErrNoMatch) {
		return fmt.Sprintf("include %s %v", e.Pattern, e.Err)
	}
	return fmt.Sprintf("include %s: %v", e.Pattern, e.Err)
}
func (e *IncludeError) Unwrap() error { return e.Err }

// maxListed is how many items of a long list an error message shows.
const maxListed = 20

// missingLibraries is every library not found: errors.As finds each
// *MissingLibraryError in it; the message lists the first maxListed and
// counts the rest, so that a broken image does not make a megabyte error.
type missingLibraries []*MissingLibraryError

func (m missingLibraries) Error() string {
	var b strings.Builder
	for i, e := range m {
		if i == maxListed {
			fmt.Fprintf(&b, "\n... and %d more missing libraries (%d in all)", len(m)-maxListed, len(m))
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (m missingLibraries) Unwrap() []error {
	errs := make([]error, len(m))
	for i, e := range m {
		errs[i] = e
	}
	return errs
}

// ArchError is a program built for another machine (or class) than the
// one wanted: the unikernel's.
type ArchError struct {
	Path    string
	Class   elf.Class
	Machine elf.Machine
	Want    elf.Machine
}

func (e *ArchError) Error() string {
	if e.Machine == e.Want {
		return fmt.Sprintf("%s is a %s %s program, but the target runs only %s programs (rebuild it as a %s program)",
			e.Path, className(e.Class), machineName(e.Machine), className(wantClass(e.Want)), className(wantClass(e.Want)))
	}
	return fmt.Sprintf("%s is a %s %s program, but the target is %s: the image is for another architecture (choose its %s variant)",
		e.Path, className(e.Class), machineName(e.Machine), machineName(e.Want), archOf(e.Want))
}

// archOf is the OCI platform architecture of a machine.
func archOf(m elf.Machine) string {
	switch m {
	case elf.EM_X86_64:
		return "linux/amd64"
	case elf.EM_AARCH64:
		return "linux/arm64"
	case elf.EM_386:
		return "linux/386"
	case elf.EM_ARM:
		return "linux/arm"
	case elf.EM_RISCV:
		return "linux/riscv64"
	case elf.EM_PPC64:
		return "linux/ppc64le"
	case elf.EM_S390:
		return "linux/s390x"
	}
	return machineName(m)
}

// ProgramError is an entrypoint that cannot be run.
type ProgramError struct {
	Path string
	Err  error
}

func (e *ProgramError) Error() string { return fmt.Sprintf("program %s: %v", e.Path, e.Err) }
func (e *ProgramError) Unwrap() error { return e.Err }
