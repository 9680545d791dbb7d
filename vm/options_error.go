package vm

import "fmt"

// Options of the library that a user sets, named in an OptionError. The
// CLI maps each to its flag.
const (
	OptionAdd     = "add"     // a local file to add, SRC[:DST]
	OptionConfig  = "config"  // an ops config file
	OptionWorkdir = "workdir" // the program's working directory
	OptionSize    = "size"    // the disk size
	OptionAccel   = "accel"   // the VM's accelerator
	OptionVMM     = "vmm"     // the virtual machine monitor

	OptionOverwrite = "overwrite" // added files may replace the image's

	// Options named only in remedies (RemedyOf in vm/build).
	OptionEntry        = "entry"          // the program to run
	OptionEnv          = "env"            // the program's environment
	OptionInclude      = "include"        // a glob of image files to add
	OptionBoot         = "boot"           // the bootloader file
	OptionKernel       = "kernel"         // the kernel file
	OptionPlatform     = "platform"       // the image's platform
	OptionMaxExpansion = "max-expansion"  // the bound on a layer's expansion ratio
	OptionMaxLayerSize = "max-layer-size" // the bound on a layer's expanded size
	OptionMinRate      = "min-rate"       // the slowest a blob may arrive
)

// OptionName is an option named inside a log line: it prints as the
// library's name of the option, and a CLI's log function may print its
// flag instead (cmd/nanofs does), as it does for an OptionError.
type OptionName string

// OptionError is a bad value of an option the caller set. Its message
// names the option by its library name; a CLI can say it with its flag
// (Flagged).
type OptionError struct {
	Option string // one of the Option* names
	Value  string // as given; "" when the error says it
	Err    error
}

func (e *OptionError) Error() string { return e.Flagged(e.Option) }

// Flagged is the message with the option called name (a flag, say).
func (e *OptionError) Flagged(name string) string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %v", name, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", name, e.Value, e.Err)
}

func (e *OptionError) Unwrap() error { return e.Err }

// ByteCount renders n in binary units (1.5 MiB).
func ByteCount(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
