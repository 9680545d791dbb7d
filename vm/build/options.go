package build

import (
	"debug/elf"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm/artifact"
	"github.com/nanofs/nanofs/vm/disk"
	"github.com/nanofs/nanofs/vm/opsconfig"
)

// Option changes what Build builds.
type Option func(*options)

type options struct {
	// What goes into the disk.
	entry      string
	args       []string
	argsSet    bool
	env        []string
	includes   []string
	dns        []string
	workdir    string
	adds       []string
	overwrite  bool
	noAutoAdd  bool
	configFile string
	config     *opsconfig.Config
	// configApplied: config has been laid under the other options.
	configApplied bool
	cwd           string

	// Where it goes.
	output       string
	size         string
	kernel, boot string
	version      string
	noBootloader bool
	pkg          *pkgOptions

	imageOpts   []lazy.Option
	machine     elf.Machine // the target Build checks the program against (EM_NONE: none)
	resolveOpts []resolve.Option
	logf        func(string, ...any)
	debugf      func(string, ...any)
	progress    func(Progress)
	parallel    int

	// The registry as a store of built disks (publish.go).
	push         string
	reuse        bool
	registryOpts []artifact.Option
	toolVersion  string
}

type pkgOptions struct {
	name    string
	archive string // write a .tar.gz here ("" for none)
	install bool   // install into opsHome
	opsHome string // "" for vm.DefaultOpsHome
}

func newOptions(opts []Option) *options {
	o := &options{parallel: disk.DefaultParallel}
	for _, opt := range opts {
		opt(o)
	}
	if o.logf == nil {
		o.logf = func(string, ...any) {}
	}
	if o.debugf == nil {
		o.debugf = func(string, ...any) {}
	}
	if o.progress == nil {
		o.progress = func(Progress) {}
	}
	return o
}

// WithEntry runs this program (a name looked up in the image's PATH, or a
// path) instead of the image's entrypoint and command.
func WithEntry(nameOrPath string) Option { return func(o *options) { o.entry = nameOrPath } }

// WithArgs replaces the image's command (and the config's Args) with
// these arguments; with none given the config's or the image's stay.
func WithArgs(args ...string) Option {
	return func(o *options) { o.args, o.argsSet = append([]string(nil), args...), len(args) > 0 }
}

// WithEnv sets NAME=VALUE over the image's Env and the config's.
func WithEnv(vars ...string) Option { return func(o *options) { o.env = append(o.env, vars...) } }

// WithInclude also copies the files matching these absolute globs.
func WithInclude(patterns ...string) Option {
	return func(o *options) { o.includes = append(o.includes, patterns...) }
}

// WithNameservers sets the name servers of a generated /etc/resolv.conf.
func WithNameservers(addrs ...string) Option {
	return func(o *options) { o.dns = append(o.dns, addrs...) }
}

// WithWorkdir sets the program's working directory in the unikernel, an
// absolute path in the image, over the image's WorkingDir.
func WithWorkdir(dir string) Option { return func(o *options) { o.workdir = dir } }

// WithAdd copies local files or directories into the image, each given as
// SRC[:DST] (content.ParseAdd).
func WithAdd(specs ...string) Option { return func(o *options) { o.adds = append(o.adds, specs...) } }

// WithOverwrite lets added files replace the image's at their paths.
func WithOverwrite() Option { return func(o *options) { o.overwrite = true } }

// WithoutAutoAdd leaves the local files the program's arguments name
// where they are.
func WithoutAutoAdd() Option { return func(o *options) { o.noAutoAdd = true } }

// WithConfigFile reads an ops config.json; the other options win over
// what it says.
func WithConfigFile(path string) Option { return func(o *options) { o.configFile = path } }

// WithConfig takes an ops config already read from file (whose directory
// MapDirs are relative to).
func WithConfig(c *opsconfig.Config, file string) Option {
	return func(o *options) { o.config, o.configFile = c, file }
}

// WithHostDir sets the host directory that relative local paths (added
// files, arguments naming files) start from (default: the process's).
func WithHostDir(dir string) Option { return func(o *options) { o.cwd = dir } }

// WithOutput names the disk to write (default DefaultDiskName).
func WithOutput(path string) Option { return func(o *options) { o.output = path } }

// WithSize sets the disk size, such as 512M (tfs.ParseSize).
func WithSize(size string) Option { return func(o *options) { o.size = size } }

// WithKernelFiles names the Nanos img and boot.img (either may be
// "": searched for).
func WithKernelFiles(kernel, boot string) Option {
	return func(o *options) { o.kernel, o.boot = kernel, boot }
}

// WithNanosVersion picks a Nanos release from the cache or an ops install.
func WithNanosVersion(v string) Option { return func(o *options) { o.version = v } }

// WithoutBootloader writes only the root filesystem behind a partition
// table, for direct kernel boot: no kernel is looked for.
func WithoutBootloader() Option { return func(o *options) { o.noBootloader = true } }

// WithPackage makes an ops package called name (default
// DefaultPackageName) instead of a disk: written as the .tar.gz archive
// (if not "") and installed into the ops home when install is set (""
// for vm.DefaultOpsHome).
func WithPackage(name, archive string, install bool, opsHome string) Option {
	return func(o *options) {
		o.pkg = &pkgOptions{name: name, archive: archive, install: install, opsHome: opsHome}
	}
}

// WithImageOptions are passed to lazy.Open.
func WithImageOptions(opts ...lazy.Option) Option {
	return func(o *options) { o.imageOpts = append(o.imageOpts, opts...) }
}

// WithResolveOptions are passed to resolve.Resolve after the others
// (resolve.WithMachine, say).
func WithResolveOptions(opts ...resolve.Option) Option {
	return func(o *options) { o.resolveOpts = append(o.resolveOpts, opts...) }
}

// WithLog receives what a user wants to know (warnings, files added from
// the working directory) and, with debug, more detail; either may be nil.
func WithLog(info, debug func(format string, a ...any)) Option {
	return func(o *options) { o.logf, o.debugf = info, debug }
}

// WithProgress receives the build's progress: each phase as it starts,
// bytes fetched while the image opens, and every file written. It is
// called from several goroutines at once.
func WithProgress(f func(Progress)) Option { return func(o *options) { o.progress = f } }

// Phase is a step of a build.
type Phase int

// The phases of a build, in order.
const (
	PhaseOpen    Phase = iota // reading the image's manifest, config and indexes
	PhaseResolve              // working out the plan
	PhaseWrite                // writing the disk or package
	PhaseDone                 // finished (or failed)
)

// Progress is what WithProgress receives.
type Progress struct {
	Phase   Phase
	Image   string            // the source as given
	Fetched int64             // bytes received from the image's source so far
	Layers  []lazy.LayerStats // per layer (PhaseWrite)
	Need    int64             // PhaseWrite: bytes of the plan's files
	Written int               // PhaseWrite: files written so far
	Files   int               // PhaseWrite: files to write
}
