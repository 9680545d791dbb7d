package opspkg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/disk"
)

func TestHostSafeTarget(t *testing.T) {
	for _, tc := range []struct{ link, target, want string }{
		{"/usr/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "../../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		{"/lib", "usr/lib", "usr/lib"},
		{"/bin/sh", "/bin/dash", "dash"},
		{"/etc/alternatives/node", "/usr/bin/nodejs", "../../usr/bin/nodejs"},
		{"/a", "/", "."},
		{"/x/y", "/x/../../../etc/passwd", "../etc/passwd"}, // clamped at the root, as in the image
		{"/x/y", "../../../../etc/passwd", "../etc/passwd"}, // relative escapes stop at the root too
		{"/usr/lib/libz.so", "libz.so.1", "libz.so.1"},
		{"/usr/lib/a", "../share/x", "../share/x"},
	} {
		assert.Equal(t, tc.want, hostSafeTarget(tc.link, tc.target), "%s -> %s", tc.link, tc.target)
	}
}

func TestNewPackage(t *testing.T) {
	plan := &resolve.Plan{Program: "/usr/bin/node", Args: []string{"node", "hi.js"}, Env: []string{"PATH=/usr/bin", "A=b=c"}, WorkingDir: "/app"}
	m := disk.ManifestFromPlan(plan)
	m.Extra = tfs.Tuple{"readonly_rootfs": tfs.Flag{}, "en1": tfs.Tuple{"ipaddr": tfs.String("10.0.2.9")},
		"mmap_min_addr": tfs.Int(0), "v": tfs.Strings("a", "b")}
	p, err := NewPackage(m, "node_16.3.0", "amd64")
	require.NoError(t, err)
	assert.Equal(t, PackageManifest{
		Program: "/usr/bin/node", Args: []string{"node", "hi.js"}, Env: map[string]string{"PATH": "/usr/bin", "A": "b=c"},
		Version: "16.3.0", ManifestPassthrough: map[string]any{"cwd": "/app", "readonly_rootfs": "t",
			"en1": map[string]any{"ipaddr": "10.0.2.9"}, "mmap_min_addr": "0", "v": []any{"a", "b"}},
	}, p.Manifest)

	for _, bad := range []string{"node", "../x_1", "a/b_1", "_1", "node_", ""} {
		_, err := NewPackage(m, bad, "amd64")
		assert.Error(t, err, bad)
	}
	_, err = NewPackage(m, "node_1", "riscv64")
	assert.ErrorContains(t, err, "riscv64")
	m.Program = "node"
	_, err = NewPackage(m, "node_1", "amd64")
	assert.ErrorContains(t, err, "absolute")
}

// fixturePlan resolves the dynamic C fixture inside the fixtures root: a
// real closure with the loader behind an absolute symlink and usrmerge
// links on the way.
func fixturePlan(t *testing.T) (fs.FS, *resolve.Plan) {
	fx := testimage.CFixtures(t)
	if fx.Dynamic == "" {
		t.Skip("needs gcc for the C fixtures (apt-get install gcc)")
	}
	fsys := os.DirFS(fx.Root)
	plan, err := resolve.Resolve(fsys, resolve.Config{WorkingDir: "/srv"}, resolve.WithEntry(fx.Dynamic), resolve.WithArgs("x"))
	require.NoError(t, err)
	return fsys, plan
}

// TestPackageArchive checks an archive with GNU tar (the oracle for the
// layout), then the installed directory against the extracted archive: the
// same tree, every file equal to the image's, every link resolving inside
// sysroot on the host.
func TestPackageArchive(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("needs GNU tar (apt-get install tar)")
	}
	fsys, plan := fixturePlan(t)
	p, err := NewPackage(disk.ManifestFromPlan(plan), "fixture_1.0", "amd64")
	require.NoError(t, err)
	dir := t.TempDir()
	ctx := context.Background()

	archive := filepath.Join(dir, "fixture_1.0.tar.gz")
	info, err := p.WriteArchive(ctx, archive, fsys, plan)
	require.NoError(t, err)
	assert.Equal(t, archive, info.Path)
	assert.Positive(t, info.Files)
	again := filepath.Join(dir, "again.tar.gz")
	_, err = p.WriteArchive(ctx, again, fsys, plan)
	require.NoError(t, err)
	a, _ := os.ReadFile(archive)
	b, _ := os.ReadFile(again)
	assert.True(t, bytes.Equal(a, b), "two archives of one plan differ")

	extracted := filepath.Join(dir, "x")
	require.NoError(t, os.Mkdir(extracted, 0o755))
	out, err := exec.Command("tar", "-xzf", archive, "-C", extracted).CombinedOutput()
	require.NoError(t, err, string(out))
	listing, err := exec.Command("tar", "-tzf", archive).Output()
	require.NoError(t, err)
	names := strings.Fields(string(listing))
	assert.Contains(t, names, "package.manifest", "ops pkg add wants the manifest at the top")
	assert.Contains(t, names, "sysroot/")
	pkgDir := extracted
	checkPackageDir(t, pkgDir, fsys, plan, p.Manifest)

	home := filepath.Join(dir, "ops")
	installed, err := p.Install(ctx, home, fsys, plan)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, "local_packages", "amd64", "fixture_1.0"), installed.Path)
	checkPackageDir(t, installed.Path, fsys, plan, p.Manifest)
	assert.Equal(t, treeHashes(t, pkgDir), treeHashes(t, installed.Path), "installed directory vs extracted archive")

	// Installing again replaces the package whole and leaves no temporary
	// directories behind.
	require.NoError(t, os.WriteFile(filepath.Join(installed.Path, "stale"), []byte("x"), 0o644))
	_, err = p.Install(ctx, home, fsys, plan)
	require.NoError(t, err)
	assert.NoFileExists(t, filepath.Join(installed.Path, "stale"))
	entries, err := os.ReadDir(filepath.Join(home, "local_packages", "amd64"))
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func checkPackageDir(t *testing.T, pkgDir string, fsys fs.FS, plan *resolve.Plan, want PackageManifest) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(pkgDir, "package.manifest"))
	require.NoError(t, err)
	var got PackageManifest
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, want, got)

	sysroot := filepath.Join(pkgDir, "sysroot")
	for _, e := range plan.Entries {
		host := filepath.Join(sysroot, filepath.FromSlash(e.Path))
		st, err := os.Lstat(host)
		if !assert.NoError(t, err, e.Path) {
			continue
		}
		switch e.Kind {
		case resolve.KindDir:
			assert.True(t, st.IsDir(), e.Path)
		case resolve.KindSymlink:
			if filepath.Dir(e.Path) == "/" && st.IsDir() {
				// A top-level link to a directory is a directory of links
				// to the target's entries, for ops.
				checkSpreadLink(t, sysroot, plan, e)
				continue
			}
			require.Equal(t, fs.ModeSymlink, st.Mode().Type(), e.Path)
			real, err := filepath.EvalSymlinks(host)
			if assert.NoError(t, err, "%s must resolve on the host", e.Path) {
				assert.True(t, strings.HasPrefix(real, sysroot+"/"), "%s resolves to %s, outside sysroot", e.Path, real)
			}
		case resolve.KindFile:
			want, err := fs.ReadFile(fsys, strings.TrimPrefix(e.Path, "/"))
			require.NoError(t, err)
			gotData, err := os.ReadFile(host)
			require.NoError(t, err)
			assert.Equal(t, sha256.Sum256(want), sha256.Sum256(gotData), e.Path)
			assert.Equal(t, e.Mode.Perm(), st.Mode().Perm(), e.Path)
		case resolve.KindGenerated:
			gotData, err := os.ReadFile(host)
			require.NoError(t, err)
			assert.Equal(t, e.Content, gotData, e.Path)
		}
	}
	// The program ops validates is an ELF file reached inside sysroot.
	prog, err := filepath.EvalSymlinks(filepath.Join(sysroot, want.Program))
	require.NoError(t, err)
	head := make([]byte, 4)
	f, err := os.Open(prog)
	require.NoError(t, err)
	defer f.Close()
	_, err = io.ReadFull(f, head)
	require.NoError(t, err)
	assert.Equal(t, "\x7fELF", string(head))
}

func checkSpreadLink(t *testing.T, sysroot string, plan *resolve.Plan, e resolve.Entry) {
	t.Helper()
	target := filepath.Join("/", e.Target)
	d, ok := plan.Lookup(target)
	require.True(t, ok && d.Kind == resolve.KindDir, "%s -> %s spread, but the target is no directory of the plan", e.Path, e.Target)
	n := 0
	for _, c := range plan.Entries {
		if filepath.Dir(c.Path) != target || c.Path == target {
			continue
		}
		n++
		via, err := filepath.EvalSymlinks(filepath.Join(sysroot, e.Path, filepath.Base(c.Path)))
		require.NoError(t, err)
		direct, err := filepath.EvalSymlinks(filepath.Join(sysroot, c.Path))
		require.NoError(t, err)
		assert.Equal(t, direct, via, "%s/%s", e.Path, filepath.Base(c.Path))
	}
	assert.Positive(t, n)
}

// treeHashes maps each path under root to its type and content hash (or
// link target).
func treeHashes(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = "link " + target
			return err
		case d.IsDir():
			out[rel] = "dir " + info.Mode().Perm().String()
		default:
			data, err := os.ReadFile(p)
			out[rel] = fmt.Sprintf("%v %x", info.Mode().Perm(), sha256.Sum256(data))
			return err
		}
		return nil
	}))
	return out
}

// TestPackageFailureLeavesNothing: a file that cannot be read fails the
// write with its path, and neither an archive nor a package directory is
// left behind (an existing package stays as it was).
func TestPackageFailureLeavesNothing(t *testing.T) {
	fsys, plan := fixturePlan(t)
	p, err := NewPackage(disk.ManifestFromPlan(plan), "fixture_1.0", "amd64")
	require.NoError(t, err)
	dir := t.TempDir()
	ctx := context.Background()
	home := filepath.Join(dir, "ops")
	good, err := p.Install(ctx, home, fsys, plan)
	require.NoError(t, err)
	before := treeHashes(t, good.Path)

	broken := *plan
	broken.Entries = append([]resolve.Entry(nil), plan.Entries...)
	for i, e := range broken.Entries {
		if e.Kind == resolve.KindFile {
			broken.Entries[i].Size = e.Size + 1 // the image now "says" one byte more than the file has
			break
		}
	}
	archive := filepath.Join(dir, "p.tar.gz")
	_, err = p.WriteArchive(ctx, archive, fsys, &broken)
	require.Error(t, err)
	assert.NoFileExists(t, archive)
	_, err = p.Install(ctx, home, fsys, &broken)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bytes, the image said")
	assert.Equal(t, before, treeHashes(t, good.Path), "the installed package is untouched")
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, left, 1, "only the ops home: no temporary archive")
	entries, err := os.ReadDir(filepath.Join(home, "local_packages", "amd64"))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary package directory")
}

// TestPackageHostileLinks: links that climb out of the image root (which
// the unikernel stops at "/") must not climb out of sysroot on the host,
// where ops follows them.
func TestPackageHostileLinks(t *testing.T) {
	plan := &resolve.Plan{Program: "/bin/app", Entries: []resolve.Entry{
		{Path: "/", Kind: resolve.KindDir, Mode: 0o755},
		{Path: "/etc", Kind: resolve.KindDir, Mode: 0o755},
		{Path: "/etc/abs", Kind: resolve.KindSymlink, Target: "/etc/shadow"},
		{Path: "/etc/climb", Kind: resolve.KindSymlink, Target: "../../../../../../etc/shadow"},
		{Path: "/etc/dots", Kind: resolve.KindSymlink, Target: "./../.././../etc/./shadow"},
	}}
	p, err := NewPackage(disk.Manifest{Program: "/bin/app"}, "hostile_1", "amd64")
	require.NoError(t, err)
	info, err := p.Install(context.Background(), t.TempDir(), fstest.MapFS{}, plan)
	require.NoError(t, err)
	sysroot := filepath.Join(info.Path, "sysroot")
	for _, name := range []string{"abs", "climb", "dots"} {
		link := filepath.Join(sysroot, "etc", name)
		target, err := os.Readlink(link)
		require.NoError(t, err)
		lands := filepath.Clean(filepath.Join(filepath.Dir(link), target))
		assert.Equal(t, filepath.Join(sysroot, "etc", "shadow"), lands, "%s -> %s", name, target)
	}
}
