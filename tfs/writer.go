package tfs

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
)

// DefaultFreeSpace is the free space left after the log unless WithFreeSpace
// says otherwise: the kernel pre-reserves two 1024-sector log areas before
// it creates any file extent and appends to the log at first boot (§3.4).
const DefaultFreeSpace = 1 << 20

// Option configures a Writer.
type Option func(*config)

type config struct {
	uuid          [16]byte
	uuidSet       bool
	seed          []byte
	label         string
	freeSpace     int64
	size          int64
	offset        int64
	allowReserved bool
}

// WithSeed derives the volume UUID from seed (SHA-256), so that the same
// entries written with the same seed give a byte-identical image. Without
// WithSeed or WithUUID the UUID derives from the empty seed.
func WithSeed(seed []byte) Option {
	return func(c *config) { c.seed = slices.Clone(seed) }
}

// WithUUID sets the 16 UUID bytes exactly; it overrides WithSeed.
func WithUUID(uuid [16]byte) Option {
	return func(c *config) { c.uuid, c.uuidSet = uuid, true }
}

// WithLabel sets the volume label (at most MaxLabelLen bytes, no NUL). The
// kernel can mount extra volumes by label.
func WithLabel(label string) Option {
	return func(c *config) { c.label = label }
}

// WithFreeSpace sets the minimum free space, in bytes, left after the log
// (default DefaultFreeSpace; 0 for read-only volumes such as a boot FS).
func WithFreeSpace(bytes int64) Option {
	return func(c *config) { c.freeSpace = bytes }
}

// WithSize makes the volume exactly bytes long (a multiple of SectorSize):
// entries that would not fit together with the log and the free space are
// refused. A boot FS is WithSize(12<<20); a fixed size also lets a stream
// writer's caller know the final size before the first byte is written.
func WithSize(bytes int64) Option {
	return func(c *config) { c.size = bytes }
}

// WithOffset places the volume offset bytes into dst, for example at its
// partition inside a whole disk image (like io.NewOffsetWriter, but dst
// stays an *os.File, so the kernel-side copy of file contents still
// applies).
func WithOffset(offset int64) Option {
	return func(c *config) { c.offset = offset }
}

// AllowReservedPaths accepts entries at the paths the kernel creates at boot
// (see ErrReservedPath). Only for volumes that are not root filesystems.
func AllowReservedPaths() Option {
	return func(c *config) { c.allowReserved = true }
}

// maxVolumeSectors bounds sector arithmetic (2^53 sectors are 4 EiB).
const maxVolumeSectors = 1 << 53

// DataSize is the space the data of a file of size bytes occupies in a
// volume: size rounded up to whole sectors. NewStreamWriter wants the sum
// over all files (hard links, symlinks and directories take none).
func DataSize(size int64) int64 {
	return (size + SectorSize - 1) / SectorSize * SectorSize
}

type kind uint8

const (
	kindDir kind = iota + 1
	kindFile
	kindSymlink
	kindLink // a hard link: another name for the node at target
)

// node is the writer's metadata for one entry; file contents never stay in
// memory.
type node struct {
	name     string
	kind     kind
	nlink    uint32
	size     int64  // file length
	start    int64  // first data sector
	target   string // symlink target, or the path a hard link names
	children []*node
	link     *node // resolved hard link
}

// Writer writes a TFS v5 volume. Data is placed as it arrives; the tree is
// kept in memory (metadata only) and written as the log when Close is
// called. Its methods are safe for concurrent use; with NewWriter the
// contents of different files are copied concurrently.
type Writer struct {
	cfg  config
	uuid [16]byte

	at       io.WriterAt   // NewWriter
	stream   *bufio.Writer // NewStreamWriter
	capacity int64         // stream mode: declared data sectors

	// file is dst when it is an *os.File: contents of *os.File sources are
	// then copied by the kernel (copy_file_range), which moves its offset,
	// hence fileMu.
	file   *os.File
	fileMu sync.Mutex
	// writebacks bounds the sync_file_range calls running; wb waits for
	// them.
	writebacks chan struct{}
	wb         sync.WaitGroup

	mu       sync.Mutex
	root     *node
	nodes    map[string]*node
	links    []*node
	manifest Tuple
	next     int64 // next free data sector
	inflight sync.WaitGroup
	closed   bool
	err      error // sticky: the output is unusable
	size     int64
}

// NewWriter returns a Writer on seekable output: file data is written from
// sector 1 in the order AddFile is called (concurrent AddFile calls copy in
// parallel, so dst must then accept concurrent WriteAt calls, as *os.File
// does), the log after the data, sector 0 last. Use
// WithOffset or io.NewOffsetWriter to place the volume inside a larger disk
// image. Only the volume's last sector is written inside the free space, so
// a fresh file stays sparse there. When dst is an *os.File, contents read
// from *os.File sources are copied by the kernel and dst's file offset
// moves.
func NewWriter(dst io.WriterAt, opts ...Option) (*Writer, error) {
	w, err := newWriter(opts)
	if err != nil {
		return nil, err
	}
	w.at = dst
	w.file, _ = dst.(*os.File)
	w.writebacks = make(chan struct{}, maxWritebacks)
	return w, nil
}

// NewStreamWriter returns a Writer that writes strictly sequentially to
// dst, for example a pipe. dataSize is the total of DataSize over every
// file that will be added (more is refused, less is zero-filled): sector 0
// links to the log placed right after that much data, so it can be written
// first. Files are written in the order AddFile is called; calls are
// serialized.
func NewStreamWriter(dst io.Writer, dataSize int64, opts ...Option) (*Writer, error) {
	if dataSize < 0 {
		return nil, fmt.Errorf("tfs: negative data size %d", dataSize)
	}
	w, err := newWriter(opts)
	if err != nil {
		return nil, err
	}
	if w.cfg.offset != 0 {
		return nil, errors.New("tfs: WithOffset is for NewWriter; write what precedes the volume to the stream yourself")
	}
	w.capacity = DataSize(dataSize) / SectorSize
	if w.cfg.size > 0 && (1+w.capacity+extSectors)*SectorSize+DataSize(w.cfg.freeSpace) > w.cfg.size {
		return nil, fmt.Errorf("tfs: %d bytes of data, a log extension and %d bytes of free space do not fit in a %d-byte volume", dataSize, w.cfg.freeSpace, w.cfg.size)
	}
	w.stream = bufio.NewWriterSize(dst, copyBufSize)
	if _, err := w.stream.Write(sector0(w.uuid, w.cfg.label, 1+w.capacity)); err != nil {
		return nil, fmt.Errorf("tfs: writing sector 0: %w", err)
	}
	return w, nil
}

func newWriter(opts []Option) (*Writer, error) {
	cfg := config{freeSpace: DefaultFreeSpace}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.label) > MaxLabelLen || strings.IndexByte(cfg.label, 0) >= 0 {
		return nil, fmt.Errorf("tfs: label %q: at most %d bytes, no NUL", cfg.label, MaxLabelLen)
	}
	if cfg.freeSpace < 0 || cfg.freeSpace > maxVolumeSectors*SectorSize {
		return nil, fmt.Errorf("tfs: free space %d out of range", cfg.freeSpace)
	}
	if cfg.offset < 0 {
		return nil, fmt.Errorf("tfs: negative offset %d", cfg.offset)
	}
	if cfg.size < 0 || cfg.size%SectorSize != 0 {
		return nil, fmt.Errorf("tfs: volume size %d is not a non-negative multiple of %d", cfg.size, SectorSize)
	}
	w := &Writer{
		cfg:      cfg,
		root:     &node{kind: kindDir, nlink: 1},
		nodes:    make(map[string]*node),
		manifest: Tuple{},
		next:     1,
	}
	if cfg.uuidSet {
		w.uuid = cfg.uuid
	} else {
		sum := sha256.Sum256(append([]byte("nanofs tfs uuid\x00"), cfg.seed...))
		copy(w.uuid[:], sum[:])
	}
	return w, nil
}

var errClosed = errors.New("tfs: writer is closed")

// usable reports why no more entries can be added; w.mu is held.
func (w *Writer) usable() error {
	if w.closed {
		return errClosed
	}
	if w.err != nil {
		return fmt.Errorf("tfs: writer failed earlier: %w", w.err)
	}
	return nil
}

// insert adds a node of kind k at the clean path p, creating missing parent
// directories; w.mu is held.
func (w *Writer) insert(op, p string, k kind) (*node, error) {
	if p == rootPathMatch {
		if k == kindDir {
			return w.root, nil
		}
		return nil, &fs.PathError{Op: op, Path: "/", Err: fs.ErrExist}
	}
	if !w.cfg.allowReserved {
		if err := checkReserved(p, k == kindDir); err != nil {
			return nil, &fs.PathError{Op: op, Path: "/" + p, Err: err}
		}
	}
	if n, ok := w.nodes[p]; ok {
		if k == kindDir && n.kind == kindDir {
			return n, nil
		}
		return nil, &fs.PathError{Op: op, Path: "/" + p, Err: fs.ErrExist}
	}
	parent, err := w.dir(op, path.Dir(p))
	if err != nil {
		return nil, err
	}
	p = strings.Clone(p) // do not pin the caller's buffer; the name shares it
	n := &node{name: path.Base(p), kind: k, nlink: 1}
	w.nodes[p] = n
	parent.children = append(parent.children, n)
	return n, nil
}

// dir returns the directory at p, creating it if missing.
func (w *Writer) dir(op, p string) (*node, error) {
	if p == rootPathMatch {
		return w.root, nil
	}
	if n, ok := w.nodes[p]; ok {
		if n.kind != kindDir {
			return nil, &fs.PathError{Op: op, Path: "/" + p, Err: errors.New("not a directory")}
		}
		return n, nil
	}
	return w.insert(op, p, kindDir)
}

// Mkdir adds a directory. Parents are created as needed, here and for every
// other entry, so entries may come in any order; adding an existing
// directory again is not an error.
func (w *Writer) Mkdir(name string) error {
	p, err := cleanPath(name)
	if err != nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: err}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	_, err = w.insert("mkdir", p, kindDir)
	return err
}

// Symlink adds a symbolic link name pointing at target; relative targets
// resolve from the link's directory, absolute ones from the volume root.
func (w *Writer) Symlink(target, name string) error {
	p, err := cleanPath(name)
	if err == nil && (target == "" || len(target) > maxTargetLen || strings.IndexByte(target, 0) >= 0) {
		err = fmt.Errorf("invalid target %q: empty, NUL or longer than %d bytes", target, maxTargetLen)
	}
	if err != nil {
		return &fs.PathError{Op: "symlink", Path: name, Err: err}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	n, err := w.insert("symlink", p, kindSymlink)
	if err != nil {
		return err
	}
	n.target = target
	return nil
}

// Link adds newname as a hard link to the regular file or symlink at
// oldname (an exact path, not resolved through symlinks). oldname may be
// added later; it is looked up at Close. Both names share one tuple and
// get nlink set (spec §5.4).
func (w *Writer) Link(oldname, newname string) error {
	oldp, err := cleanPath(oldname)
	if err != nil {
		return &fs.PathError{Op: "link", Path: oldname, Err: err}
	}
	p, err := cleanPath(newname)
	if err != nil {
		return &fs.PathError{Op: "link", Path: newname, Err: err}
	}
	if oldp == p || oldp == rootPathMatch {
		return &fs.PathError{Op: "link", Path: newname, Err: fmt.Errorf("cannot link to %q", oldname)}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	n, err := w.insert("link", p, kindLink)
	if err != nil {
		return err
	}
	n.target = strings.Clone(oldp)
	w.links = append(w.links, n)
	return nil
}

// AddFile adds a regular file of size bytes whose contents are read from r
// as they arrive, exactly size bytes (nothing past them is read). Contents
// pass through a bounded buffer straight to the output. An error while
// copying leaves the output unusable: later calls and Close fail.
func (w *Writer) AddFile(name string, size int64, r io.Reader) error {
	p, err := cleanPath(name)
	if err == nil && (size < 0 || size > maxVolumeSectors*SectorSize) {
		err = fmt.Errorf("size %d out of range", size)
	}
	if err != nil {
		return &fs.PathError{Op: "add", Path: name, Err: err}
	}
	sectors := DataSize(size) / SectorSize
	w.mu.Lock()
	if err := w.usable(); err != nil {
		w.mu.Unlock()
		return err
	}
	if err := w.fits(sectors); err != nil {
		w.mu.Unlock()
		return &fs.PathError{Op: "add", Path: "/" + p, Err: err}
	}
	n, err := w.insert("add", p, kindFile)
	if err != nil {
		w.mu.Unlock()
		return err
	}
	n.size, n.start = size, w.next
	w.next += sectors
	if w.stream != nil {
		// Sequential output: the bytes must go out in reservation order.
		defer w.mu.Unlock()
		if err := w.copyData(n, r); err != nil {
			w.err = err
			return &fs.PathError{Op: "add", Path: "/" + p, Err: err}
		}
		return nil
	}
	w.inflight.Add(1)
	w.mu.Unlock()
	defer w.inflight.Done()
	if err := w.copyData(n, r); err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = &fs.PathError{Op: "add", Path: "/" + p, Err: err}
		}
		w.mu.Unlock()
		return &fs.PathError{Op: "add", Path: "/" + p, Err: err}
	}
	// The file's bytes start for the disk now rather than all at the
	// final sync, which then has little left to wait for.
	w.writeback(n.start*SectorSize, DataSize(n.size))
	return nil
}

// maxWritebacks is how many writebacks run at once; more are dropped.
const maxWritebacks = 2

// writeback starts n bytes of the volume at off for the disk, from a
// goroutine of its own: sync_file_range blocks while the device's queue
// is full, and a copy must not wait for that. It is only a head start
// (the output's final sync writes what is left): when maxWritebacks are
// running already, it reports false and starts nothing.
func (w *Writer) writeback(off, n int64) bool {
	if w.file == nil || n <= 0 {
		return true
	}
	select {
	case w.writebacks <- struct{}{}:
	default:
		return false
	}
	w.wb.Add(1)
	go func() {
		defer w.wb.Done()
		defer func() { <-w.writebacks }()
		startWriteback(w.file, w.cfg.offset+off, n)
	}()
	return true
}

// fits checks that sectors more of data leave room for the log; w.mu is held.
func (w *Writer) fits(sectors int64) error {
	end := w.next + sectors
	if end > maxVolumeSectors {
		return fmt.Errorf("volume would exceed %d sectors", int64(maxVolumeSectors))
	}
	if w.stream != nil && end > 1+w.capacity {
		return fmt.Errorf("data exceeds the %d bytes declared to NewStreamWriter", w.capacity*SectorSize)
	}
	if w.cfg.size > 0 && (end+extSectors)*SectorSize+DataSize(w.cfg.freeSpace) > w.cfg.size {
		return fmt.Errorf("volume full: data, log and %d bytes of free space would exceed %d bytes", w.cfg.freeSpace, w.cfg.size)
	}
	return nil
}

const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyData copies n.size bytes from r to the node's sectors, zero-padding
// the last sector (spec §9 item 7).
func (w *Writer) copyData(n *node, r io.Reader) error {
	if n.size == 0 {
		return nil
	}
	if src, ok := r.(*os.File); ok && (w.file != nil || w.stream != nil) {
		return w.copyFile(n, src)
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	off := n.start * SectorSize
	done := int64(0)
	started := off // bytes before this have been handed to startWriteback
	for done < n.size {
		chunk := min(int64(len(buf)), n.size-done)
		m, err := io.ReadFull(r, buf[:chunk])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("short contents: got %d of %d bytes", done+int64(m), n.size)
			}
			return fmt.Errorf("reading contents: %w", err)
		}
		out := buf[:chunk]
		if padded := DataSize(chunk); padded != chunk {
			clear(buf[chunk:padded])
			out = buf[:padded]
		}
		if err := w.writeData(out, off); err != nil {
			return err
		}
		off += int64(len(out))
		done += chunk
		// A large file arriving over the network is copied as its bytes
		// come: what is in starts for the disk meanwhile.
		if off-started >= writebackStep && w.writeback(started, off-started) {
			started = off
		}
	}
	return nil
}

// writebackStep is how many bytes of a file copyData writes before it
// starts them for the disk.
const writebackStep = 8 << 20

// copyFile lets the kernel copy between files (copy_file_range, or splice
// into a pipe) when the platform can; os.File.ReadFrom falls back to a
// plain copy otherwise.
func (w *Writer) copyFile(n *node, src *os.File) error {
	var m int64
	var err error
	if w.stream != nil {
		if err = w.stream.Flush(); err == nil {
			m, err = w.stream.ReadFrom(io.LimitReader(src, n.size))
		}
	} else {
		w.fileMu.Lock()
		if _, err = w.file.Seek(w.cfg.offset+n.start*SectorSize, io.SeekStart); err == nil {
			m, err = w.file.ReadFrom(io.LimitReader(src, n.size))
		}
		w.fileMu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("copying contents: %w", err)
	}
	if m < n.size {
		return fmt.Errorf("short contents: got %d of %d bytes", m, n.size)
	}
	if pad := DataSize(n.size) - n.size; pad > 0 {
		return w.writeData(zeros[:pad], n.start*SectorSize+n.size)
	}
	return nil
}

// writeData writes at off bytes into the volume (stream mode: next).
func (w *Writer) writeData(b []byte, off int64) error {
	if w.stream != nil {
		_, err := w.stream.Write(b)
		return err
	}
	m, err := w.at.WriteAt(b, w.cfg.offset+off)
	if err == nil && m < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// SetRoot sets a key of the root tuple, the image manifest (spec §7): for
// example SetRoot("debug_exit", Flag{}) or SetRoot("klibs", String("bootfs")).
// "children" is the directory tree and cannot be set; program and cwd must
// be strings, arguments a vector of strings, environment a tuple of strings.
// Setting a key again replaces it.
func (w *Writer) SetRoot(key string, v Value) error {
	if err := checkRootKey(key, v); err != nil {
		return fmt.Errorf("tfs: root key %q: %w", key, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	w.manifest[key] = cloneValue(v)
	return nil
}

func checkRootKey(key string, v Value) error {
	if err := checkSymbol(key); err != nil {
		return err
	}
	if err := checkWritable(v); err != nil {
		return err
	}
	switch key {
	case "children":
		return errors.New("the directory tree is not a manifest key")
	case "program", "cwd":
		if s, ok := v.(String); !ok || s == "" {
			return errors.New("must be a non-empty String")
		}
	case "arguments":
		vec, ok := v.(Vector)
		if !ok {
			return errors.New("must be a Vector of String")
		}
		for _, e := range vec {
			if _, ok := e.(String); !ok {
				return errors.New("must be a Vector of String")
			}
		}
	case "environment":
		t, ok := v.(Tuple)
		if !ok {
			return errors.New("must be a Tuple of String")
		}
		for _, e := range t {
			if _, ok := e.(String); !ok {
				return errors.New("must be a Tuple of String")
			}
		}
	}
	return nil
}

func cloneValue(v Value) Value {
	switch v := v.(type) {
	case Vector:
		c := make(Vector, len(v))
		for i, e := range v {
			c[i] = cloneValue(e)
		}
		return c
	case Tuple:
		c := make(Tuple, len(v))
		for k, e := range v {
			c[k] = cloneValue(e)
		}
		return c
	case Buffer:
		return slices.Clone(v)
	}
	return v
}

// SetProgram sets the program the kernel runs: a path in this volume,
// resolved from the root with symlinks followed; Close checks that it names
// a regular file.
func (w *Writer) SetProgram(path string) error { return w.SetRoot("program", String(path)) }

// SetArguments sets the argument vector, argv[0] included (absent means
// just the program path).
func (w *Writer) SetArguments(args ...string) error {
	return w.SetRoot("arguments", Strings(args...))
}

// SetEnvironment sets the program's environment.
func (w *Writer) SetEnvironment(env map[string]string) error {
	t := make(Tuple, len(env))
	for k, v := range env {
		t[k] = String(v)
	}
	return w.SetRoot("environment", t)
}

// SetCwd sets the program's initial working directory.
func (w *Writer) SetCwd(dir string) error { return w.SetRoot("cwd", String(dir)) }

// UUID returns the volume UUID.
func (w *Writer) UUID() [16]byte { return w.uuid }

// Size returns the volume size in bytes once Close has succeeded.
func (w *Writer) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Close waits for file copies in progress, writes the log, the free space
// and (with NewWriter) sector 0. It does not close or sync the output.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errClosed
	}
	w.closed = true
	w.mu.Unlock()
	w.inflight.Wait()
	w.wb.Wait()

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.finish(); err != nil {
		w.err = err
		return err
	}
	return nil
}

func (w *Writer) finish() error {
	if err := w.resolveLinks(); err != nil {
		return err
	}
	w.nodes = nil // paths are no longer needed; let the encoder reuse the memory
	sortTree(w.root)
	if err := w.checkProgram(); err != nil {
		return err
	}

	firstExt := w.next
	if w.stream != nil {
		firstExt = 1 + w.capacity
		if err := writeZeros(w.stream, (firstExt-w.next)*SectorSize); err != nil {
			return fmt.Errorf("tfs: padding data: %w", err)
		}
	}

	// Pass 1 measures the value (TUPLE_AVAILABLE announces its exact
	// length); pass 2 re-encodes it identically straight into the log.
	count := newEncoder(nil)
	w.encode(count)
	count.flush()
	emit := func(sector int64, ext []byte) error { return w.writeData(ext, sector*SectorSize) }
	lw := newLogWriter(firstExt, count.n, emit)
	enc := newEncoder(lw.write)
	w.encode(enc)
	enc.flush()
	if enc.err != nil {
		return fmt.Errorf("tfs: writing log: %w", enc.err)
	}
	logEnd, err := lw.finish()
	if err != nil {
		return fmt.Errorf("tfs: writing log: %w", err)
	}

	end := logEnd*SectorSize + DataSize(w.cfg.freeSpace)
	if w.cfg.size > 0 {
		if end > w.cfg.size {
			return fmt.Errorf("tfs: volume full: data and log end at byte %d, leaving less than the %d bytes of free space in a %d-byte volume", logEnd*SectorSize, w.cfg.freeSpace, w.cfg.size)
		}
		end = w.cfg.size
	}
	if w.stream != nil {
		if err := writeZeros(w.stream, end-logEnd*SectorSize); err != nil {
			return fmt.Errorf("tfs: writing free space: %w", err)
		}
		if err := w.stream.Flush(); err != nil {
			return fmt.Errorf("tfs: %w", err)
		}
	} else {
		if end > logEnd*SectorSize {
			if err := w.writeData(make([]byte, SectorSize), end-SectorSize); err != nil {
				return fmt.Errorf("tfs: extending volume: %w", err)
			}
		}
		// Sector 0 last: until now the volume has no valid log.
		if err := w.writeData(sector0(w.uuid, w.cfg.label, firstExt), 0); err != nil {
			return fmt.Errorf("tfs: writing sector 0: %w", err)
		}
	}
	w.size = end
	return nil
}

var zeros = make([]byte, 64<<10)

func writeZeros(dst io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := dst.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// resolveLinks points every hard link at its final regular file or symlink
// and counts names.
func (w *Writer) resolveLinks() error {
	for _, l := range w.links {
		t := l
		for hops := 0; t.kind == kindLink; hops++ {
			if hops > len(w.links) {
				return fmt.Errorf("tfs: link %s: hard links form a cycle", l.target)
			}
			next, ok := w.nodes[t.target]
			if !ok {
				return &fs.PathError{Op: "link", Path: "/" + t.target, Err: fmt.Errorf("%w (hard link target)", fs.ErrNotExist)}
			}
			t = next
		}
		if t.kind == kindDir {
			return &fs.PathError{Op: "link", Path: "/" + l.target, Err: errors.New("hard link to a directory")}
		}
		l.link = t
	}
	for _, l := range w.links {
		l.link.nlink++
	}
	return nil
}

func sortTree(n *node) {
	if n.kind != kindDir {
		return
	}
	slices.SortFunc(n.children, func(a, b *node) int { return strings.Compare(a.name, b.name) })
	for _, c := range n.children {
		sortTree(c)
	}
}

// checkProgram makes sure the program the kernel will exec exists.
func (w *Writer) checkProgram() error {
	p, ok := w.manifest["program"].(String)
	if !ok {
		return nil
	}
	n, err := resolve(w.pathOps(), string(p), true)
	if err == nil && n.kind != kindFile {
		err = errors.New("not a regular file")
	}
	if err != nil {
		return fmt.Errorf("tfs: program %q: %w", p, err)
	}
	return nil
}

func (w *Writer) pathOps() pathOps[*node] {
	realNode := func(n *node) *node {
		if n.kind == kindLink {
			return n.link
		}
		return n
	}
	return pathOps[*node]{
		root:  w.root,
		isDir: func(n *node) bool { return n.kind == kindDir },
		child: func(d *node, name string) (*node, bool) {
			i, ok := slices.BinarySearchFunc(d.children, name, func(c *node, s string) int { return strings.Compare(c.name, s) })
			if !ok {
				return nil, false
			}
			return realNode(d.children[i]), true
		},
		target: func(n *node) (string, bool) { return n.target, n.kind == kindSymlink },
	}
}

// encode writes the whole tree as one value: the root tuple (#1) with
// children first and the manifest keys in byte order, as in the worked
// example of spec §4.6.
func (w *Writer) encode(e *encoder) {
	linked := make(map[*node]uint64)
	keys := sortedKeys(w.manifest)
	e.tuple(1 + len(keys))
	e.symbol("children")
	encodeDir(e, w.root, linked)
	for _, k := range keys {
		e.symbol(k)
		e.value(w.manifest[k])
	}
}

func encodeDir(e *encoder, d *node, linked map[*node]uint64) {
	e.tuple(len(d.children))
	for _, c := range d.children {
		e.symbol(c.name)
		encodeNode(e, c, linked)
	}
}

func encodeNode(e *encoder, n *node, linked map[*node]uint64) {
	if n.kind == kindLink {
		n = n.link
	}
	if n.kind == kindDir {
		e.tuple(1)
		e.symbol("children")
		encodeDir(e, n, linked)
		return
	}
	if idx, ok := linked[n]; ok {
		e.tupleRef(idx, 0) // a further name of a hard-linked tuple
		return
	}
	pairs := 1
	if n.kind == kindFile {
		pairs = 2
	}
	if n.nlink > 1 {
		pairs++
	}
	idx := e.tuple(pairs)
	if n.nlink > 1 {
		linked[n] = idx
	}
	if n.kind == kindFile {
		e.symbol("filelength")
		e.uint(uint64(n.size))
		e.symbol("extents")
		encodeExtents(e, n)
	} else {
		e.symbol("linktarget")
		e.str(n.target)
	}
	if n.nlink > 1 {
		e.symbol("nlink")
		e.uint(uint64(n.nlink))
	}
}

// encodeExtents describes a file's contiguous data as extents of at most
// maxExtentSectors, keyed by their first file block.
func encodeExtents(e *encoder, n *node) {
	sectors := DataSize(n.size) / SectorSize
	count := (sectors + maxExtentSectors - 1) / maxExtentSectors
	e.tuple(int(count))
	for blk := int64(0); blk < sectors; blk += maxExtentSectors {
		length := min(int64(maxExtentSectors), sectors-blk)
		e.symbol(extentKey(uint64(blk)))
		e.tuple(3)
		e.symbol("offset")
		e.uint(uint64(n.start + blk))
		e.symbol("length")
		e.uint(uint64(length))
		e.symbol("allocated")
		e.uint(uint64(length))
	}
}
