package resolve

import (
	"debug/elf"
	"fmt"
)

// Option changes how Resolve works out a plan.
type Option func(*options)

type options struct {
	entry        string
	entrySet     bool
	args         []string
	argsSet      bool
	env          []string
	includes     []string
	extras       bool
	machine      elf.Machine
	nameservers  []string
	allowMissing bool
	hostname     string
	added        []Added
}

// DefaultNameservers is what a generated /etc/resolv.conf names: the DNS
// forwarder of QEMU's user-mode network, which `nanofs run` uses.
var DefaultNameservers = []string{"10.0.2.3"}

func newOptions(opts []Option) options {
	o := options{extras: true, nameservers: DefaultNameservers, hostname: DefaultHostname}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithEntry replaces the image's entrypoint with a program name (looked up
// in the image's PATH) or path, and drops the image's command, as
// `docker run --entrypoint` does: use it to skip a wrapper script that
// would exec the real program (a unikernel cannot exec).
func WithEntry(nameOrPath string) Option {
	return func(o *options) { o.entry, o.entrySet = nameOrPath, true }
}

// WithArgs replaces the image's command (Cmd): the arguments that follow
// the entrypoint.
func WithArgs(args ...string) Option {
	return func(o *options) { o.args, o.argsSet = append([]string(nil), args...), true }
}

// WithEnv sets environment variables (NAME=VALUE) over the image's Env.
// They reach the program, and PATH, LD_LIBRARY_PATH and LD_PRELOAD change
// what is found, as they would at run time.
func WithEnv(vars ...string) Option {
	return func(o *options) { o.env = append(o.env, vars...) }
}

// WithInclude adds the files matching each pattern (an absolute path in
// the image whose elements may hold path.Match wildcards; a matching
// directory is added whole) for what no header names: modules loaded with
// dlopen, a runtime's library directory, data files. Shared objects among
// them get their libraries resolved too.
func WithInclude(patterns ...string) Option {
	return func(o *options) { o.includes = append(o.includes, patterns...) }
}

// Added is an entry laid over the image from elsewhere (a local file a
// build adds): the file system Resolve reads has it already; the option
// says which paths those are and where they came from.
type Added struct {
	Path   string // absolute, canonical in the file system
	Src    string // where it came from (a host path), for the entry's reason
	Dir    bool   // a directory
	Merged bool   // a directory merged into the image's: only the added entries under it are added
}

// WithAdded makes the plan hold every added entry (sorted by path, as
// parents before children): a directory the image did not have whole, one
// merged into an image directory through its added entries, a link with
// what it leads to. Their reason is "added from SRC"; shared objects among
// them get their libraries resolved, as with WithInclude. An added link
// that leads to nothing is left out with a warning.
func WithAdded(entries ...Added) Option {
	return func(o *options) { o.added = append(o.added, entries...) }
}

// WithoutExtras leaves out the runtime extras (NSS modules, /etc files, CA
// certificates, resolv.conf, libgcc_s): the plan holds the program and
// what its loader loads, and nothing more.
func WithoutExtras() Option {
	return func(o *options) { o.extras = false }
}

// WithMachine requires the program to be built for machine m (the
// unikernel's architecture); any other is an *ArchError. By default the
// program's own machine is taken.
func WithMachine(m elf.Machine) Option {
	return func(o *options) { o.machine = m }
}

// WithNameservers sets the name servers of the generated /etc/resolv.conf
// (default DefaultNameservers).
func WithNameservers(addrs ...string) Option {
	return func(o *options) { o.nameservers = append([]string(nil), addrs...) }
}

// WithHostname sets the unikernel's host name: HOSTNAME in the
// environment and the generated /etc/hostname and /etc/hosts (default
// DefaultHostname).
func WithHostname(name string) Option {
	return func(o *options) { o.hostname = name }
}

// WithAllowMissing records libraries that cannot be found in
// Plan.Missing instead of failing.
func WithAllowMissing() Option {
	return func(o *options) { o.allowMissing = true }
}

// MachineForArch maps a Go or Debian architecture name (amd64, arm64, ...)
// to its ELF machine.
func MachineForArch(arch string) (elf.Machine, error) {
	switch arch {
	case "amd64", "x86_64", "x86-64":
		return elf.EM_X86_64, nil
	case "arm64", "aarch64":
		return elf.EM_AARCH64, nil
	case "386", "i386", "i686":
		return elf.EM_386, nil
	case "arm", "armhf", "armel":
		return elf.EM_ARM, nil
	case "riscv64":
		return elf.EM_RISCV, nil
	case "ppc64le", "ppc64el", "ppc64":
		return elf.EM_PPC64, nil
	case "s390x":
		return elf.EM_S390, nil
	}
	return elf.EM_NONE, fmt.Errorf("unknown architecture %q", arch)
}
