package disk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/tfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// planImage is an image tree and a plan over it: many files of varied
// sizes, a symlink, a generated file, and entries at kernel-reserved paths.
func planImage() (fstest.MapFS, *resolve.Plan) {
	img := fstest.MapFS{}
	p := &resolve.Plan{
		Program:    "/bin/app",
		Args:       []string{"app", "--port", "80"},
		Env:        []string{"PATH=/bin", "EMPTY=", "NOVALUE", "X=a=b"},
		WorkingDir: "/srv",
	}
	add := func(e resolve.Entry) { p.Entries = append(p.Entries, e) }
	for _, d := range []string{"/", "/bin", "/dev", "/etc", "/lib", "/srv"} {
		add(resolve.Entry{Path: d, Kind: resolve.KindDir, Mode: 0o755})
	}
	for i := range 40 {
		name := fmt.Sprintf("lib/lib%02d.so", i)
		data := bytes.Repeat([]byte{byte(i)}, i*1000+i%7)
		img[name] = &fstest.MapFile{Data: data, Mode: 0o644}
		add(resolve.Entry{Path: "/" + name, Kind: resolve.KindFile, Size: int64(len(data)), Mode: 0o644})
	}
	img["bin/app"] = &fstest.MapFile{Data: []byte("\x7fELF app"), Mode: 0o755}
	add(resolve.Entry{Path: "/bin/app", Kind: resolve.KindFile, Size: 8, Mode: 0o755})
	img["dev/null"] = &fstest.MapFile{Data: nil, Mode: 0o644}
	add(resolve.Entry{Path: "/dev/null", Kind: resolve.KindFile, Size: 0})
	add(resolve.Entry{Path: "/etc/resolv.conf", Kind: resolve.KindGenerated, Content: []byte("nameserver 10.0.2.3\n"), Size: 20})
	add(resolve.Entry{Path: "/lib/libcur.so", Kind: resolve.KindSymlink, Target: "lib07.so", Size: 8})
	return img, p
}

// slowFS delays every read by a random few hundred microseconds, so that
// parallel readers finish in a different order each run.
type slowFS struct{ fs.FS }

func (s slowFS) Open(name string) (fs.File, error) {
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return slowFile{f}, nil
}

type slowFile struct{ fs.File }

func (f slowFile) Read(p []byte) (int, error) {
	time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
	return f.File.Read(p[:min(len(p), 1500)])
}

func TestWriteDisk(t *testing.T) {
	k := testKernel(t, probeStage1, 2)
	img, plan := planImage()
	dir := t.TempDir()

	var mu sync.Mutex
	written := map[string]int64{}
	out := filepath.Join(dir, "a.img")
	info, err := WriteDisk(context.Background(), out, slowFS{img}, plan, WithKernel(k), WithSeed([]byte("plan")), WithParallel(8),
		WithFileWritten(func(p string, n int64) { mu.Lock(); written[p] = n; mu.Unlock() }))
	require.NoError(t, err)
	assert.Equal(t, []string{"/dev/null"}, info.Skipped)
	assert.Len(t, written, 42) // 40 libs, app, resolv.conf
	assert.EqualValues(t, 20, written["/etc/resolv.conf"])

	disk := readFile(t, out)
	require.NoError(t, tfs.Verify(bytes.NewReader(disk), int64(len(disk))))
	rfs, err := tfs.Open(bytes.NewReader(disk), int64(len(disk)))
	require.NoError(t, err)
	for name, f := range img {
		if name == "dev/null" {
			continue
		}
		b, err := rfs.ReadFile(name)
		require.NoError(t, err, name)
		sameBytes(t, f.Data, b, name)
	}
	b, err := rfs.ReadFile("etc/resolv.conf")
	require.NoError(t, err)
	assert.Equal(t, "nameserver 10.0.2.3\n", string(b))
	target, err := rfs.ReadLink("lib/libcur.so")
	require.NoError(t, err)
	assert.Equal(t, "lib07.so", target)
	fi, err := rfs.Stat("srv")
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
	m := rfs.Manifest()
	assert.Equal(t, tfs.String("/bin/app"), m["program"])
	assert.Equal(t, tfs.Strings("app", "--port", "80"), m["arguments"])
	assert.Equal(t, tfs.Tuple{"PATH": tfs.String("/bin"), "EMPTY": tfs.String(""), "X": tfs.String("a=b")}, m["environment"])
	assert.Equal(t, tfs.String("/srv"), m["cwd"])

	// Same plan, any parallelism and timing: the same bytes.
	for _, par := range []int{1, 3, 16} {
		o := filepath.Join(dir, fmt.Sprintf("p%d.img", par))
		_, err := WriteDisk(context.Background(), o, slowFS{img}, plan, WithKernel(k), WithSeed([]byte("plan")), WithParallel(par))
		require.NoError(t, err)
		sameBytes(t, disk, readFile(t, o), fmt.Sprintf("parallel %d", par))
	}

	// Files served as *os.File (os.DirFS) take the same places.
	host := t.TempDir()
	for name, f := range img {
		require.NoError(t, os.MkdirAll(filepath.Join(host, filepath.Dir(name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(host, name), f.Data, 0o644))
	}
	o := filepath.Join(dir, "host.img")
	_, err = WriteDisk(context.Background(), o, os.DirFS(host), plan, WithKernel(k), WithSeed([]byte("plan")))
	require.NoError(t, err)
	sameBytes(t, disk, readFile(t, o), "from os.DirFS")
}

func TestWriteDiskManifestOverride(t *testing.T) {
	img, plan := planImage()
	m := ManifestFromPlan(plan)
	m.Extra = tfs.Tuple{"readonly_rootfs": tfs.Flag{}}
	m.Environment["EXTRA"] = "1"
	out := filepath.Join(t.TempDir(), "m.img")
	_, err := WriteDisk(context.Background(), out, img, plan, WithoutBootloader(), WithManifest(m))
	require.NoError(t, err)
	disk := readFile(t, out)
	rfs, err := tfs.Open(bytes.NewReader(disk), int64(len(disk)))
	require.NoError(t, err)
	assert.Equal(t, tfs.Flag{}, rfs.Manifest()["readonly_rootfs"])
	assert.Equal(t, tfs.String("1"), rfs.Manifest()["environment"].(tfs.Tuple)["EXTRA"])

	plan.WorkingDir = "/"
	assert.Empty(t, ManifestFromPlan(plan).Cwd, "/ is the default")
}

// failingFS fails reading one file after some bytes.
type failingFS struct {
	fs.FS
	bad string
}

func (f failingFS) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil || name != f.bad {
		return file, err
	}
	return failingFile{file}, nil
}

type failingFile struct{ fs.File }

func (failingFile) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestWriteDiskErrors(t *testing.T) {
	img, plan := planImage()
	short := *plan
	short.Entries = append([]resolve.Entry(nil), plan.Entries...)
	for i, e := range short.Entries {
		if e.Path == "/bin/app" {
			short.Entries[i].Size = 100 // the image's file is 8 bytes
		}
	}
	missing := *plan
	missing.Entries = append(append([]resolve.Entry(nil), plan.Entries...),
		resolve.Entry{Path: "/lib/zz-missing.so", Kind: resolve.KindFile, Size: 3})

	tests := []struct {
		name string
		fsys fs.FS
		plan *resolve.Plan
		err  string
	}{
		{"file shorter than planned", img, &short, "/bin/app"},
		{"file missing", img, &missing, "/lib/zz-missing.so"},
		{"read fails", failingFS{img, "lib/lib20.so"}, plan, "/lib/lib20.so"},
		{"no plan", img, nil, "no plan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := WriteDisk(context.Background(), filepath.Join(dir, "x.img"), slowFS{tt.fsys}, tt.plan, WithoutBootloader(), WithParallel(4))
			require.ErrorContains(t, err, tt.err)
			assertEmptyDir(t, dir)
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	_, err := WriteDisk(ctx, filepath.Join(dir, "x.img"), img, plan, WithoutBootloader())
	require.ErrorIs(t, err, context.Canceled)
	assertEmptyDir(t, dir)
}

// gatedFS holds every read of the files in late until open is closed: bytes
// still on their way over the network.
type gatedFS struct {
	fs.FS
	late map[string]bool
	open chan struct{}
}

func (g gatedFS) Open(name string) (fs.File, error) {
	f, err := g.FS.Open(name)
	if err != nil || !g.late[name] {
		return f, err
	}
	return gatedFile{File: f, open: g.open}, nil
}

type gatedFile struct {
	fs.File
	open chan struct{}
}

func (f gatedFile) Read(p []byte) (int, error) {
	<-f.open
	return f.File.Read(p)
}

// TestWriteDiskLateFilesHoldNothingUp: with the default parallelism, the
// files whose bytes are all in go into the disk while many files before
// them in the plan still wait for theirs (a lazy image's bytes come in the
// order they were asked for, not the plan's); the disk is the same as
// when every file is there at once.
func TestWriteDiskLateFilesHoldNothingUp(t *testing.T) {
	img, plan := planImage()
	late := map[string]bool{}
	for i := 1; i <= 20; i++ { // half the libraries (lib00.so is empty: nothing to wait for)
		late[fmt.Sprintf("lib/lib%02d.so", i)] = true
	}
	gated := gatedFS{FS: img, late: late, open: make(chan struct{})}
	var mu sync.Mutex
	written := map[string]bool{}
	allIn := make(chan struct{})
	dir := t.TempDir()
	done := make(chan error, 1)
	go func() {
		_, err := WriteDisk(context.Background(), filepath.Join(dir, "late.img"), gated, plan, WithoutBootloader(), WithSeed([]byte("plan")),
			WithFileWritten(func(p string, _ int64) {
				mu.Lock()
				defer mu.Unlock()
				written[p] = true
				if len(written) == 42-len(late) {
					close(allIn)
				}
			}))
		done <- err
	}()
	select {
	case <-allIn:
	case <-time.After(30 * time.Second):
		mu.Lock()
		n := len(written)
		mu.Unlock()
		close(gated.open)
		t.Fatalf("%d of the %d files whose bytes were in went into the disk while %d others waited", n, 42-len(late), len(late))
	}
	mu.Lock()
	for p := range written {
		assert.False(t, late[p[1:]], "%s was written before its bytes came", p)
	}
	mu.Unlock()
	close(gated.open)
	require.NoError(t, <-done)

	o := filepath.Join(dir, "all.img")
	_, err := WriteDisk(context.Background(), o, img, plan, WithoutBootloader(), WithSeed([]byte("plan")))
	require.NoError(t, err)
	sameBytes(t, readFile(t, o), readFile(t, filepath.Join(dir, "late.img")), "late files")
}
