package lazy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/nanofs/nanofs/lazy/internal/cas"
	"github.com/nanofs/nanofs/lazy/internal/overlay"
)

// Layers without a table of contents (gzip, zstd, uncompressed) are read
// once from start to end: decompressed while they download, their tar
// entries recorded with the offset of each file's data, and the
// uncompressed tar kept in the cache. The tar is published in the cache
// only after the blob's digest (and the config's diffID) verified, and it
// is cut into segments whose digests are recorded with the index: reads
// trust the verified tar (after a size check), and VerifyCache checks the
// segments for damage done since.

const (
	segmentSize        = 1 << 20
	streamIndexVersion = 1
	streamKind         = "layers"
)

// streamIndex is what the cache keeps about a streamed layer beside its tar.
type streamIndex struct {
	Version     int             `json:"version"`
	Layer       string          `json:"layer"`
	TarSize     int64           `json:"tarSize"`
	SegmentSize int64           `json:"segmentSize"`
	Segments    []string        `json:"segments"` // hex SHA-256 of each segment of the tar
	Entries     []overlay.Entry `json:"entries"`
}

// streamLayer serves file reads from a cached layer tar.
type streamLayer struct {
	l     *layer
	store *cas.Store

	mu     sync.RWMutex // held for reading by reads, for writing by refetch and close
	openMu sync.Mutex   // serializes opening f
	f      *os.File
	idx    *streamIndex
}

// indexStream returns the entries of a layer without a TOC, from the cache
// or by streaming the layer once.
func indexStream(ctx context.Context, l *layer, store *cas.Store) (*streamLayer, []overlay.Entry, error) {
	s := &streamLayer{l: l, store: store}
	idx, err := s.load(ctx)
	if err != nil {
		return nil, nil, err
	}
	entries := overlay.WithoutStargzMeta(idx.Entries)
	idx.Entries = nil // the tree keeps what it needs
	s.idx = idx
	return s, entries, nil
}

// load returns the cached index, building it first if needed. Concurrent
// processes wait for the one that builds.
func (s *streamLayer) load(ctx context.Context) (*streamIndex, error) {
	key := s.l.key.String()
	if idx, err := s.readIndex(); err == nil {
		return idx, nil
	}
	unlock, err := s.store.Lock(streamKind, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if idx, err := s.readIndex(); err == nil {
		return idx, nil
	}
	var idx *streamIndex
	for attempt := 0; ; attempt++ {
		idx, err = s.build(ctx)
		// A corrupted byte in transit shows up as a digest mismatch at the
		// end: one more download may be clean.
		if err == nil || !errors.Is(err, ErrDigestMismatch) || attempt == 1 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return idx, nil
}

const indexMagic = "nanofs-layer-index "

// readIndex reads and checks the cached index and the size of its tar.
func (s *streamLayer) readIndex() (*streamIndex, error) {
	key := s.l.key.String()
	idx, p, err := readStreamIndex(s.store, key)
	if err != nil {
		return nil, err
	}
	touch(p)
	return idx, nil
}

// readStreamIndex reads the cached index of the layer key and checks that
// it fits the layer and that its tar (at the returned path) has the size
// it records. The binary index (binIndexSuffix) is read first; an index
// in JSON (as nanofs wrote them before) is read when there is none, and
// converted.
func readStreamIndex(store *cas.Store, key string) (*streamIndex, string, error) {
	var idx streamIndex
	if raw, err := store.ReadMeta(streamKind, key, binIndexSuffix); err != nil || decodeBinIndex(raw, &idx) != nil {
		raw, err := store.ReadMeta(streamKind, key, ".index")
		if err != nil {
			return nil, "", err
		}
		line, body, ok := bytes.Cut(raw, []byte("\n"))
		sum := sha256.Sum256(body)
		if !ok || string(line) != indexMagic+hex.EncodeToString(sum[:]) {
			return nil, "", fmt.Errorf("layer %s: cached index is damaged", key)
		}
		idx = streamIndex{}
		if err := json.Unmarshal(body, &idx); err != nil {
			return nil, "", fmt.Errorf("layer %s: cached index: %w", key, err)
		}
		for i := range idx.Entries {
			// Entries were checked when the index was built; their paths
			// are derived again rather than trusted from the file (the
			// binary index's decoder does the same).
			if err := idx.Entries[i].Check(); err != nil {
				return nil, "", &overlay.EntryError{Layer: key, Entry: idx.Entries[i].Name, Err: err}
			}
		}
		if rec, err := encodeBinIndex(&idx); err == nil {
			_ = store.WriteMeta(streamKind, key, binIndexSuffix, rec) // only an optimisation
		}
	}
	if idx.Version != streamIndexVersion || idx.Layer != key || idx.SegmentSize != segmentSize ||
		int64(len(idx.Segments)) != (idx.TarSize+segmentSize-1)/segmentSize {
		return nil, "", fmt.Errorf("layer %s: cached index does not fit", key)
	}
	p, err := store.Path(streamKind, key, ".tar")
	if err != nil {
		return nil, "", err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, "", err
	}
	if fi.Size() != idx.TarSize {
		return nil, "", fmt.Errorf("layer %s: cached tar has %d bytes, want %d", key, fi.Size(), idx.TarSize)
	}
	return &idx, p, nil
}

// build streams the layer once and publishes its tar and index.
func (s *streamLayer) build(ctx context.Context) (*streamIndex, error) {
	l := s.l
	key := l.key.String()
	raw, err := l.openStream(ctx)
	if err != nil {
		return nil, err
	}
	defer raw.Close()

	pend, err := s.store.Create(streamKind, key, ".tar")
	if err != nil {
		return nil, err
	}
	defer pend.Abort()

	rawHash := sha256.New()
	rawCount := &byteCounter{}
	br := bufio.NewReaderSize(io.TeeReader(raw, io.MultiWriter(rawHash, rawCount)), 1<<16)
	dec, err := decompressor(br)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", key, err)
	}
	defer dec.Close()

	out := bufio.NewWriterSize(pend, 1<<20)
	segs := &segmentHasher{size: segmentSize, h: sha256.New()}
	diffHash := sha256.New()
	tarCount := &byteCounter{}
	bounded := &boundedReader{r: dec, n: l.expansion.bound(l.size), limit: l.expansion, compressed: l.size}
	ur := io.TeeReader(bounded, io.MultiWriter(out, segs, diffHash, tarCount))

	entries, scanErr := overlay.ScanTar(ur)
	if scanErr == nil {
		// Whatever follows the end-of-archive blocks belongs to the layer's
		// digests too.
		if _, err := io.Copy(io.Discard, ur); err != nil {
			scanErr = err
		}
	}
	if scanErr == nil {
		if _, err := io.Copy(io.Discard, br); err != nil {
			scanErr = err
		}
	}
	if scanErr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var xe *ExpansionError
		if errors.As(scanErr, &xe) {
			// Not worth downloading the rest to judge the digest.
			xe.Layer = key
			return nil, xe
		}
		// Judge the bytes before the parser: a corrupted download shows up
		// as a broken tar long before the digest is known.
		if _, err := io.Copy(io.Discard, br); err == nil && rawCount.n == l.size {
			if got := hexDigest(rawHash); got != l.key {
				return nil, fmt.Errorf("layer %s: %w: the blob hashes to %s", key, ErrDigestMismatch, got)
			}
		}
		var ee *overlay.EntryError
		if errors.As(scanErr, &ee) {
			ee.Layer = key
			return nil, ee
		}
		return nil, fmt.Errorf("layer %s: %w", key, scanErr)
	}
	if l.size >= 0 && rawCount.n != l.size {
		return nil, fmt.Errorf("layer %s: %w: got %d bytes, the manifest says %d", key, ErrDigestMismatch, rawCount.n, l.size)
	}
	if got := hexDigest(rawHash); got != l.key {
		return nil, fmt.Errorf("layer %s: %w: the blob hashes to %s", key, ErrDigestMismatch, got)
	}
	if l.diffID != (v1.Hash{}) {
		if got := hexDigest(diffHash); got != l.diffID {
			return nil, fmt.Errorf("layer %s: %w: its uncompressed content hashes to %s, the config's diff_id is %s", key, ErrDigestMismatch, got, l.diffID)
		}
	}
	if err := out.Flush(); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	idx := &streamIndex{
		Version:     streamIndexVersion,
		Layer:       key,
		TarSize:     tarCount.n,
		SegmentSize: segmentSize,
		Segments:    segs.finish(),
		Entries:     entries,
	}
	record, err := encodeBinIndex(idx)
	if err != nil {
		return nil, err
	}
	if err := pend.Commit(); err != nil {
		return nil, err
	}
	if err := s.store.WriteMeta(streamKind, key, binIndexSuffix, record); err != nil {
		return nil, err
	}
	return idx, nil
}

// decompressor recognises gzip and zstd by their magic numbers (media
// types are not always right) and passes anything else through as an
// uncompressed tar.
func decompressor(br *bufio.Reader) (io.ReadCloser, error) {
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

func hexDigest(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type byteCounter struct{ n int64 }

func (c *byteCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// segmentHasher records the SHA-256 of every size bytes written.
type segmentHasher struct {
	size int64
	h    hash.Hash
	n    int64 // bytes in the current segment
	sums []string
}

func (s *segmentHasher) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := min(int64(len(p)), s.size-s.n)
		s.h.Write(p[:k])
		s.n += k
		p = p[k:]
		if s.n == s.size {
			s.sums = append(s.sums, hex.EncodeToString(s.h.Sum(nil)))
			s.h.Reset()
			s.n = 0
		}
	}
	return total, nil
}

func (s *segmentHasher) finish() []string {
	if s.n > 0 {
		s.sums = append(s.sums, hex.EncodeToString(s.h.Sum(nil)))
		s.h.Reset()
		s.n = 0
	}
	return s.sums
}

// readAt reads file data at off in the layer's tar. The tar was verified
// (blob digest, diffID) before it entered the cache and its size is
// checked when its index is read, so reads do not hash it again: damage
// done since is what VerifyCache (nanofs cache verify) finds, against the
// segment digests of the index. A tar found shorter than its index says
// is thrown away and the layer streamed again.
func (s *streamLayer) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	for attempt := 0; ; attempt++ {
		n, err := s.tryReadAt(p, off)
		if err == nil || !errors.Is(err, cas.ErrCorrupt) || attempt > 0 {
			return n, err
		}
		if err := s.refetch(ctx); err != nil {
			return 0, err
		}
	}
}

func (s *streamLayer) tryReadAt(p []byte, off int64) (int, error) {
	// Reads share the lock; only refetch (after damage) and close take it
	// alone, so reads of one layer run in parallel.
	s.mu.RLock()
	defer s.mu.RUnlock()
	f, idx, err := s.file()
	if err != nil {
		return 0, err
	}
	end := off + int64(len(p))
	if off < 0 || end > idx.TarSize {
		return 0, fmt.Errorf("layer %s: read %d+%d outside its %d-byte tar", s.l.key, off, len(p), idx.TarSize)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := f.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		return n, fmt.Errorf("layer %s: cached tar ends before byte %d: %w", s.l.key, end, cas.ErrCorrupt)
	}
	if err != nil {
		return n, fmt.Errorf("layer %s: cached tar: %w", s.l.key, err)
	}
	return n, nil
}

// file returns the open cached tar (opening it on first use) with its
// index. The caller holds s.mu for reading.
func (s *streamLayer) file() (*os.File, *streamIndex, error) {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.f == nil {
		path, err := s.store.Path(streamKind, s.l.key.String(), ".tar")
		if err != nil {
			return nil, nil, err
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("layer %s: cached tar: %w", s.l.key, err)
		}
		s.f = f
	}
	return s.f, s.idx, nil
}

// refetch drops the damaged cache entry and streams the layer again. The
// layer's content is fixed by its digest, so every offset stays valid.
func (s *streamLayer) refetch(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s.l.key.String()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	unlock, err := s.store.Lock(streamKind, key)
	if err != nil {
		return err
	}
	defer unlock()
	for _, suffix := range []string{binIndexSuffix, ".index", ".tar"} {
		if p, err := s.store.Path(streamKind, key, suffix); err == nil {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("cache: %w", err)
			}
		}
	}
	idx, err := s.build(ctx)
	if err != nil {
		return err
	}
	idx.Entries = nil
	s.idx = idx
	return nil
}

func (s *streamLayer) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}

// expansionLimit bounds what a layer's tar may expand to.
type expansionLimit struct {
	ratio int64 // times the compressed size (plus expansionSlack)
	max   int64 // bytes, whatever the ratio
}

// bound is the most a layer of compressed bytes may expand to (compressed
// -1: unknown, only the absolute bound).
func (e expansionLimit) bound(compressed int64) int64 {
	if compressed < 0 || e.ratio <= 0 {
		return e.max
	}
	if compressed > (e.max-expansionSlack)/e.ratio {
		return e.max
	}
	return min(e.max, compressed*e.ratio+expansionSlack)
}

// ExpansionError is a layer whose uncompressed tar grew past the bound
// (WithMaxExpansion): a decompression bomb, or a genuine layer that needs
// a higher bound.
type ExpansionError struct {
	Layer      string // the layer's digest
	Compressed int64  // its compressed size; -1 when unknown
	Bound      int64  // the most it was allowed to expand to
	Ratio      int64  // the ratio the bound came from
	Max        int64  // the absolute bound
}

func (e *ExpansionError) Error() string {
	if e.Compressed < 0 {
		return fmt.Sprintf("layer %s: expands to more than %d bytes, the most a layer may", e.Layer, e.Bound)
	}
	return fmt.Sprintf("layer %s: its %d compressed bytes expand to more than %d (the bound is %d times the compressed size, at most %d bytes): a decompression bomb, or a layer that needs a higher bound",
		e.Layer, e.Compressed, e.Bound, e.Ratio, e.Max)
}

func (e *ExpansionError) Unwrap() error { return ErrLayerTooLarge }

// boundedReader fails with an *ExpansionError once more than n bytes were
// read.
type boundedReader struct {
	r          io.Reader
	n          int64
	limit      expansionLimit
	compressed int64
	read       int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.read >= b.n {
		// One more byte says whether there is more.
		var one [1]byte
		k, err := b.r.Read(one[:])
		if k > 0 {
			return 0, &ExpansionError{Compressed: b.compressed, Bound: b.n, Ratio: b.limit.ratio, Max: b.limit.max}
		}
		return 0, err
	}
	if int64(len(p)) > b.n-b.read {
		p = p[:b.n-b.read]
	}
	k, err := b.r.Read(p)
	b.read += int64(k)
	return k, err
}
