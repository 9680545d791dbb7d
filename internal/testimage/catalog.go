package testimage

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The catalog: named images built from real trees, each available in every
// Encoding through Spec.Image, with its expected tree through Spec.Expected.
const (
	CatalogFixtures   = "fixtures"    // C fixtures tree + a layer adding and overwriting files
	CatalogEdge       = "edge"        // whiteouts, opaque dirs, hard links, symlinks, type changes
	CatalogDistroless = "distroless"  // no shell: the dynamic C fixture, its libraries, /etc/passwd
	CatalogDebianNode = "debian-node" // debootstrap bookworm + nodejs/python3/redis + node-style top layer
)

// CatalogNames lists the catalog, cheapest first; only debian-node needs
// root, debootstrap and minutes (and is skipped under -short).
var CatalogNames = []string{CatalogFixtures, CatalogEdge, CatalogDistroless, CatalogDebianNode}

// DefaultPath is the PATH of Debian-based images.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// CatalogSpec returns the named catalog image's spec.
func CatalogSpec(t testing.TB, name string) *Spec {
	t.Helper()
	switch name {
	case CatalogFixtures:
		return FixturesSpec(t)
	case CatalogEdge:
		return EdgeSpec()
	case CatalogDistroless:
		return DistrolessSpec(t)
	case CatalogDebianNode:
		return DebianNodeSpec(t)
	}
	t.Fatalf("testimage: no catalog image %q (have %v)", name, CatalogNames)
	return nil
}

// CatalogImage is CatalogSpec(t, name).Image(t, enc).
func CatalogImage(t testing.TB, name string, enc Encoding) v1.Image {
	t.Helper()
	return CatalogSpec(t, name).Image(t, enc)
}

// FixturesSpec is the C fixtures tree (programs and the host's real glibc
// and musl libraries) as the base layer, plus a layer that adds files and
// overwrites the sh script (same shebang, new body).
func FixturesSpec(t testing.TB) *Spec {
	t.Helper()
	fx := CFixtures(t)
	if fx.Dynamic == "" {
		t.Skip("testimage: the fixtures image needs the dynamic C fixture: install gcc")
	}
	top := []Entry{
		Dir("etc", 0o755),
		File("etc/nanofs-fixtures-release", 0o644, "NAME=nanofs fixtures\nLAYER=2\n"),
		Dir("opt", 0o755),
		Dir("opt/extra", 0o755),
		File("opt/extra/data.bin", 0o644, string(edgeData(300<<10, 7))),
		File("opt/extra/hello.txt", 0o644, "hello from the second layer\n"),
		Symlink("opt/extra/dynamic", fx.Dynamic),
	}
	// Overwrite a base file: the sh script keeps its shebang line (what
	// resolvers read) and gets a different body.
	if fx.ShebangSh != "" {
		old, err := os.ReadFile(fx.HostPath(fx.ShebangSh))
		if err != nil {
			t.Fatalf("testimage: fixtures: %v", err)
		}
		shebang, _, _ := strings.Cut(string(old), "\n")
		top = append(top,
			Dir(path.Dir(strings.TrimPrefix(fx.ShebangSh, "/")), 0o755),
			File(strings.TrimPrefix(fx.ShebangSh, "/"), 0o755, shebang+"\necho overwritten by the second layer\n"))
	}
	return &Spec{
		Name: CatalogFixtures,
		Config: v1.Config{
			Entrypoint: []string{fx.Dynamic},
			Env:        []string{DefaultPath, "FIXTURES=1"},
			WorkingDir: "/",
		},
		Layers: []LayerInput{
			{Dir: fx.Root, CreatedBy: "C fixtures compiled at test time"},
			{Entries: top, CreatedBy: "additions and an overwrite"},
		},
	}
}

// DistrolessSpec has no shell: only the dynamic C fixture, the files its
// loader needs (with the usrmerge links on the way), /etc/passwd and
// /etc/group, like gcr.io/distroless/base.
func DistrolessSpec(t testing.TB) *Spec {
	t.Helper()
	fx := CFixtures(t)
	if fx.Dynamic == "" {
		t.Skip("testimage: the distroless image needs the dynamic C fixture: install gcc")
	}
	base := []Entry{
		Dir("etc", 0o755),
		File("etc/passwd", 0o644, "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"),
		File("etc/group", 0o644, "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"),
		File("etc/nsswitch.conf", 0o644, "passwd: files\ngroup: files\nhosts: files dns\n"),
		Dir("home", 0o755),
		Dir("home/nonroot", 0o700).WithOwner(65532, 65532),
		Dir("tmp", 0o1777),
	}
	libs, err := closureEntries(fx.Root, fx.Expected[fx.Dynamic])
	if err != nil {
		t.Fatalf("testimage: distroless: %v", err)
	}
	app, err := closureEntries(fx.Root, []string{fx.Dynamic})
	if err != nil {
		t.Fatalf("testimage: distroless: %v", err)
	}
	return &Spec{
		Name: CatalogDistroless,
		Config: v1.Config{
			Entrypoint: []string{fx.Dynamic},
			Env:        []string{DefaultPath, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
			WorkingDir: "/",
		},
		Layers: []LayerInput{
			{Entries: append(base, libs...), CreatedBy: "distroless-style base: passwd, group, loader and libc"},
			{Entries: app, CreatedBy: "the program"},
		},
	}
}

// closureEntries copies paths from a host image root into entries, with
// every directory and symlink met on the way (so /lib64/ld-linux... through
// a usrmerge link brings the link and its target), each once, parents first.
func closureEntries(root string, paths []string) ([]Entry, error) {
	var entries []Entry
	seen := map[string]bool{}
	var add func(p string, depth int) error
	add = func(p string, depth int) error {
		if depth > 40 {
			return fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		cur := ""
		rest := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
		for i, el := range rest {
			cur = path.Join(cur, el)
			info, err := os.Lstat(filepath.Join(root, cur))
			if err != nil {
				return fmt.Errorf("%s in %s: %w", cur, root, err)
			}
			mode := int64(info.Mode().Perm())
			switch {
			case info.Mode()&os.ModeSymlink != 0:
				target, err := os.Readlink(filepath.Join(root, cur))
				if err != nil {
					return err
				}
				if !seen[cur] {
					seen[cur] = true
					entries = append(entries, Symlink(cur, target))
				}
				resolved := target
				if !path.IsAbs(target) {
					resolved = path.Join(path.Dir("/"+cur), target)
				}
				return add(path.Join(append([]string{resolved}, rest[i+1:]...)...), depth+1)
			case info.IsDir():
				if !seen[cur] {
					seen[cur] = true
					entries = append(entries, Dir(cur, mode))
				}
			case info.Mode().IsRegular() && i == len(rest)-1:
				if !seen[cur] {
					seen[cur] = true
					body, err := os.ReadFile(filepath.Join(root, cur))
					if err != nil {
						return err
					}
					entries = append(entries, File(cur, mode, string(body)))
				}
			default:
				return fmt.Errorf("%s in %s: unexpected %v", cur, root, info.Mode())
			}
		}
		return nil
	}
	for _, p := range paths {
		if err := add(p, 0); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// DebianNodeSpec is shaped like the official node image: a debootstrap
// bookworm base, a layer with Debian's nodejs, python3 and redis-server
// (a real overlayfs upper dir: whiteouts and opaque dirs from apt), and a
// top layer with an entrypoint shell script; ENTRYPOINT
// ["docker-entrypoint.sh"], CMD ["node"]. It needs root and debootstrap.
func DebianNodeSpec(t testing.TB) *Spec {
	t.Helper()
	if testing.Short() {
		t.Skip("testimage: the debian-node image takes minutes to build the first time; skipped under -short")
	}
	base := DebianRootfs(t)
	pkgs := DebianLayer(t, "nodejs", "python3", "redis-server")
	nodeVersion, err := dpkgStatusVersion(filepath.Join(pkgs, "var/lib/dpkg/status"), "nodejs")
	if err != nil {
		t.Fatalf("testimage: debian-node: %v", err)
	}
	top := []Entry{
		Dir("usr", 0o755),
		Dir("usr/local", 0o755),
		Dir("usr/local/bin", 0o755),
		File("usr/local/bin/docker-entrypoint.sh", 0o755, dockerEntrypoint),
		Dir("app", 0o755),
		File("app/hello.js", 0o644, "console.log('hello from nanofs ' + process.version);\n"),
	}
	return &Spec{
		Name: CatalogDebianNode,
		Config: v1.Config{
			Entrypoint: []string{"docker-entrypoint.sh"},
			Cmd:        []string{"node"},
			Env:        []string{DefaultPath, "NODE_VERSION=" + nodeVersion},
			WorkingDir: "/app",
		},
		Layers: []LayerInput{
			{Dir: base, CreatedBy: "debootstrap --variant=minbase bookworm"},
			{Dir: pkgs, CreatedBy: "apt-get install nodejs python3 redis-server"},
			{Entries: top, CreatedBy: "docker-entrypoint.sh, /app"},
		},
	}
}

// dockerEntrypoint behaves like the official node image's entrypoint:
// arguments that are not a command (an option, or a script file) go to node.
const dockerEntrypoint = `#!/bin/sh
set -e
# Hand options (node -v) and script files (node app.js) to node;
# run anything else as the command it names.
case "$1" in
	-*) set -- node "$@" ;;
	*)
		if [ -f "$1" ] && [ ! -x "$1" ]; then
			set -- node "$@"
		elif ! command -v "$1" >/dev/null 2>&1; then
			set -- node "$@"
		fi
		;;
esac
exec "$@"
`

// dpkgStatusVersion reads a package's upstream version (no epoch, no Debian
// revision) from a dpkg status file.
func dpkgStatusVersion(statusFile, pkg string) (string, error) {
	f, err := os.Open(statusFile)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	inPkg := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			inPkg = false
		case strings.HasPrefix(line, "Package: "):
			inPkg = strings.TrimPrefix(line, "Package: ") == pkg
		case inPkg && strings.HasPrefix(line, "Version: "):
			v := strings.TrimPrefix(line, "Version: ")
			if i := strings.Index(v, ":"); i >= 0 {
				v = v[i+1:]
			}
			if i := strings.LastIndex(v, "-"); i >= 0 {
				v = v[:i]
			}
			v, _, _ = strings.Cut(v, "+")
			return v, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("package %s not in %s", pkg, statusFile)
}

// EdgeSpec is three exact entry-list layers covering what overlay merging
// must get right: whiteouts of files and directories, opaque directories
// (with and without the directory entry in the same layer), hard links,
// absolute and relative symlinks, usrmerge links, a file replaced by a
// directory and back, a directory replaced by a file, a symlink replaced by
// a file, directory metadata changes, setuid and sticky bits, ownership, a
// FIFO, long and non-ASCII names, an empty file and a 6 MiB file spanning
// two eStargz chunks (4 MiB each), replaced by a smaller one in the top layer.
func EdgeSpec() *Spec {
	long := "usr/share/" + strings.Repeat("a-rather-long-directory-name/", 4) + "and-a-file-name-that-needs-pax-headers.txt"
	l1 := []Entry{
		Dir("usr", 0o755), Dir("usr/bin", 0o755), Dir("usr/sbin", 0o755), Dir("usr/lib", 0o755),
		Dir("usr/lib/x86_64-linux-gnu", 0o755), Dir("usr/lib64", 0o755),
		Symlink("bin", "usr/bin"), Symlink("sbin", "usr/sbin"), Symlink("lib", "usr/lib"), Symlink("lib64", "usr/lib64"),
		File("usr/bin/tool", 0o755, "#!/bin/sh\necho tool v1\n"),
		Hardlink("usr/bin/tool-hard", "usr/bin/tool"),
		Hardlink("usr/bin/tool-hard2", "usr/bin/tool"),
		Symlink("usr/bin/tool-abs", "/usr/bin/tool"),
		Symlink("usr/bin/tool-rel", "tool"),
		File("usr/bin/su-ish", 0o4755, "setuid\n"),
		File("usr/lib/x86_64-linux-gnu/libedge.so.1", 0o644, "\x7fELF not really\n"),
		Symlink("usr/lib/x86_64-linux-gnu/libedge.so", "libedge.so.1"),
		Symlink("usr/lib64/ld-edge.so.2", "../lib/x86_64-linux-gnu/libedge.so.1"),
		Dir("usr/share", 0o755),
		Dir(path.Dir(long), 0o755),
		File(long, 0o644, "long name\n"),
		Dir("etc", 0o755),
		File("etc/hostname", 0o644, "edge-v1\n"),
		File("etc/empty", 0o644, ""),
		File("etc/with space", 0o644, "space\n"),
		File("etc/ünïcödé", 0o644, "unicode\n"),
		Dir("etc/alternatives", 0o755),
		Symlink("etc/alternatives/editor", "/usr/bin/tool"),
		Dir("home", 0o755),
		Dir("home/user", 0o750).WithOwner(1000, 1000),
		File("home/user/.profile", 0o640, "export EDITOR=tool\n").WithOwner(1000, 1000),
		Dir("tmp", 0o1777),
		Dir("run", 0o755),
		Fifo("run/initctl", 0o600),
		Dir("var", 0o755), Dir("var/cache", 0o755), Dir("var/cache/data", 0o755),
		File("var/cache/data/a", 0o644, "a\n"),
		File("var/cache/data/b", 0o644, "b\n"),
		Dir("var/cache/data/sub", 0o755),
		File("var/cache/data/sub/c", 0o644, "c\n"),
		Dir("opt", 0o755),
		Dir("opt/gone", 0o755),
		File("opt/gone/file", 0o644, "gone\n"),
		Dir("opt/gone/sub", 0o755),
		File("opt/gone/sub/deeper", 0o644, "gone too\n"),
		File("opt/file-to-dir", 0o644, "I was a file\n"),
		Dir("opt/dir-to-file", 0o755),
		File("opt/dir-to-file/child", 0o644, "I vanish with my directory\n"),
		Dir("srv", 0o755),
		Dir("srv/opaque", 0o755),
		File("srv/opaque/old1", 0o644, "old1\n"),
		Dir("srv/opaque/sub", 0o755),
		File("srv/opaque/sub/old2", 0o644, "old2\n"),
		Dir("data", 0o755),
		File("data/big.bin", 0o644, string(edgeData(6<<20+12345, 1))),
	}
	l2 := []Entry{
		Dir("opt", 0o755),
		Whiteout("opt/gone"),
		Dir("opt/file-to-dir", 0o755),
		File("opt/file-to-dir/inside", 0o644, "I live where a file was\n"),
		File("opt/dir-to-file", 0o600, "I replaced a directory\n"),
		Dir("srv", 0o755),
		Dir("srv/opaque", 0o700),
		Opaque("srv/opaque"),
		File("srv/opaque/new1", 0o644, "new1\n"),
		Dir("etc", 0o755),
		File("etc/hostname", 0o644, "edge-v2\n"),
		Dir("etc/alternatives", 0o755),
		File("etc/alternatives/editor", 0o755, "#!/bin/sh\necho not a link any more\n"),
		Dir("var", 0o755), Dir("var/cache", 0o700),
		Dir("var/cache/data", 0o755),
		Whiteout("var/cache/data/a"),
		Dir("usr", 0o755), Dir("usr/bin", 0o755),
		File("usr/bin/tool2", 0o755, "#!/bin/sh\necho tool2\n"),
		Hardlink("usr/bin/tool2-hard", "usr/bin/tool2"),
		Whiteout("usr/bin/tool-hard2"),
	}
	l3 := []Entry{
		Dir("opt", 0o755),
		// A non-directory hides a lower directory by itself; a directory
		// made where a lower non-directory was is opaque (overlayfs marks it
		// so), or the lower directory's old children would show through.
		File("opt/file-to-dir", 0o644, "a file again\n"),
		Dir("opt/dir-to-file", 0o755),
		Opaque("opt/dir-to-file"),
		File("opt/dir-to-file/back", 0o644, "a directory again\n"),
		Opaque("var/cache/data"),
		File("var/cache/data/fresh", 0o644, "fresh\n"),
		Dir("new", 0o755),
		Dir("new/deep", 0o755),
		Symlink("new/deep/up", "../../etc/hostname"),
		Symlink("new/dangling", "/does/not/exist"),
		File("data/big.bin", 0o644, string(edgeData(3<<19, 2))),
	}
	return &Spec{
		Name: CatalogEdge,
		Config: v1.Config{
			Entrypoint: []string{"/usr/bin/tool"},
			Cmd:        []string{"--edge"},
			Env:        []string{DefaultPath, "EDGE=1"},
			WorkingDir: "/home/user",
			User:       "1000:1000",
		},
		Layers: []LayerInput{
			{Entries: l1, CreatedBy: "edge base"},
			{Entries: l2, CreatedBy: "edge changes"},
			{Entries: l3, CreatedBy: "edge changes back"},
		},
	}
}

// edgeData returns n deterministic bytes, half text-like (compressible)
// and half random, so that compressed sizes are realistic.
func edgeData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x6e616e6f6673))
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		chunk := b[i:min(i+4096, n)]
		if (i/4096)%2 == 0 {
			for j := 0; j < len(chunk); j += 8 {
				v := r.Uint64()
				for k := j; k < min(j+8, len(chunk)); k++ {
					chunk[k] = byte(v)
					v >>= 8
				}
			}
		} else {
			for j := range chunk {
				chunk[j] = "nanofs edge data \n"[(i+j)%18]
			}
		}
	}
	return b
}
