package tfs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchBytes is the size of the tree BenchmarkWriteTree converts:
// NANOFS_TFS_BENCH_BYTES, default 256 MiB (the 1 GiB is
// NANOFS_TFS_BENCH_BYTES=1073741824).
func benchBytes() int64 {
	if s := os.Getenv("NANOFS_TFS_BENCH_BYTES"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 256 << 20
}

var benchTreeOnce struct {
	sync.Once
	dir   string
	total int64
	files int
	err   error
}

// benchTree writes (once per test binary) a tree of about benchBytes():
// a third in four large files, the rest in files of 1 KiB to 1 MiB with
// log-uniform sizes, spread over nested directories.
func benchTree(b *testing.B) (dir string, total int64, files int) {
	o := &benchTreeOnce
	o.Do(func() {
		o.dir, o.err = os.MkdirTemp("", "nanofs-tfs-bench-")
		if o.err != nil {
			return
		}
		target := benchBytes()
		r := rand.New(rand.NewPCG(1, 2))
		buf := pseudo(42, 4<<20)
		write := func(name string, size int64) {
			p := filepath.Join(o.dir, name)
			if o.err = os.MkdirAll(filepath.Dir(p), 0o755); o.err != nil {
				return
			}
			f, err := os.Create(p)
			if err != nil {
				o.err = err
				return
			}
			for left := size; left > 0; {
				k := min(left, int64(len(buf)))
				if _, err := f.Write(buf[:k]); err != nil {
					o.err = err
				}
				left -= k
			}
			o.err = f.Close()
			o.total += size
			o.files++
		}
		for i := range 4 {
			write(fmt.Sprintf("large/blob%d", i), target/12)
		}
		for i := 0; o.total < target && o.err == nil; i++ {
			size := int64(1024 * (1 << (r.IntN(11)))) // 1 KiB .. 1 MiB
			size += r.Int64N(size)
			write(fmt.Sprintf("d%02d/s%d/f%05d", i%50, i%7, i), min(size, target-o.total))
		}
	})
	if o.err != nil {
		b.Fatal(o.err)
	}
	return o.dir, o.total, o.files
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchTreeOnce.dir != "" {
		os.RemoveAll(benchTreeOnce.dir)
	}
	os.Exit(code)
}

// plainCopy is the baseline: the same bytes, file after file in the same
// order, appended to one output file with io.Copy (which lets the kernel
// copy, as cat and cp do).
func plainCopy(dir, out string) error {
	dst, err := os.Create(out)
	if err != nil {
		return err
	}
	defer dst.Close()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(dst, src)
		return err
	})
	if err != nil {
		return err
	}
	return dst.Close()
}

func writeTFS(dir, out string) error { return writeTFSFrom(os.DirFS(dir), out) }

// writeTFSBuffered hides that the sources are *os.File, forcing the
// writer's buffered copy (the path taken for sources such as lazily
// fetched images).
func writeTFSBuffered(dir, out string) error { return writeTFSFrom(hiddenFS{os.DirFS(dir)}, out) }

func writeTFSFrom(src fs.FS, out string) error {
	dst, err := os.Create(out)
	if err != nil {
		return err
	}
	defer dst.Close()
	w, err := NewWriter(dst)
	if err != nil {
		return err
	}
	if err := w.AddFS(context.Background(), src, nil); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return dst.Close()
}

// BenchmarkWriteTree measures the writer converting a directory tree into
// a volume file against a plain copy of the same bytes into the same
// directory, in the same run; "ratio" is tfs throughput / copy throughput.
// "kernel-copy" reads *os.File sources (copy_file_range, like the
// baseline); "buffered" hides them, so contents pass through the writer's
// buffer as they do from any other io.Reader.
func BenchmarkWriteTree(b *testing.B) {
	b.Run("kernel-copy", func(b *testing.B) { benchWriteTree(b, writeTFS) })
	b.Run("buffered", func(b *testing.B) { benchWriteTree(b, writeTFSBuffered) })
}

func benchWriteTree(b *testing.B, writeTFS func(dir, out string) error) {
	dir, total, files := benchTree(b)
	out := filepath.Join(b.TempDir(), "out")
	var copyTime, tfsTime time.Duration
	timed := func(f func(string, string) error) time.Duration {
		os.Remove(out)
		// Start each side with no dirty pages left by the other, so that
		// neither pays for the other's writeback.
		syscall.Sync()
		t0 := time.Now()
		if err := f(dir, out); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 { // alternate the order so neither side always runs on a warmer cache
			copyTime += timed(plainCopy)
			tfsTime += timed(writeTFS)
		} else {
			tfsTime += timed(writeTFS)
			copyTime += timed(plainCopy)
		}
	}
	b.StopTimer()
	mb := float64(total) * float64(b.N) / 1e6
	b.ReportMetric(mb/copyTime.Seconds(), "copy-MB/s")
	b.ReportMetric(mb/tfsTime.Seconds(), "tfs-MB/s")
	b.ReportMetric(copyTime.Seconds()/tfsTime.Seconds(), "ratio")
	b.ReportMetric(float64(files), "files")
}

// discardAt is an io.WriterAt that keeps nothing.
type discardAt struct{}

func (discardAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// heapSampler tracks the peak live heap while it runs.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap() *heapSampler {
	s := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(s.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > s.peak.Load() {
				s.peak.Store(v)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *heapSampler) finish() uint64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// BenchmarkManySmallFiles reports the writer's memory for 100,000 small
// files: live heap per entry once they are added (the metadata the writer
// keeps) and peak live heap per entry up to the end of Close (encoding the
// log included). File contents never stay in memory.
func BenchmarkManySmallFiles(b *testing.B) {
	const n = 100000
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("usr/share/pkg%03d/dir%02d/file-%06d.txt", i/1000, i%17, i)
	}
	data := strings.Repeat("x", 100)
	var retained, peak uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		s := sampleHeap()
		w, err := NewWriter(discardAt{})
		if err != nil {
			b.Fatal(err)
		}
		for _, name := range names {
			if err := w.AddFile(name, int64(len(data)), strings.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		retained += m1.HeapAlloc - m0.HeapAlloc
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		peak += s.finish() - min(m0.HeapAlloc, s.peak.Load())
		runtime.KeepAlive(w)
	}
	b.ReportMetric(float64(retained)/float64(b.N)/n, "B/entry")
	b.ReportMetric(float64(peak)/float64(b.N)/n, "peak-B/entry")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
}
