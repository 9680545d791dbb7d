package testimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Debian trees for tests: a debootstrap rootfs, package layers made by apt
// in a chroot of an overlay mount (so the layer is the kernel's own
// overlayfs upper directory), and the merged result. All are cache entries
// under os.UserCacheDir()/nanofs-test/debian/<key>, built once per machine;
// callers must treat them as read-only.
//
// Every step that mounts anything (debootstrap mounts /proc in its target)
// runs in a private mount namespace (unshare --mount), so whatever happens
// to the process, no mount outlives it in the host's namespace.

// DebianMirrorEnv names the Debian mirror to use (e.g. the URI of a local
// mirror or proxy). Without it the mirror serving bookworm is taken from
// the host's apt sources.
const DebianMirrorEnv = "NANOFS_DEBIAN_MIRROR"

const (
	debianSuite   = "bookworm"
	debianVariant = "minbase"
	// debianVersion changes whenever the recipe changes in a way the
	// cache keys would not see.
	debianVersion = "debian-v1"
	// debianTimeout bounds one debootstrap or apt run (a stalled mirror).
	debianTimeout = 30 * time.Minute
)

// debianIncludes are extra packages for debootstrap's --include; part of
// the rootfs key.
var debianIncludes []string

// debianConfig is everything a Debian cache entry is made from.
type debianConfig struct {
	suite, variant, arch, mirror string
	includes                     []string
}

func (c debianConfig) rootfsKey() string {
	return fmt.Sprintf("rootfs-%s-%s-%s-%s", c.suite, c.variant, c.arch,
		shortHash(debianVersion, c.suite, c.variant, c.arch, c.mirror, strings.Join(c.includes, ",")))
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%q\n", p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// debianSetup checks what every Debian fixture needs, skipping the test
// when something is missing.
func debianSetup(t testing.TB) debianConfig {
	t.Helper()
	if testing.Short() {
		t.Skip("testimage: Debian trees take minutes to build the first time; skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("testimage: Debian trees need root (debootstrap, chroot, overlay mounts)")
	}
	for _, tool := range []struct{ name, pkg string }{{"unshare", "util-linux"}, {"chroot", "coreutils"}, {"mount", "mount"}} {
		if _, err := lookSbin(tool.name); err != nil {
			t.Skipf("testimage: %s not found; install %s", tool.name, tool.pkg)
		}
	}
	mirror, err := debianMirror()
	if err != nil {
		t.Skipf("testimage: no Debian mirror: %v", err)
	}
	return debianConfig{
		suite:    debianSuite,
		variant:  debianVariant,
		arch:     debianArch(),
		mirror:   mirror,
		includes: append([]string(nil), debianIncludes...),
	}
}

// lookSbin is exec.LookPath that also tries the sbin directories, which a
// root shell's PATH may lack.
func lookSbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// debianArch is the Debian name of the running architecture.
func debianArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	}
	return runtime.GOARCH // amd64, arm64, riscv64, s390x
}

// DebianRootfs returns a `debootstrap --variant=minbase bookworm` tree with
// the downloaded .debs and apt lists removed (as in Debian's official
// images), cached under os.UserCacheDir()/nanofs-test/debian/<key> where
// key hashes the inputs (suite, variant, arch, mirror, include list).
// Callers must treat it as read-only. Skips unless root and debootstrap
// present, and under testing.Short().
func DebianRootfs(t testing.TB) string {
	t.Helper()
	cfg := debianSetup(t)
	dir, err := debianRootfs(t, cfg)
	if err != nil {
		t.Fatalf("testimage: Debian rootfs: %v", err)
	}
	return dir
}

func debianRootfs(t testing.TB, cfg debianConfig) (string, error) {
	base, err := cacheBase("debian")
	if err != nil {
		return "", err
	}
	key := cfg.rootfsKey()
	if !complete(filepath.Join(base, key)) {
		if _, err := lookSbin("debootstrap"); err != nil {
			t.Skip("testimage: debootstrap not found; install debootstrap")
		}
		t.Logf("testimage: building the Debian rootfs with debootstrap (once per machine, about a minute): %s", filepath.Join(base, key))
	}
	entry, err := cachedDir(base, key, func(dir string) error { return buildRootfs(cfg, dir) })
	if err != nil {
		return "", err
	}
	return filepath.Join(entry, "rootfs"), nil
}

func buildRootfs(cfg debianConfig, dir string) error {
	debootstrap, err := lookSbin("debootstrap")
	if err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs")
	args := []string{"--mount", "--propagation", "private", "--", debootstrap,
		"--variant=" + cfg.variant, "--arch=" + cfg.arch}
	if len(cfg.includes) > 0 {
		args = append(args, "--include="+strings.Join(cfg.includes, ","))
	}
	args = append(args, cfg.suite, rootfs, cfg.mirror)
	start := time.Now()
	if err := runLogged(filepath.Join(dir, "build.log"), "debootstrap", "unshare", args, chrootEnv()); err != nil {
		return err
	}
	elapsed := time.Since(start)
	// What debootstrap downloaded is no part of the system (Debian's
	// official images drop it too).
	debs, _ := filepath.Glob(filepath.Join(rootfs, "var/cache/apt/archives/*.deb"))
	lists, _ := filepath.Glob(filepath.Join(rootfs, "var/lib/apt/lists/*"))
	for _, p := range append(debs, lists...) {
		if info, err := os.Lstat(p); err == nil && info.IsDir() {
			continue // lists/partial stays, as apt made it
		}
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(rootfs, "usr/bin/apt-get")); err != nil {
		return fmt.Errorf("debootstrap left no apt-get: %w", err)
	}
	return writeBuildInfo(dir, "debootstrap", elapsed, append([]string{"unshare"}, args...))
}

// buildInfo records how an entry was made, for reports and debugging.
type buildInfo struct {
	Step    string   `json:"step"`
	Seconds float64  `json:"seconds"`
	Command []string `json:"command"`
	Built   string   `json:"built"`
}

func writeBuildInfo(dir, step string, elapsed time.Duration, command []string) error {
	data, err := json.MarshalIndent(buildInfo{
		Step:    step,
		Seconds: elapsed.Round(100 * time.Millisecond).Seconds(),
		Command: command,
		Built:   time.Now().UTC().Format(time.RFC3339),
	}, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "build.json"), append(data, '\n'), 0o644)
}

// readBuildInfo reads the record of the entry holding tree.
func readBuildInfo(tree string) (buildInfo, error) {
	var bi buildInfo
	data, err := os.ReadFile(filepath.Join(filepath.Dir(tree), "build.json"))
	if err != nil {
		return bi, err
	}
	return bi, json.Unmarshal(data, &bi)
}

// debianPackageName is Debian policy's package name syntax (5.6.1); the
// names end up on a command line and in a directory name.
var debianPackageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// normalizePackages sorts and deduplicates pkgs: apt's result does not
// depend on their order, so neither does the cache key.
func normalizePackages(pkgs []string) ([]string, error) {
	if len(pkgs) == 0 {
		return nil, errors.New("no packages given")
	}
	set := map[string]bool{}
	for _, p := range pkgs {
		if !debianPackageName.MatchString(p) {
			return nil, fmt.Errorf("%q is not a Debian package name", p)
		}
		set[p] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

func layerKey(rootfsKey string, pkgs []string) string {
	name := strings.Join(pkgs, "-")
	if len(name) > 60 {
		name = name[:60]
	}
	return "layer-" + name + "-" + shortHash(debianVersion, rootfsKey, strings.Join(pkgs, " "), aptLayerScript)
}

// DebianLayer returns the overlayfs upper directory produced by `apt-get
// install -y --no-install-recommends pkgs...` run in a chroot of an overlay
// mount of DebianRootfs (lower), followed by the usual Dockerfile clean-up
// (`rm -rf /var/lib/apt/lists/*`, downloaded .debs): a real package layer,
// whiteouts as char 0:0 devices, opaque dirs with the trusted.overlay.opaque
// xattr. Cached like DebianRootfs (the key includes the package list).
func DebianLayer(t testing.TB, pkgs ...string) string {
	t.Helper()
	cfg := debianSetup(t)
	upper, err := debianLayer(t, cfg, pkgs)
	if err != nil {
		t.Fatalf("testimage: Debian layer %v: %v", pkgs, err)
	}
	return upper
}

func debianLayer(t testing.TB, cfg debianConfig, pkgs []string) (string, error) {
	pkgs, err := normalizePackages(pkgs)
	if err != nil {
		return "", err
	}
	lower, err := debianRootfs(t, cfg)
	if err != nil {
		return "", err
	}
	base, err := cacheBase("debian")
	if err != nil {
		return "", err
	}
	key := layerKey(cfg.rootfsKey(), pkgs)
	if !complete(filepath.Join(base, key)) {
		t.Logf("testimage: installing %v with apt in a chroot (once per machine, minutes): %s", pkgs, filepath.Join(base, key))
	}
	entry, err := cachedDir(base, key, func(dir string) error { return buildLayer(cfg, lower, pkgs, dir) })
	if err != nil {
		return "", err
	}
	return filepath.Join(entry, "upper"), nil
}

// aptLayerScript runs in a private mount namespace: overlay-mount the
// rootfs with an empty upper dir, give the chroot /proc, a fresh /dev on a
// tmpfs (so no device node lands in the layer) and the host's DNS, deny
// service starts, run apt, clean up as a Dockerfile would, and unmount all
// of it whatever happens. The overlay features that would write what a
// tar layer cannot say (redirect_dir, metacopy, index) are off.
const aptLayerScript = `set -eu
lower=$1 upper=$2 work=$3 merged=$4 mirror=$5 suite=$6
shift 6
cleanup() {
	status=$?
	# A process left in the chroot (a daemon despite policy-rc.d) would
	# keep the overlay busy.
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		case $r in "$merged"|"$merged"/*) kill -9 "${p#/proc/}" 2>/dev/null || true ;; esac
	done
	umount -R "$merged" 2>/dev/null || umount -R -l "$merged" 2>/dev/null || true
	exit $status
}
trap cleanup EXIT
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work,redirect_dir=off,metacopy=off,index=off" "$merged"
mount -t proc proc "$merged/proc"
mount -t tmpfs -o mode=0755,nosuid dev "$merged/dev"
mknod -m 666 "$merged/dev/null" c 1 3
mknod -m 666 "$merged/dev/zero" c 1 5
mknod -m 666 "$merged/dev/full" c 1 7
mknod -m 666 "$merged/dev/random" c 1 8
mknod -m 666 "$merged/dev/urandom" c 1 9
mknod -m 666 "$merged/dev/tty" c 5 0
mkdir "$merged/dev/pts" "$merged/dev/shm"
# A private devpts, so apt can log the terminal output of dpkg.
if mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$merged/dev/pts" 2>/dev/null; then
	ln -s pts/ptmx "$merged/dev/ptmx"
fi
ln -s /proc/self/fd "$merged/dev/fd"
ln -s /proc/self/fd/0 "$merged/dev/stdin"
ln -s /proc/self/fd/1 "$merged/dev/stdout"
ln -s /proc/self/fd/2 "$merged/dev/stderr"
if [ -f /etc/resolv.conf ] && [ -f "$merged/etc/resolv.conf" ] && [ ! -L "$merged/etc/resolv.conf" ]; then
	mount --bind /etc/resolv.conf "$merged/etc/resolv.conf"
fi
line="deb $mirror $suite main"
if [ "$(cat "$merged/etc/apt/sources.list" 2>/dev/null)" != "$line" ]; then
	printf '%s\n' "$line" > "$merged/etc/apt/sources.list"
fi
printf '#!/bin/sh\n# nanofs testimage: no service starts while apt runs\nexit 101\n' > "$merged/usr/sbin/policy-rc.d"
chmod 755 "$merged/usr/sbin/policy-rc.d"
chroot "$merged" apt-get -q -o Acquire::Check-Valid-Until=false --error-on=any update
chroot "$merged" apt-get -q -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io install "$@"
rm -f "$merged/usr/sbin/policy-rc.d"
rm -rf "$merged"/var/lib/apt/lists/*
rm -f "$merged"/var/cache/apt/archives/*.deb "$merged"/var/cache/apt/archives/partial/* "$merged"/var/cache/apt/*.bin
`

func buildLayer(cfg debianConfig, lower string, pkgs []string, dir string) error {
	if err := overlayPathsOK(lower, dir); err != nil {
		return err
	}
	upper, work, merged := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	args := append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", aptLayerScript, "sh",
		lower, upper, work, merged, cfg.mirror, cfg.suite}, pkgs...)
	start := time.Now()
	if err := runLogged(filepath.Join(dir, "build.log"), "apt-get install in a chroot", "unshare", args, chrootEnv()); err != nil {
		return err
	}
	elapsed := time.Since(start)
	for _, d := range []string{work, merged} {
		if err := removeTree(d); err != nil {
			return err
		}
	}
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(upper, "var/lib/dpkg/info", p+".list")); err != nil {
			if _, err2 := os.Stat(filepath.Join(upper, "var/lib/dpkg/info", p+":"+cfg.arch+".list")); err2 != nil {
				return fmt.Errorf("package %s not installed in the layer: %w", p, err)
			}
		}
	}
	return writeBuildInfo(dir, "apt-get install "+strings.Join(pkgs, " "), elapsed,
		append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, pkgs...))
}

// DebianRootfsWith returns a full merged tree (DebianRootfs with
// DebianLayer(pkgs) on top), cached, for running ldd in a chroot as an
// oracle. The kernel's overlayfs does the merge (a read-only mount with the
// layer and the rootfs as lower dirs), and cp -a copies the result.
func DebianRootfsWith(t testing.TB, pkgs ...string) string {
	t.Helper()
	cfg := debianSetup(t)
	upper, err := debianLayer(t, cfg, pkgs)
	if err != nil {
		t.Fatalf("testimage: Debian layer %v: %v", pkgs, err)
	}
	lower, err := debianRootfs(t, cfg)
	if err != nil {
		t.Fatalf("testimage: Debian rootfs: %v", err)
	}
	base, err := cacheBase("debian")
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	layerEntry := filepath.Base(filepath.Dir(upper))
	key := "merged-" + strings.TrimPrefix(layerEntry, "layer-")
	entry, err := cachedDir(base, key, func(dir string) error { return buildMerged(lower, upper, dir) })
	if err != nil {
		t.Fatalf("testimage: merged Debian tree %v: %v", pkgs, err)
	}
	return filepath.Join(entry, "merged")
}

const mergeScript = `set -eu
upper=$1 lower=$2 mnt=$3 dest=$4
trap 'status=$?; umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true; exit $status' EXIT
mount -t overlay overlay -o "ro,lowerdir=$upper:$lower" "$mnt"
cp -a "$mnt/." "$dest/"
`

func buildMerged(lower, upper, dir string) error {
	if err := overlayPathsOK(lower, upper, dir); err != nil {
		return err
	}
	mnt, dest := filepath.Join(dir, "mnt"), filepath.Join(dir, "merged")
	for _, d := range []string{mnt, dest} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	args := []string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", mergeScript, "sh", upper, lower, mnt, dest}
	start := time.Now()
	if err := runLogged(filepath.Join(dir, "build.log"), "overlay merge", "unshare", args, chrootEnv()); err != nil {
		return err
	}
	elapsed := time.Since(start)
	if err := removeTree(mnt); err != nil {
		return err
	}
	return writeBuildInfo(dir, "overlay merge", elapsed, []string{"cp", "-a"})
}

// overlayPathsOK rejects directories that overlayfs's option syntax
// cannot carry (',' separates options, ':' lower dirs).
func overlayPathsOK(dirs ...string) error {
	for _, d := range dirs {
		if strings.ContainsAny(d, ",:") {
			return fmt.Errorf("%s: overlayfs cannot mount a path holding ',' or ':' (set XDG_CACHE_HOME elsewhere)", d)
		}
	}
	return nil
}

// chrootEnv is the environment of debootstrap and apt: a clean one, plus
// the host's proxy settings.
func chrootEnv() []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C",
		"HOME=/root",
		"DEBIAN_FRONTEND=noninteractive",
		"DEBCONF_NONINTERACTIVE_SEEN=true",
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(name) {
		case "http_proxy", "https_proxy", "no_proxy", "ftp_proxy":
			env = append(env, kv)
		}
	}
	return env
}

// runLogged runs name args (the step called what) in its own process group
// with env, appending its output to logPath; on failure the error carries
// the log's tail. A run past debianTimeout is killed, its whole group with
// it.
func runLogged(logPath, what, name string, args, env []string) error {
	bin, err := lookSbin(name)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), debianTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", what, err, tailOf(logPath, 4096))
	}
	return nil
}

func tailOf(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > n {
		_, _ = f.Seek(info.Size()-n, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	return string(data)
}

// debianMirror finds the Debian mirror: $NANOFS_DEBIAN_MIRROR, else the
// host's apt source that serves the suite. Never a built-in host.
func debianMirror() (string, error) {
	if m := os.Getenv(DebianMirrorEnv); m != "" {
		return checkMirror(m)
	}
	var sources []aptSource
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		sources = append(sources, parseOneLineSources(string(data))...)
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, l := range lists {
		if data, err := os.ReadFile(l); err == nil {
			sources = append(sources, parseOneLineSources(string(data))...)
		}
	}
	deb822, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, s := range deb822 {
		if data, err := os.ReadFile(s); err == nil {
			sources = append(sources, parseDeb822Sources(string(data))...)
		}
	}
	if m, ok := pickMirror(sources, debianSuite); ok {
		return checkMirror(m)
	}
	return "", fmt.Errorf("no apt source on this host serves %s; set %s to a Debian mirror URI", debianSuite, DebianMirrorEnv)
}

// checkMirror accepts http, https, ftp and file URIs without whitespace:
// the mirror goes into sources.list lines and command lines.
func checkMirror(m string) (string, error) {
	u, err := url.Parse(m)
	if err != nil || strings.ContainsAny(m, " \t\r\n'\"\\") {
		return "", fmt.Errorf("mirror %q is not a usable URI", m)
	}
	switch u.Scheme {
	case "http", "https", "ftp":
		if u.Host == "" {
			return "", fmt.Errorf("mirror %q has no host", m)
		}
	case "file":
		if u.Path == "" {
			return "", fmt.Errorf("mirror %q has no path", m)
		}
	default:
		return "", fmt.Errorf("mirror %q: scheme %q not supported (http, https, ftp, file)", m, u.Scheme)
	}
	return strings.TrimRight(m, "/"), nil
}

// aptSource is one entry of apt's sources, in either format.
type aptSource struct {
	Types, URIs, Suites []string
	Enabled             bool
}

// pickMirror returns the first URI of an enabled binary ("deb") source
// listing suite itself (not suite-updates or suite-security).
func pickMirror(sources []aptSource, suite string) (string, bool) {
	for _, s := range sources {
		if !s.Enabled || !contains(s.Types, "deb") || !contains(s.Suites, suite) {
			continue
		}
		for _, u := range s.URIs {
			if _, err := checkMirror(u); err == nil {
				return u, true
			}
		}
	}
	return "", false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseOneLineSources reads the one-line format of sources.list(5):
// "deb [ option=value ... ] uri suite [component...]", # comments.
func parseOneLineSources(text string) []aptSource {
	var out []aptSource
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) < 3 || (fields[0] != "deb" && fields[0] != "deb-src") {
			continue
		}
		rest := fields[1:]
		if strings.HasPrefix(rest[0], "[") {
			// Options run to the field that closes the bracket.
			end := -1
			for i, f := range rest {
				if strings.HasSuffix(f, "]") {
					end = i
					break
				}
			}
			if end < 0 {
				continue
			}
			rest = rest[end+1:]
		}
		if len(rest) < 2 {
			continue
		}
		out = append(out, aptSource{Types: []string{fields[0]}, URIs: []string{rest[0]}, Suites: []string{rest[1]}, Enabled: true})
	}
	return out
}

// parseDeb822Sources reads the deb822 format of sources.list(5):
// stanzas of "Field: value" lines separated by blank lines, continuation
// lines starting with white space, # comments, field names in any case.
func parseDeb822Sources(text string) []aptSource {
	var out []aptSource
	fields := map[string]string{}
	last := ""
	flush := func() {
		if len(fields) > 0 {
			s := aptSource{
				Types:   strings.Fields(fields["types"]),
				URIs:    strings.Fields(fields["uris"]),
				Suites:  strings.Fields(fields["suites"]),
				Enabled: !strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no"),
			}
			out = append(out, s)
		}
		fields = map[string]string{}
		last = ""
	}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				last = ""
				continue
			}
			last = strings.ToLower(strings.TrimSpace(name))
			fields[last] = strings.TrimSpace(value)
		}
	}
	flush()
	return out
}
