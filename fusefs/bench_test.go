package fusefs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// BenchmarkSequentialRead reads a 64 MiB file through the mount, its page
// cache dropped each time so every byte crosses FUSE, against reading the
// source file directly in the same loop. fuse/direct is the cost of FUSE.
func BenchmarkSequentialRead(b *testing.B) {
	requireFUSE(b)
	src := b.TempDir()
	const size = 64 << 20
	f, err := os.Create(filepath.Join(src, "blob"))
	require.NoError(b, err)
	require.NoError(b, f.Truncate(size))
	require.NoError(b, f.Close())
	root, err := os.OpenRoot(src)
	require.NoError(b, err)
	defer root.Close()
	mnt, _ := mountT(b, root.FS())

	buf := make([]byte, 1<<20)
	read := func(p string, drop bool) time.Duration {
		f, err := os.Open(p)
		require.NoError(b, err)
		defer f.Close()
		if drop {
			require.NoError(b, unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED))
		}
		start := time.Now()
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		require.NoError(b, err)
		require.Equal(b, int64(size), n)
		return time.Since(start)
	}
	var direct, fuse time.Duration
	b.SetBytes(size)
	for b.Loop() {
		direct += read(filepath.Join(src, "blob"), false)
		fuse += read(filepath.Join(mnt, "blob"), true)
	}
	b.ReportMetric(float64(fuse)/float64(direct), "fuse/direct")
	b.ReportMetric(float64(size)*float64(b.N)/fuse.Seconds()/1e6, "fuse-MB/s")
}

// BenchmarkMountListable times mount + listing the root for a tree of
// 100 directories with 1000 files each, against the same with one file each
// in the same run. big/small near 1 shows that mounting does not walk the
// tree.
func BenchmarkMountListable(b *testing.B) {
	requireFUSE(b)
	makeTree := func(perDir int) string {
		dir := b.TempDir()
		for d := range 100 {
			sub := filepath.Join(dir, fmt.Sprintf("d%03d", d))
			require.NoError(b, os.Mkdir(sub, 0o755))
			for f := range perDir {
				require.NoError(b, os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d", f)), nil, 0o644))
			}
		}
		return dir
	}
	small, big := makeTree(1), makeTree(1000)
	listable := func(src string) time.Duration {
		root, err := os.OpenRoot(src)
		require.NoError(b, err)
		defer root.Close()
		mnt := b.TempDir()
		start := time.Now()
		srv, err := Mount(mnt, root.FS())
		require.NoError(b, err)
		entries, err := os.ReadDir(mnt)
		elapsed := time.Since(start)
		require.NoError(b, err)
		require.Len(b, entries, 100)
		require.NoError(b, srv.Unmount())
		return elapsed
	}
	var ts, tb time.Duration
	for b.Loop() {
		ts += listable(small)
		tb += listable(big)
	}
	b.ReportMetric(float64(tb)/float64(ts), "big/small")
	b.ReportMetric(float64(tb.Microseconds())/float64(b.N)/1000, "big-ms")
}
