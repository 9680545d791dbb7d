package build

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/fusefs"
	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm"
	"github.com/nanofs/nanofs/vm/kernel"
	"github.com/nanofs/nanofs/vm/opsconfig"
)

// noKernel hides every kernel Build could find.
func noKernel(t *testing.T) {
	t.Setenv(kernel.EnvKernel, "")
	t.Setenv(kernel.EnvBoot, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("OPS_HOME", t.TempDir())
}

// TestBuild calls the pipeline directly on an image in a registry: the
// result describes the disk, the disk holds the plan, and the same inputs
// give the same bytes.
func TestBuild(t *testing.T) {
	fx := testimage.CFixtures(t)
	reg := testimage.StartInProcessRegistry(t)
	ref := reg.Push(t, "build/fixtures:1", testimage.FixturesSpec(t).Image(t, testimage.EStargz)).String()
	cache := t.TempDir()
	var phases []Phase
	build := func(out string) *Result {
		t.Helper()
		res, err := Build(context.Background(), ref, WithEntry(fx.Dynamic), WithArgs("a1"), WithoutBootloader(),
			WithOutput(out), WithImageOptions(lazy.WithCacheDir(cache)), WithHostDir(t.TempDir()),
			WithProgress(func(p Progress) {
				if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
					phases = append(phases, p.Phase)
				}
			}))
		require.NoError(t, err)
		return res
	}
	dir := t.TempDir()
	res := build(filepath.Join(dir, "a.img"))
	assert.Equal(t, filepath.Join(dir, "a.img"), res.Output)
	assert.Equal(t, lazy.KindRegistry, res.Source.Kind)
	assert.Equal(t, fx.Dynamic, res.Plan.Program)
	assert.Equal(t, []string{fx.Dynamic, "a1"}, res.Manifest.Arguments)
	assert.False(t, res.Disk.Bootloader)
	assert.Positive(t, res.Files)
	assert.Positive(t, res.Fetched.Bytes)
	assert.Contains(t, phases, PhaseWrite)
	assert.Equal(t, PhaseDone, phases[len(phases)-1])
	disk := testimage.OpenDisk(t, res.Output)
	for _, e := range res.Plan.Entries {
		if e.Kind == resolve.KindFile {
			_, err := disk.Stat(strings.TrimPrefix(e.Path, "/"))
			assert.NoError(t, err, e.Path)
		}
	}

	again := build(filepath.Join(dir, "b.img"))
	a, err := os.ReadFile(res.Output)
	require.NoError(t, err)
	b, err := os.ReadFile(again.Output)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(a, b), "the same inputs give the same disk")
}

// TestBuildDirectory builds from a plain directory, a root filesystem:
// the program must be named, and the disk holds its closure.
func TestBuildDirectory(t *testing.T) {
	fx := testimage.CFixtures(t)
	out := filepath.Join(t.TempDir(), "d.img")
	_, err := Build(context.Background(), fx.Root, WithoutBootloader(), WithOutput(out))
	require.ErrorIs(t, err, ErrNoConfig)

	res, err := Build(context.Background(), fx.Root, WithEntry(fx.Dynamic), WithoutBootloader(), WithOutput(out), WithHostDir(t.TempDir()))
	require.NoError(t, err)
	assert.Equal(t, lazy.KindDirectory, res.Source.Kind)
	assert.Equal(t, fx.Dynamic, res.Plan.Program)
	_, err = testimage.OpenDisk(t, out).Stat(strings.TrimPrefix(fx.Dynamic, "/"))
	assert.NoError(t, err)
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	require.NoError(t, os.Mkdir(rootfs, 0o755))
	assert.Equal(t, "rootfs.img", DefaultDiskName(rootfs))
}

// TestBuildFromMount builds with no source named from inside a nanofs
// mount: the files are read through the mount, as from the directory it
// serves.
func TestBuildFromMount(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse (load the fuse kernel module) and fuse3 (apt-get install fuse3)")
	}
	fx := testimage.CFixtures(t)
	root, err := os.OpenRoot(fx.Root)
	require.NoError(t, err)
	defer root.Close()
	mnt := t.TempDir()
	srv, err := fusefs.Mount(mnt, root.FS(), fusefs.WithSource(fx.Root))
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			_ = fusefs.Unmount(mnt)
		}
	})

	_, err = Build(context.Background(), "", WithEntry(fx.Dynamic), WithHostDir(t.TempDir()))
	require.ErrorIs(t, err, fusefs.ErrNotInMount, "outside a mount, a source must be named")

	dir := t.TempDir()
	inside := filepath.Join(mnt, "usr")
	fromMount, err := Build(context.Background(), "", WithEntry(fx.Dynamic), WithoutBootloader(),
		WithOutput(filepath.Join(dir, "m.img")), WithHostDir(inside))
	require.NoError(t, err)
	assert.Equal(t, lazy.KindDirectory, fromMount.Source.Kind)
	assert.Equal(t, mnt, fromMount.Image)
	fromDir, err := Resolve(context.Background(), fx.Root, WithEntry(fx.Dynamic), WithHostDir(t.TempDir()))
	require.NoError(t, err)
	assert.Equal(t, fromDir.Plan.Entries, fromMount.Plan.Entries, "the mount serves the same tree")
}

// TestBuildErrors: the image is checked before the kernel is looked for
// (issue #15), errors name the output rather than a temporary file, and an
// unreachable registry suggests the local kinds of sources.
func TestBuildErrors(t *testing.T) {
	noKernel(t)
	fx := testimage.CFixtures(t)
	reg := testimage.StartInProcessRegistry(t)
	ctx := context.Background()

	_, err := Build(ctx, "/does/not/exist.tar", WithEntry("x"))
	require.ErrorIs(t, err, lazy.ErrNoSuchSource)
	assert.NotErrorIs(t, err, kernel.ErrNoKernel)

	_, err = Build(ctx, reg.Host+"/no/such:1", WithEntry("x"), WithImageOptions(lazy.WithCacheDir(t.TempDir())))
	require.ErrorIs(t, err, lazy.ErrNotFound, "the missing image is reported, not the missing kernel")

	_, err = Build(ctx, fx.Root, WithEntry(fx.Dynamic), WithHostDir(t.TempDir()), WithOutput(filepath.Join(t.TempDir(), "k.img")))
	require.ErrorIs(t, err, kernel.ErrNoKernel, "a good image without a kernel")

	out := "/nonexistent-nanofs-16/x.img"
	_, err = Build(ctx, fx.Root, WithEntry(fx.Dynamic), WithoutBootloader(), WithOutput(out), WithHostDir(t.TempDir()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), out)
	assert.Contains(t, err.Error(), "no such file or directory")
	assert.NotContains(t, err.Error(), ".tmp-", "never the temporary name")

	_, err = Build(ctx, "127.0.0.1:1/node:16.3.0", WithPackage("", filepath.Join(t.TempDir(), "p.tar.gz"), false, ""),
		WithImageOptions(lazy.WithCacheDir(t.TempDir())))
	var ue *UnreachableError
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), "connection refused")
	assert.Contains(t, err.Error(), "OCI image layout directory")
	assert.Contains(t, err.Error(), "docker save")

	_, err = Build(ctx, fx.Root, WithEntry(fx.Dynamic), WithWorkdir("rel"))
	var oe *vm.OptionError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, vm.OptionWorkdir, oe.Option)

	disk := filepath.Join(t.TempDir(), "x.img")
	require.NoError(t, os.WriteFile(disk, make([]byte, 4096), 0o644))
	_, err = Build(ctx, disk)
	require.ErrorIs(t, err, ErrDiskImage)
}

// TestMachineConfig: run takes the config's RunConfig (and Kernel) under
// what the machine sets.
func TestMachineConfig(t *testing.T) {
	c, err := opsconfig.Parse([]byte(`{"Kernel": "/k.img", "RunConfig": {"Memory": "512M", "CPUs": 3, "Ports": ["8080", "9000-90"]}}`))
	require.NoError(t, err)
	for _, tc := range []struct {
		given, want Machine
	}{
		{want: Machine{Memory: "512M", CPUs: 3, Ports: []string{"8080:8080", "9000:90"}, Kernel: "/k.img"}},
		{given: Machine{Memory: "2G", CPUs: 1, Ports: []string{"1:2"}},
			want: Machine{Memory: "2G", CPUs: 1, Ports: []string{"1:2"}, Kernel: "/k.img"}},
	} {
		m := tc.given
		m.applyConfig(c)
		assert.Equal(t, tc.want, m)
	}
	var m Machine
	m.applyConfig(nil)
	assert.Equal(t, Machine{Memory: DefaultMemory, CPUs: 1}, m)
}

func TestDefaultDiskName(t *testing.T) {
	for ref, want := range map[string]string{
		"node:16.3.0":                 "node-16.3.0.img",
		"localhost:5000/team/app:1.2": "app-1.2.img",
		"app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": "app-0123456789ab.img",
	} {
		assert.Equal(t, want, DefaultDiskName(ref), ref)
	}
}

// TestDiskWithArguments: a built disk given arguments boots a copy whose
// root has the program's name and those arguments; the disk itself is
// untouched, and a file that is no TFS disk says so.
func TestDiskWithArguments(t *testing.T) {
	fx := testimage.CFixtures(t)
	reg := testimage.StartInProcessRegistry(t)
	ref := reg.Push(t, "build/args:1", testimage.FixturesSpec(t).Image(t, testimage.EStargz)).String()
	out := filepath.Join(t.TempDir(), "a.img")
	_, err := Build(context.Background(), ref, WithEntry(fx.Dynamic), WithArgs("a1"), WithoutBootloader(),
		WithOutput(out), WithImageOptions(lazy.WithCacheDir(t.TempDir())), WithHostDir(t.TempDir()))
	require.NoError(t, err)
	before, err := os.ReadFile(out)
	require.NoError(t, err)

	cp, cleanup, err := DiskWithArguments(out, []string{"x", "y"})
	require.NoError(t, err)
	f, err := os.Open(cp)
	require.NoError(t, err)
	st, err := f.Stat()
	require.NoError(t, err)
	fsys, err := tfs.Open(f, st.Size())
	require.NoError(t, err)
	assert.Equal(t, tfs.Strings(fx.Dynamic, "x", "y"), fsys.Manifest()["arguments"])
	f.Close()
	cleanup()
	_, err = os.Stat(cp)
	assert.ErrorIs(t, err, os.ErrNotExist, "cleanup removes the copy")
	after, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(before, after), "the disk is unchanged")

	junk := filepath.Join(t.TempDir(), "junk.img")
	require.NoError(t, os.WriteFile(junk, make([]byte, 1024), 0o644))
	_, _, err = DiskWithArguments(junk, []string{"x"})
	assert.ErrorContains(t, err, "no TFS magic")
}
