package disk

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/tfs"
)

// ManifestFromPlan is the manifest a plan asks for: its program (by its
// canonical path), argument
// vector, environment (NAME=VALUE; entries without "=" are left out) and
// working directory. Change it and pass it with WithManifest to WriteDisk
// to add keys.
func ManifestFromPlan(p *resolve.Plan) Manifest {
	m := Manifest{Program: p.Program, Arguments: p.Args, Cwd: p.WorkingDir}
	if p.ProgramFile != "" {
		// Nanos makes /proc/self/exe a link to the program as named; glibc
		// takes $ORIGIN from it without resolving links, so it must be the
		// canonical path Linux gives (java's RUNPATH $ORIGIN/../lib).
		m.Program = p.ProgramFile
	}
	if m.Cwd == "/" {
		m.Cwd = ""
	}
	for _, kv := range p.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if m.Environment == nil {
			m.Environment = map[string]string{}
		}
		m.Environment[k] = v
	}
	return m
}

// WithParallel sets how many files of a plan WriteDisk reads at once
// (default DefaultParallel): with a lazy image every file read may wait for
// the network. The disk's bytes do not depend on it.
func WithParallel(n int) DiskOption { return func(c *diskConfig) { c.parallel = n } }

// DefaultParallel is how many files WriteDisk reads at once unless told:
// all the files of most plans. A lazy image's bytes arrive in the order
// they were asked for, not in the plan's; with fewer readers than files,
// files whose bytes are all in wait for a reader held by a file whose
// bytes are not.
const DefaultParallel = 64

// WithFileWritten is called after each file of a plan is in the disk, with
// its path and size (for progress reports). Calls may come from several
// goroutines, one at a time.
func WithFileWritten(f func(path string, size int64)) DiskOption {
	return func(c *diskConfig) { c.fileWritten = f }
}

// WriteDisk writes a disk image (see CreateDisk) whose root filesystem holds
// the entries of plan: directories, symbolic links, generated files, and
// files whose bytes are streamed from fsys (the image the plan was made
// from) as they are read, several at once (WithParallel) but placed in
// plan order, so the same plan and options always give the same bytes. The
// manifest is ManifestFromPlan(plan) unless WithManifest says otherwise.
// Entries at paths the kernel creates itself at boot (spec §8) are left
// out and listed in DiskInfo.Skipped.
func WriteDisk(ctx context.Context, out string, fsys fs.FS, plan *resolve.Plan, opts ...DiskOption) (*DiskInfo, error) {
	if plan == nil {
		return nil, errors.New("no plan")
	}
	c := &diskConfig{parallel: DefaultParallel}
	for _, o := range opts {
		o(c)
	}
	target, err := c.targetMachine()
	if err != nil {
		return nil, err
	}
	if err := plan.CheckTarget(target); err != nil {
		return nil, err
	}
	var skipped []string
	fill := func(ctx context.Context, w *tfs.Writer) error {
		var err error
		skipped, err = addPlan(ctx, w, fsys, plan, c)
		return err
	}
	opts = append([]DiskOption{WithManifest(ManifestFromPlan(plan))}, opts...)
	info, err := CreateDisk(ctx, out, fill, opts...)
	if err != nil {
		return nil, err
	}
	info.Skipped = skipped
	return info, nil
}

// addPlan adds the plan's entries. Directories and links go in at once;
// files are read by c.parallel workers. tfs places a file's data when
// AddFile is called, so the workers take turns to call it in plan order: a
// worker calls AddFile once the previous file has its place, which it has
// when AddFile first reads it (or returns). Copies then overlap.
func addPlan(ctx context.Context, w *tfs.Writer, fsys fs.FS, plan *resolve.Plan, c *diskConfig) ([]string, error) {
	var skipped []string
	skip := func(p string, err error) bool {
		if errors.Is(err, tfs.ErrReservedPath) {
			skipped = append(skipped, p)
			return true
		}
		return false
	}
	ts := &treeSink{w: w, skip: skip}
	if err := plan.Walk(ctx, ts); err != nil {
		return nil, err
	}
	files := ts.files
	if pf, ok := fsys.(resolve.Prefetcher); ok {
		// Fetch every file's bytes ahead of the workers, in plan order
		// (the resolve queued most of them already; those are not fetched
		// twice).
		names := make([]string, 0, len(files))
		for _, e := range files {
			if e.Kind == resolve.KindFile && e.Size > 0 {
				names = append(names, strings.TrimPrefix(e.Path, "/"))
			}
		}
		pf.PrefetchLater(names...)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	turns := make([]chan struct{}, len(files)+1) // turns[i] closes when file i may call AddFile
	for i := range turns {
		turns[i] = make(chan struct{})
	}
	close(turns[0])
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	next := make(chan int)
	workers := max(1, min(c.parallel, len(files)))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := addPlanFile(ctx, w, fsys, files[i], turns[i], turns[i+1], c, &mu, skip); err != nil {
					fail(err)
				}
			}
		}()
	}
	for i := range files {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return skipped, nil
}

// addPlanFile opens one file (before its turn, so that fetching overlaps),
// waits for its turn, adds it, and hands the turn on once its data has a
// place.
func addPlanFile(ctx context.Context, w *tfs.Writer, fsys fs.FS, e resolve.Entry, mine <-chan struct{}, next chan struct{},
	c *diskConfig, mu *sync.Mutex, skip func(string, error) bool) error {
	var once sync.Once
	pass := func() { once.Do(func() { close(next) }) }
	defer pass()

	rc, err := e.Open(fsys)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	defer rc.Close()
	select {
	case <-mine:
	case <-ctx.Done():
		return ctx.Err()
	}
	var r io.Reader = rc
	if _, ok := rc.(*os.File); !ok {
		// Hand the turn on at the first read: AddFile has placed the file.
		r = &turnReader{r: rc, ctx: ctx, first: pass}
	}
	err = w.AddFile(e.Path, e.Size, r)
	pass()
	if err != nil {
		mu.Lock()
		skipped := skip(e.Path, err)
		mu.Unlock()
		if skipped {
			return nil
		}
		return err
	}
	if c.fileWritten != nil {
		mu.Lock()
		c.fileWritten(e.Path, e.Size)
		mu.Unlock()
	}
	return nil
}

// turnReader calls first before its first read and stops reading once ctx
// is done (another file failed).
type turnReader struct {
	r     io.Reader
	ctx   context.Context
	first func()
	seen  bool
}

func (t *turnReader) Read(p []byte) (int, error) {
	if !t.seen {
		t.seen = true
		t.first()
	}
	if err := t.ctx.Err(); err != nil {
		return 0, err
	}
	return t.r.Read(p)
}

// targetMachine is the ELF machine the disk's programs must be built for:
// a bootable disk's kernel is x86-64 (CreateDisk checks it); a disk
// without bootloader is for the kernel it names, or else for the host's
// architecture, which `nanofs run` boots it on.
func (c *diskConfig) targetMachine() (elf.Machine, error) {
	switch {
	case !c.noBootloader:
		return elf.EM_X86_64, nil
	case c.kernel.Kernel != "":
		f, err := elf.Open(c.kernel.Kernel)
		if err != nil {
			return elf.EM_NONE, fmt.Errorf("kernel %s: %w", c.kernel.Kernel, err)
		}
		defer f.Close()
		return f.Machine, nil
	}
	m, err := resolve.MachineForArch(runtime.GOARCH)
	if err != nil {
		return elf.EM_NONE, nil // an unknown host: nothing to check against
	}
	return m, nil
}

// treeSink puts a plan's directories and links into the volume at once and
// collects its files for the workers.
type treeSink struct {
	w     *tfs.Writer
	skip  func(p string, err error) bool
	files []resolve.Entry
}

func (s *treeSink) Dir(e resolve.Entry) error { return s.keep(e, s.w.Mkdir(e.Path)) }

func (s *treeSink) Symlink(e resolve.Entry) error { return s.keep(e, s.w.Symlink(e.Target, e.Path)) }

func (s *treeSink) File(e resolve.Entry) error {
	s.files = append(s.files, e)
	return nil
}

// keep drops the error of an entry at a path the kernel reserves.
func (s *treeSink) keep(e resolve.Entry, err error) error {
	if err != nil && s.skip(e.Path, err) {
		return nil
	}
	return err
}
