package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FSType is the filesystem type of every fusefs mount in the mount table
// ("fuse." + the subtype).
const FSType = "fuse.nanofs"

var (
	// ErrBadMountpoint: the mount point is missing, not a directory, or not
	// empty.
	ErrBadMountpoint = errors.New("the mount point must be an empty directory")
	// ErrNoFuseDevice: the kernel offers no FUSE device.
	ErrNoFuseDevice = errors.New("/dev/fuse is missing: load the fuse kernel module (modprobe fuse), or give the container the device (--device /dev/fuse)")
	// ErrNoFusermount: mounting or unmounting needs the fusermount3 helper.
	ErrNoFusermount = errors.New("fusermount3 not found: install fuse3 (apt-get install fuse3)")
	// ErrNotMounted: Unmount was given a directory with no nanofs mount on it.
	ErrNotMounted = errors.New("no nanofs mount there")
)

// Option configures Mount.
type Option func(*options)

type options struct {
	timeout    time.Duration
	source     string
	allowOther bool
}

// WithTimeout sets how long the kernel may cache names, attributes and
// failed lookups before asking again (default one hour: an image never
// changes; use a short one for a directory that may).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithSource names what is mounted, for the mount table ("source" column of
// findmnt and df). Default "nanofs".
func WithSource(name string) Option { return func(o *options) { o.source = name } }

// WithAllowOther lets users other than the one who mounted read the tree
// (FUSE's allow_other; non-root users need user_allow_other in
// /etc/fuse.conf). Permissions are then checked against the files' modes.
func WithAllowOther() Option { return func(o *options) { o.allowOther = true } }

// Server is a live mount.
type Server struct {
	srv *fuse.Server
	dir string
}

// Dir is the absolute path of the mount point.
func (s *Server) Dir() string { return s.dir }

// Wait blocks until the filesystem is unmounted, by Unmount, by the
// package-level Unmount, or by umount(8)/fusermount3 -u.
func (s *Server) Wait() { s.srv.Wait() }

// ServeUntil serves until the mount is unmounted from outside or ctx is
// done; then it unmounts. If someone is still inside, the mount is
// detached instead: everyone else sees the empty directory at once, and
// the server keeps answering those still inside until they leave (then
// ServeUntil returns, detached). onDetach runs just before detaching (a
// CLI lets a second interrupt end the process there).
func (s *Server) ServeUntil(ctx context.Context, onDetach func()) (detached bool, err error) {
	done := make(chan struct{})
	go func() { s.Wait(); close(done) }()
	select {
	case <-done:
		return false, nil
	case <-ctx.Done():
	}
	if err := s.Unmount(); err != nil {
		if onDetach != nil {
			onDetach()
		}
		if err := Unmount(s.dir); err != nil {
			return false, err
		}
		detached = true
	}
	<-done
	return detached, nil
}

// Unmount unmounts the filesystem and waits for the server to stop. It
// fails (EBUSY) while a process still uses the mount; the package-level
// Unmount detaches it anyway.
func (s *Server) Unmount() error {
	if err := s.srv.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", s.dir, err)
	}
	return nil
}

// Mount mounts fsys read-only on dir, an empty directory, and serves it
// until unmounted. As root it mounts with mount(2) directly, otherwise (or
// if that is refused) through fusermount3.
func Mount(dir string, fsys fs.FS, opts ...Option) (*Server, error) {
	return thisHost.mount(dir, fsys, opts...)
}

func (h host) mount(dir string, fsys fs.FS, opts ...Option) (*Server, error) {
	o := options{timeout: time.Hour, source: "nanofs"}
	for _, opt := range opts {
		opt(&o)
	}
	rfs, ok := fsys.(fs.ReadLinkFS)
	if !ok {
		return nil, fmt.Errorf("fusefs: %T cannot be mounted: it does not implement fs.ReadLinkFS (ReadLink, Lstat)", fsys)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mount point %s: %w", dir, err)
	}
	if err := h.preflight(abs); err != nil {
		return nil, err
	}
	root, err := newRoot(rfs)
	if err != nil {
		return nil, err
	}
	timeout := o.timeout
	gopts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			FsName: o.source,
			Name:   strings.TrimPrefix(FSType, "fuse."),
			// ro: the kernel refuses writes itself; default_permissions:
			// the kernel checks the files' modes and owners, as on any
			// disk filesystem.
			Options:              []string{"ro", "default_permissions"},
			AllowOther:           o.allowOther,
			DirectMount:          h.euid == 0,
			DirectMountFlags:     syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV,
			EnableSymlinkCaching: true,
		},
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		// Modes are the image's, 0000 included.
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: root.attr.Ino},
	}
	srv, err := gofs.Mount(abs, root, gopts)
	if err != nil {
		if _, lerr := h.fusermount(); lerr != nil {
			return nil, fmt.Errorf("mount %s: %w (%w)", abs, err, lerr)
		}
		return nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	return &Server{srv: srv, dir: abs}, nil
}

// newRoot makes the root node: the only file system access a mount needs
// before it can serve.
func newRoot(fsys fs.ReadLinkFS) (*node, error) {
	fi, err := fsys.Lstat(".")
	if err != nil {
		return nil, fmt.Errorf("fusefs: reading the root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("fusefs: the root is not a directory (%v)", fi.Mode())
	}
	m := &mountFS{fsys: fsys, inodes: newInodeTable()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		m.rootDev = uint64(st.Dev)
	}
	return &node{m: m, name: ".", attr: m.attr(".", fi)}, nil
}

// host is what mounting needs from the machine, replaceable in tests.
type host struct {
	fuseDevice string
	euid       int
	lookPath   func(string) (string, error)
	mountinfo  string
}

var thisHost = host{
	fuseDevice: "/dev/fuse",
	euid:       os.Geteuid(),
	lookPath:   exec.LookPath,
	mountinfo:  "/proc/self/mountinfo",
}

// preflight turns the usual reasons a mount fails into errors that say
// what to do, before the kernel answers with a bare errno.
func (h host) preflight(dir string) error {
	err := checkEmptyDir(dir)
	var errno syscall.Errno
	if errors.As(err, &errno) && (errno == syscall.ENOTCONN || errno == syscall.ECONNABORTED) {
		return fmt.Errorf("%s is still mounted by a server that is gone (%v): unmount it first (nanofs umount %s)", dir, errno, dir)
	}
	if fstype, _ := h.mountedType(dir); fstype == FSType {
		return fmt.Errorf("%s is already a nanofs mount (nanofs umount %s unmounts it): %w", dir, dir, ErrBadMountpoint)
	}
	if err != nil {
		return err
	}
	if fi, err := os.Stat(h.fuseDevice); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		return ErrNoFuseDevice
	}
	if h.euid != 0 {
		if _, err := h.fusermount(); err != nil {
			return err
		}
	}
	return nil
}

func checkEmptyDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist: %w", dir, ErrBadMountpoint)
	case err != nil:
		return fmt.Errorf("mount point: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory: %w", dir, ErrBadMountpoint)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return fmt.Errorf("%s is not empty (it holds %q): %w", dir, names[0], ErrBadMountpoint)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("mount point: %w", err)
	}
	return nil
}

// fusermount finds the helper the way go-fuse does: fusermount3, else the
// older fusermount, in PATH or /bin.
func (h host) fusermount() (string, error) {
	for _, name := range []string{"fusermount3", "fusermount"} {
		for _, p := range []string{name, "/bin/" + name} {
			if found, err := h.lookPath(p); err == nil {
				return found, nil
			}
		}
	}
	return "", ErrNoFusermount
}
