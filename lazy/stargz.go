package lazy

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/nanofs/nanofs/lazy/internal/cas"
	"github.com/nanofs/nanofs/lazy/internal/overlay"
)

// eStargz layers are gzip streams in which every file chunk starts a new
// gzip member and a table of contents (TOC) at the end says where each
// member is. Opening one fetches its footer and TOC (two range requests;
// none when the cache has them), checks the TOC against the digest in the
// layer's annotation, and from then on a read fetches exactly the members
// holding the chunks it touches, each chunk checked against its digest in
// the TOC and cached by that digest.

const (
	tocKind   = "toc"
	chunkKind = "chunks"
	// maxTOCSize bounds what a hostile footer can make us allocate.
	maxTOCSize = 512 << 20
	// Members of one request: neighbours closer than maxGap are fetched in
	// one request (the gap is read and dropped), up to maxRun bytes. Runs
	// are kept short enough that a large file is fetched over several
	// connections and a reader waiting for one of its members is not
	// queued behind tens of megabytes.
	maxGap = 32 << 10
	maxRun = 8 << 20
)

// stargzShared is what an image's eStargz layers share: recently read
// chunks, and the bounds on connections and on decompressing workers.
type stargzShared struct {
	hot   *chunkLRU
	conns chan struct{} // one token per range request a read waits for
	bg    chan struct{} // one token per background request: reads never queue behind them
	cpu   chan struct{} // one token per member being decompressed and hashed
}

func newStargzShared(conns int) *stargzShared {
	return &stargzShared{
		hot:   newChunkLRU(hotChunkBytes),
		conns: make(chan struct{}, max(1, conns)),
		bg:    make(chan struct{}, max(1, conns/2)),
		cpu:   make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
	}
}

// acquire takes a token of sem, or gives up when ctx ends.
func acquire(ctx context.Context, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stargzLayer fetches and caches chunks of one eStargz blob.
type stargzLayer struct {
	l     *layer
	store *cas.Store
	jobs  int
	sh    *stargzShared
	zstd  bool // a zstd:chunked layer: members are zstd frames

	tocOffset int64
	tocBytes  int64 // bytes fetched for footer and TOC (when cached: their extent)

	hot *chunkLRU // recently read chunks, shared by the image's layers (sh.hot)

	mu       sync.Mutex
	inflight map[int64]*memberCall // by member offset
	verified map[string]bool       // chunk digests checked in this process
}

type memberCall struct {
	done chan struct{}
	err  error
}

// tocRecord is what the cache keeps about an eStargz blob besides its TOC.
type tocRecord struct {
	TOCDigest string `json:"tocDigest"`
	TOCOffset int64  `json:"tocOffset"`
	BlobSize  int64  `json:"blobSize"`
}

// errNotStargz: a layer annotated with a TOC digest has no eStargz footer.
// It is then read like any gzip layer.
var errNotStargz = errors.New("not an eStargz blob")

// isStargz tells whether a layer can be read lazily: an annotated TOC
// digest on a gzip layer fetched from somewhere that serves ranges.
func isStargz(l *layer) bool {
	if l.blob == nil || l.annotations[estargz.TOCJSONDigestAnnotation] == "" {
		return false
	}
	mt := string(l.mediaType)
	return strings.Contains(mt, "gzip") || mt == ""
}

// openStargz reads (or finds in the cache) the layer's TOC and returns its
// entries.
func openStargz(ctx context.Context, l *layer, store *cas.Store, jobs int, sh *stargzShared) (*stargzLayer, []overlay.Entry, error) {
	key := l.key.String()
	want, err := v1.NewHash(l.annotations[estargz.TOCJSONDigestAnnotation])
	if err != nil {
		return nil, nil, fmt.Errorf("layer %s: TOC digest annotation: %w", key, err)
	}
	s := &stargzLayer{l: l, store: store, jobs: jobs, sh: sh, hot: sh.hot, inflight: map[int64]*memberCall{}, verified: map[string]bool{}}
	if entries, err := s.cachedEntries(want); err == nil {
		return s, entries, nil
	}
	tocJSON, err := s.cachedTOC(want)
	if err != nil {
		for attempt := 0; ; attempt++ {
			tocJSON, err = s.fetchTOC(ctx, want)
			if err == nil || !errors.Is(err, ErrDigestMismatch) || attempt == 1 {
				break
			}
		}
		if err != nil {
			return nil, nil, err
		}
	}
	var toc estargz.JTOC
	if err := decodeTOC(tocJSON, &toc); err != nil {
		return nil, nil, fmt.Errorf("layer %s: TOC: %w", key, err)
	}
	entries, err := overlay.FromTOC(&toc, s.tocOffset)
	if err != nil {
		var ee *overlay.EntryError
		if errors.As(err, &ee) {
			ee.Layer = key
			return nil, nil, ee
		}
		return nil, nil, fmt.Errorf("layer %s: TOC: %w", key, err)
	}
	if rec, err := encodeBinIndex(&tocEntries{TOCDigest: want.String(), TOCOffset: s.tocOffset, BlobSize: l.size, Entries: entries}); err == nil {
		_ = s.store.WriteMeta(tocKind, key, binIndexSuffix, rec) // only an optimisation
	}
	return s, entries, nil
}

// tocEntries is a layer's TOC as entries, kept in the cache beside the
// TOC (binary, under the layer's digest): a warm open reads it instead of
// hashing and parsing the TOC's JSON.
type tocEntries struct {
	TOCDigest string
	TOCOffset int64
	BlobSize  int64
	Entries   []overlay.Entry
}

// cachedEntries returns the layer's entries from the cache's binary index.
func (s *stargzLayer) cachedEntries(want v1.Hash) ([]overlay.Entry, error) {
	key := s.l.key.String()
	raw, err := s.store.ReadMeta(tocKind, key, binIndexSuffix)
	if err != nil {
		return nil, err
	}
	var te tocEntries
	if err := decodeBinIndex(raw, &te); err != nil {
		return nil, err
	}
	if te.TOCDigest != want.String() || te.BlobSize != s.l.size || te.TOCOffset <= 0 || te.TOCOffset >= s.l.size {
		return nil, errors.New("cached TOC index does not fit")
	}
	for i := range te.Entries {
		// decodeBinIndex checked the entries; the chunks must also lie in
		// this blob.
		for _, c := range te.Entries[i].Chunks {
			if c.Offset < 0 || c.Next <= c.Offset || c.Next > te.TOCOffset || c.Size < 0 {
				return nil, errors.New("cached TOC index: a chunk outside the blob")
			}
		}
	}
	s.tocOffset = te.TOCOffset
	s.tocBytes = s.l.size - te.TOCOffset
	return te.Entries, nil
}

func (s *stargzLayer) cachedTOC(want v1.Hash) ([]byte, error) {
	key := s.l.key.String()
	raw, err := s.store.ReadMeta(tocKind, key, ".json")
	if err != nil {
		return nil, err
	}
	var rec tocRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, err
	}
	if rec.TOCDigest != want.String() || rec.BlobSize != s.l.size || rec.TOCOffset <= 0 || rec.TOCOffset >= s.l.size {
		return nil, errors.New("cached TOC record does not fit")
	}
	tocJSON, err := s.store.ReadVerified(tocKind, want.String())
	if err != nil {
		return nil, err
	}
	s.tocOffset = rec.TOCOffset
	s.tocBytes = s.l.size - rec.TOCOffset
	return tocJSON, nil
}

// tocTail is how much of an eStargz blob's end the first request reads:
// the footer and, for most layers, the whole TOC before it (eStargz puts
// the TOC right before the footer), so a layer opens in one round trip.
// A larger TOC costs one more request for the part before the tail; a
// smaller one costs the unused rest of the tail, a few milliseconds of
// the link at most.
const tocTail = 64 << 10

// fetchTOC reads the blob's tail (footer and, usually, TOC), then the rest
// of the TOC if the tail did not hold it all, and checks the TOC's digest.
func (s *stargzLayer) fetchTOC(ctx context.Context, want v1.Hash) ([]byte, error) {
	l := s.l
	key := l.key.String()
	footerSize := int64(estargz.FooterSize)
	if l.size <= footerSize {
		return nil, fmt.Errorf("layer %s: %w: %d bytes is too small", key, errNotStargz, l.size)
	}
	tailStart := tailStart(l.size)
	tail := l.early.take(ctx, tailStart, l.size-tailStart)
	l.early = nil // a second attempt (damaged in transit) asks again
	if tail == nil {
		tail = make([]byte, l.size-tailStart)
		if err := l.blob.readAt(ctx, tail, tailStart); err != nil {
			return nil, fmt.Errorf("layer %s: reading the eStargz footer: %w", key, err)
		}
	}
	footer := tail[int64(len(tail))-footerSize:]
	var dec interface {
		ParseFooter([]byte) (int64, int64, int64, error)
		FooterSize() int64
		DecompressTOC(io.Reader) (io.ReadCloser, error)
	} = &estargz.GzipDecompressor{}
	_, tocOffset, _, err := dec.ParseFooter(footer)
	if err != nil {
		legacy := &estargz.LegacyGzipDecompressor{}
		var lerr error
		if _, tocOffset, _, lerr = legacy.ParseFooter(footer[footerSize-legacy.FooterSize():]); lerr != nil {
			return nil, fmt.Errorf("layer %s: %w: %w", key, errNotStargz, errors.Join(err, lerr))
		}
		dec = legacy
	}
	tocEnd := l.size - dec.FooterSize()
	if tocOffset <= 0 || tocOffset >= tocEnd || tocEnd-tocOffset > maxTOCSize {
		return nil, fmt.Errorf("layer %s: eStargz footer puts the TOC at %d in a %d-byte blob", key, tocOffset, l.size)
	}
	var compressed []byte
	if tocOffset >= tailStart {
		compressed = tail[tocOffset-tailStart : tocEnd-tailStart]
	} else {
		compressed = make([]byte, tocEnd-tocOffset)
		head := tailStart - tocOffset
		copy(compressed[head:], tail[:tocEnd-tailStart])
		if err := l.blob.readAt(ctx, compressed[:head], tocOffset); err != nil {
			return nil, fmt.Errorf("layer %s: reading the eStargz TOC: %w", key, err)
		}
	}
	rc, err := dec.DecompressTOC(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("layer %s: TOC: %w", key, err)
	}
	defer rc.Close()
	tocJSON, err := io.ReadAll(io.LimitReader(rc, maxTOCSize+1))
	if err != nil {
		return nil, fmt.Errorf("layer %s: TOC: %w", key, err)
	}
	if len(tocJSON) > maxTOCSize {
		return nil, fmt.Errorf("layer %s: TOC larger than %d bytes", key, maxTOCSize)
	}
	if got := cas.SHA256(tocJSON); got != want.String() {
		return nil, fmt.Errorf("layer %s: %w: its TOC hashes to %s, the annotation %s says %s",
			key, ErrDigestMismatch, got, estargz.TOCJSONDigestAnnotation, want)
	}
	s.tocOffset = tocOffset
	s.tocBytes = l.size - min(tocOffset, tailStart) // what was read, tail included
	// The cache is an optimisation: failing to fill it is not an error.
	if err := s.store.Write(tocKind, want.String(), tocJSON); err == nil {
		rec, _ := json.Marshal(tocRecord{TOCDigest: want.String(), TOCOffset: tocOffset, BlobSize: l.size})
		_ = s.store.WriteMeta(tocKind, key, ".json", rec)
	}
	return tocJSON, nil
}

func stargzFooterSize() int64 { return int64(estargz.FooterSize) }

// member is one gzip member to fetch and the chunks wanted from it.
type member struct {
	offset, next int64
	chunks       []overlay.Chunk
	call         *memberCall // this fetch's claim on the member (s.inflight)
	released     bool        // the claim was given up (guarded by s.mu)
}

// ensure puts every chunk of cs in the cache, fetching the members that
// hold the missing ones; neighbouring members are fetched in one request.
// Chunks another goroutine is already fetching are waited for.
func (s *stargzLayer) ensure(ctx context.Context, cs []overlay.Chunk) error {
	if ctx.Value(backgroundKey{}) != nil {
		return s.ensureLater(ctx, cs, nil)
	}
	for {
		ms, err := s.missing(cs)
		if err != nil {
			return err
		}
		mine, theirs := s.claim(ms)
		if len(mine) == 0 && len(theirs) == 0 {
			return nil
		}
		err = s.fetchMembers(ctx, mine)
		s.release(mine, err)
		if err != nil {
			return err
		}
		retry := false
		for _, call := range theirs {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-call.done:
			}
			if call.err != nil {
				// Their caller gave up (or failed): try ourselves.
				retry = true
			}
		}
		if !retry {
			return nil
		}
	}
}

// ensureLater is ensure for a background fetch: it claims the members of
// a run only once it holds a connection for it, and leaves members
// claimed by others to them. Until a run's request is sent, a read that
// needs one of its members fetches that member itself rather than waiting
// behind the queue. The members at offsets in first (those holding a
// file's first or last chunk: its headers, which a resolve reads) go
// before the rest, in runs of their own.
func (s *stargzLayer) ensureLater(ctx context.Context, cs []overlay.Chunk, first map[int64]bool) error {
	ms, err := s.missing(cs)
	if err != nil {
		return err
	}
	var ends, rest []*member
	for _, m := range ms {
		if first[m.offset] {
			ends = append(ends, m)
		} else {
			rest = append(rest, m)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range append(groupRuns(ends), groupRuns(rest)...) {
		// Connections are taken here, in the runs' order, rather than by
		// goroutines racing for them.
		if err := acquire(gctx, s.sh.bg); err != nil {
			return errors.Join(err, g.Wait())
		}
		g.Go(func() error {
			defer func() { <-s.sh.bg }()
			var unclaimed []*member
			for _, m := range run {
				if slices.ContainsFunc(m.chunks, func(c overlay.Chunk) bool { return !s.cached(c.Digest) }) {
					unclaimed = append(unclaimed, m)
				}
			}
			mine, _ := s.claim(unclaimed)
			var err error
			for _, sub := range groupRuns(mine) {
				if err = s.fetchRunAgain(gctx, sub, false); err != nil {
					break
				}
			}
			s.release(mine, err)
			return err
		})
	}
	return g.Wait()
}

// missing groups the chunks of cs not in the cache by the member holding
// them, in the order of the blob.
func (s *stargzLayer) missing(cs []overlay.Chunk) ([]*member, error) {
	byOffset := map[int64]*member{}
	var ms []*member
	for _, c := range cs {
		if s.cached(c.Digest) {
			continue
		}
		m := byOffset[c.Offset]
		if m == nil {
			m = &member{offset: c.Offset, next: c.Next}
			byOffset[c.Offset] = m
			ms = append(ms, m)
		}
		if m.next != c.Next {
			return nil, fmt.Errorf("layer %s: TOC gives the member at %d two ends", s.l.key, c.Offset)
		}
		if !slices.ContainsFunc(m.chunks, func(o overlay.Chunk) bool { return o.Inner == c.Inner && o.Digest == c.Digest }) {
			m.chunks = append(m.chunks, c)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].offset < ms[j].offset })
	return ms, nil
}

// claim sorts members into those this caller fetches now (claimed) and
// the calls of those someone else is fetching.
func (s *stargzLayer) claim(ms []*member) (mine []*member, theirs []*memberCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		if call := s.inflight[m.offset]; call != nil {
			theirs = append(theirs, call)
			continue
		}
		m.call = &memberCall{done: make(chan struct{})}
		m.released = false
		s.inflight[m.offset] = m.call
		mine = append(mine, m)
	}
	return mine, theirs
}

// release gives up the claims on ms not given up yet, with err for those
// waiting on them.
func (s *stargzLayer) release(ms []*member, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		s.releaseLocked(m, err)
	}
}

func (s *stargzLayer) releaseLocked(m *member, err error) {
	if m.released {
		return
	}
	m.released = true
	if s.inflight[m.offset] == m.call {
		delete(s.inflight, m.offset)
	}
	m.call.err = err
	close(m.call.done)
}

// stored gives up the claim on a member whose chunks are all in the
// cache: whoever waits for it goes on while the rest of its run arrives.
func (s *stargzLayer) stored(m *member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(m, nil)
}

func (s *stargzLayer) cached(digest string) bool {
	s.mu.Lock()
	ok := s.verified[digest]
	s.mu.Unlock()
	if ok {
		return true
	}
	p, err := s.store.Path(chunkKind, digest, "")
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// fetchMembers groups sorted members into runs and fetches the runs in
// parallel.
func (s *stargzLayer) fetchMembers(ctx context.Context, ms []*member) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.jobs)
	for _, run := range groupRuns(ms) {
		g.Go(func() error { return s.fetchRunAgain(gctx, run, true) })
	}
	return g.Wait()
}

// groupRuns groups sorted members into runs fetched with one request
// each: neighbours closer than maxGap, up to maxRun bytes.
func groupRuns(ms []*member) [][]*member {
	var runs [][]*member
	for _, m := range ms {
		if n := len(runs); n > 0 {
			run := runs[n-1]
			last := run[len(run)-1]
			if m.offset >= last.next && m.offset-last.next <= maxGap && m.next-run[0].offset <= maxRun {
				runs[n-1] = append(run, m)
				continue
			}
		}
		runs = append(runs, []*member{m})
	}
	return runs
}

// fetchRunAgain is fetchRun, once more when the bytes fail their digests:
// bytes damaged in transit may arrive intact the second time.
func (s *stargzLayer) fetchRunAgain(ctx context.Context, run []*member, conn bool) error {
	err := s.fetchRun(ctx, run, conn)
	if errors.Is(err, ErrDigestMismatch) {
		err = s.fetchRun(ctx, run, conn)
	}
	return err
}

// fetchRun fetches members run[0].offset..run[last].next in one request
// and stores their chunks; with conn, it takes one of the image's
// connection tokens for reads first (a background fetch holds one of its
// own). Each member is decompressed and hashed by a worker of its own
// while the next one arrives: gzip members are independent, so all cores
// work on a run, and the connection goes back as soon as its bytes are in.
func (s *stargzLayer) fetchRun(ctx context.Context, run []*member, conn bool) error {
	if conn {
		if err := acquire(ctx, s.sh.conns); err != nil {
			return err
		}
	}
	giveBack := func() {
		if conn {
			conn = false
			<-s.sh.conns
		}
	}
	defer giveBack()
	start, end := run[0].offset, run[len(run)-1].next
	rc, err := s.l.blob.open(ctx, start, end-start)
	if err != nil {
		return err
	}
	defer rc.Close()
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	setErr := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	read := func() error {
		pos := start
		for _, m := range run {
			if _, err := io.CopyN(io.Discard, rc, m.offset-pos); err != nil {
				return fmt.Errorf("layer %s: %w", s.l.key, err)
			}
			buf := make([]byte, m.next-m.offset)
			if _, err := io.ReadFull(rc, buf); err != nil {
				return fmt.Errorf("layer %s: %w", s.l.key, err)
			}
			pos = m.next
			if err := acquire(ctx, s.sh.cpu); err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-s.sh.cpu }()
				if err := s.storeMember(m, buf); err != nil {
					setErr(err)
					return
				}
				s.stored(m)
			}()
		}
		return nil
	}
	err = read()
	rc.Close()
	giveBack()
	wg.Wait()
	if err != nil {
		return err
	}
	return firstErr
}

// storeMember decompresses one member and stores each wanted chunk after
// checking it against its digest.
func (s *stargzLayer) storeMember(m *member, compressed []byte) error {
	chunks := slices.Clone(m.chunks)
	sort.Slice(chunks, func(i, j int) bool { return chunks[i].Inner < chunks[j].Inner })
	var zr io.Reader
	if s.zstd {
		d, err := getZstdDecoder(bytes.NewReader(compressed))
		if err != nil {
			return fmt.Errorf("layer %s: %s: zstd frame at %d: %w (%w)", s.l.key, chunks[0].File, m.offset, err, ErrDigestMismatch)
		}
		defer putZstdDecoder(d)
		zr = d
	} else {
		gz, err := gzip.NewReader(bytes.NewReader(compressed))
		if err != nil {
			return fmt.Errorf("layer %s: %s: gzip member at %d: %w (%w)", s.l.key, chunks[0].File, m.offset, err, ErrDigestMismatch)
		}
		defer gz.Close()
		zr = gz
	}
	var pos int64
	for _, c := range chunks {
		if c.Inner < pos {
			// Two chunks overlapping in one member: a malformed TOC.
			return fmt.Errorf("layer %s: %s: chunks overlap in the member at %d", s.l.key, c.File, m.offset)
		}
		if _, err := io.CopyN(io.Discard, zr, c.Inner-pos); err != nil {
			return fmt.Errorf("layer %s: %s: gzip member at %d: %w (%w)", s.l.key, c.File, m.offset, err, ErrDigestMismatch)
		}
		data := make([]byte, c.Size)
		if _, err := io.ReadFull(zr, data); err != nil {
			return fmt.Errorf("layer %s: %s: gzip member at %d: %w (%w)", s.l.key, c.File, m.offset, err, ErrDigestMismatch)
		}
		pos = c.Inner + c.Size
		if got := cas.SHA256(data); got != c.Digest {
			return fmt.Errorf("layer %s: %s: bytes %d-%d: %w: chunk hashes to %s, the TOC says %s",
				s.l.key, c.File, c.FileOffset, c.FileOffset+c.Size-1, ErrDigestMismatch, got, c.Digest)
		}
		if err := s.store.Write(chunkKind, c.Digest, data); err != nil {
			return err
		}
		s.mu.Lock()
		s.verified[c.Digest] = true
		s.mu.Unlock()
		s.hot.put(c.Digest, data)
	}
	return nil
}

// readAt reads a file's bytes at off: the chunks it touches are fetched
// if missing (all in one go), then read from memory or the cache (each
// checked once per process).
func (s *stargzLayer) readAt(ctx context.Context, d *fileData, p []byte, off int64) (int, error) {
	cs := chunksFor(d.chunks, off, int64(len(p)))
	for attempt := 0; ; attempt++ {
		var missing []overlay.Chunk
		for _, c := range cs {
			if !s.hot.has(c.Digest) && !s.cached(c.Digest) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			if err := s.ensure(ctx, missing); err != nil {
				return 0, err
			}
		}
		n, err := s.copyChunks(cs, p, off)
		if err == nil || !errors.Is(err, cas.ErrCorrupt) || attempt > 0 {
			return n, err
		}
	}
}

// chunksFor returns the chunks covering [off, off+n) of a file.
func chunksFor(cs []overlay.Chunk, off, n int64) []overlay.Chunk {
	i := sort.Search(len(cs), func(i int) bool { return cs[i].FileOffset+cs[i].Size > off })
	j := i
	for j < len(cs) && cs[j].FileOffset < off+n {
		j++
	}
	return cs[i:j]
}

func (s *stargzLayer) copyChunks(cs []overlay.Chunk, p []byte, off int64) (int, error) {
	n := 0
	for _, c := range cs {
		from := max(off, c.FileOffset)
		to := min(off+int64(len(p)), c.FileOffset+c.Size)
		if from >= to {
			continue
		}
		if err := s.chunkRead(c, p[from-off:to-off], from-c.FileOffset); err != nil {
			return n, err
		}
		n += int(to - from)
	}
	return n, nil
}

// chunkRead fills dst with a chunk's bytes from at, from memory or the
// cache. A cached chunk was checked against its digest before it was
// stored under it (the store writes a temporary file and renames it), so
// it is read as it is, only the part asked for, after a size check that
// catches a truncated file; VerifyCache hashes every entry again on demand.
func (s *stargzLayer) chunkRead(c overlay.Chunk, dst []byte, at int64) error {
	if data := s.hot.get(c.Digest); data != nil {
		copy(dst, data[at:])
		return nil
	}
	gone := func(err error) error {
		s.mu.Lock()
		delete(s.verified, c.Digest)
		s.mu.Unlock()
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, cas.ErrCorrupt) {
			// Removed (damaged, or pruned) since it was fetched: fetch again.
			return fmt.Errorf("layer %s: %s: chunk %s: %w", s.l.key, c.File, c.Digest, cas.ErrCorrupt)
		}
		return fmt.Errorf("layer %s: %s: chunk %s: %w", s.l.key, c.File, c.Digest, err)
	}
	p, err := s.store.Path(chunkKind, c.Digest, "")
	if err != nil {
		return gone(err)
	}
	f, err := os.Open(p)
	if err != nil {
		return gone(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return gone(err)
	}
	if info.Size() != c.Size {
		// Cut short (or the TOC lies about the size, which fetching again
		// then reports): drop it and fetch again.
		os.Remove(p)
		return gone(fmt.Errorf("cache: %s has %d bytes, the TOC says %d: %w", p, info.Size(), c.Size, cas.ErrCorrupt))
	}
	if _, err := f.ReadAt(dst, at); err != nil {
		return gone(err)
	}
	s.mu.Lock()
	s.verified[c.Digest] = true
	s.mu.Unlock()
	return nil
}

// compressedSize is what fetching cs costs at least: the sizes of the
// members holding them.
func compressedSize(cs []overlay.Chunk) int64 {
	seen := map[int64]bool{}
	var n int64
	for _, c := range cs {
		if !seen[c.Offset] {
			seen[c.Offset] = true
			n += c.Next - c.Offset
		}
	}
	return n
}

// chunkLRU keeps the most recently used chunks in memory, so that many
// small reads of one chunk (a FUSE read is 4-128 KiB; estargz chunks are
// up to 4 MiB) do not each read the cache file.
type chunkLRU struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List               // front: most recent; values are *lruEntry
	byKey map[string]*list.Element // by chunk digest
}

type lruEntry struct {
	key  string
	data []byte
}

func newChunkLRU(maxBytes int64) *chunkLRU {
	return &chunkLRU{max: maxBytes, order: list.New(), byKey: map[string]*list.Element{}}
}

func (c *chunkLRU) has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.byKey[key]
	return ok
}

func (c *chunkLRU) get(key string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry).data
}

func (c *chunkLRU) put(key string, data []byte) {
	if int64(len(data)) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byKey[key] = c.order.PushFront(&lruEntry{key: key, data: data})
	c.size += int64(len(data))
	for c.size > c.max {
		e := c.order.Back()
		old := e.Value.(*lruEntry)
		c.order.Remove(e)
		delete(c.byKey, old.key)
		c.size -= int64(len(old.data))
	}
}
