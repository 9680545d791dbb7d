package lazy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nanofs/nanofs/lazy/internal/cas"
)

// blobSource hands out byte ranges of blobs: the registry (ranged HTTP
// GETs through go-containerregistry's authenticating transport) or the
// files of an OCI layout.
type blobSource interface {
	// openRange makes one attempt at bytes [off, off+n) of blob d, whose
	// size is size. Errors that another attempt may cure are retryable.
	openRange(ctx context.Context, d v1.Hash, size, off, n int64, c *counter) (io.ReadCloser, error)
	// describe says where the blobs come from, for messages.
	describe() string
	close() error
}

// counter counts what crossed the network (or was read from a local
// source) for one blob.
type counter struct {
	requests atomic.Int64
	bytes    atomic.Int64
}

// retryableError marks a failure that another attempt may cure: a 5xx, a
// timeout, a dropped connection.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

func isRetryable(err error) bool {
	var r *retryableError
	return errors.As(err, &r)
}

// retryPolicy says how often and how patiently a blob read is retried.
type retryPolicy struct {
	attempts int           // failures in a row (without any byte received between them) before giving up
	backoff  time.Duration // wait after the first failure; doubles up to maxBackoff
	stall    time.Duration // a response that sends nothing for this long is dropped and retried
	// A read of n bytes must be done within grace + n/minRate, however the
	// bytes trickle in; 0 turns the deadline off.
	minRate int64 // bytes per second
	grace   time.Duration
}

// deadline is when a read of n bytes started now must be done.
func (p retryPolicy) deadline(n int64) (time.Time, bool) {
	if p.minRate <= 0 {
		return time.Time{}, false
	}
	secs := float64(n) / float64(p.minRate)
	return time.Now().Add(p.grace + time.Duration(secs*float64(time.Second))), true
}

const maxBackoff = 10 * time.Second

// blob is one blob of the image with the means to read it.
type blob struct {
	digest v1.Hash
	size   int64
	src    blobSource
	stats  *counter
	policy retryPolicy
}

// open returns a reader of bytes [off, off+n) that survives dropped
// connections and server errors: it asks again for what is still missing,
// from the last byte received, with backoff.
func (b *blob) open(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n <= 0 || off+n > b.size {
		return nil, fmt.Errorf("blob %s: range %d+%d outside its %d bytes", b.digest, off, n, b.size)
	}
	return &rangeReader{parent: ctx, ctx: ctx, b: b, off: off, n: n}, nil
}

// readAt reads len(p) bytes at off.
func (b *blob) readAt(ctx context.Context, p []byte, off int64) error {
	rc, err := b.open(ctx, off, int64(len(p)))
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.ReadFull(rc, p)
	return err
}

type rangeReader struct {
	parent context.Context // the caller's
	ctx    context.Context
	cancel context.CancelFunc // of the deadline, once started
	start  time.Time
	b      *blob
	off, n int64
	pos    int64 // bytes delivered so far
	body   io.ReadCloser
	fails  int   // failures since the last byte received
	err    error // the error given up with, returned from then on
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.cancel == nil {
		r.start = time.Now()
		if d, ok := r.b.policy.deadline(r.n); ok {
			r.ctx, r.cancel = context.WithDeadlineCause(r.ctx, d, errBlobDeadline)
		} else {
			r.ctx, r.cancel = context.WithCancel(r.ctx)
		}
	}
	n, err := r.read(p)
	if err != nil && err != io.EOF {
		var se *SlowError
		if context.Cause(r.ctx) == errBlobDeadline && !errors.As(err, &se) {
			err = &SlowError{
				Digest: r.b.digest.String(), From: r.b.src.describe(), Got: r.pos, Want: r.n,
				Elapsed: time.Since(r.start).Round(time.Millisecond), MinRate: r.b.policy.minRate,
			}
		}
		r.err = err
	}
	return n, err
}

// errBlobDeadline is the cause of a read's context ending at its deadline.
var errBlobDeadline = errors.New("blob read deadline")

// SlowError is a blob read that did not finish within the time its size
// allows at the minimum rate (WithMinRate): a server that stalls after a
// few bytes, or trickles them.
type SlowError struct {
	Digest  string        // the blob
	From    string        // where it was read from
	Got     int64         // bytes that arrived
	Want    int64         // bytes asked for
	Elapsed time.Duration // how long the read took
	MinRate int64         // bytes per second
}

func (e *SlowError) Error() string {
	return fmt.Sprintf("blob %s from %s: only %d of %d bytes arrived in %v, slower than the minimum rate of %d bytes/s",
		e.Digest, e.From, e.Got, e.Want, e.Elapsed, e.MinRate)
}

// Unwrap makes a slow read a network failure.
func (e *SlowError) Unwrap() error { return ErrNetwork }

func (r *rangeReader) read(p []byte) (int, error) {
	for {
		if r.pos >= r.n {
			r.closeBody()
			return 0, io.EOF
		}
		if err := r.ctx.Err(); err != nil {
			r.closeBody()
			return 0, err
		}
		if r.body == nil {
			body, err := r.b.src.openRange(r.ctx, r.b.digest, r.b.size, r.off+r.pos, r.n-r.pos, r.b.stats)
			if err != nil {
				if werr := r.failed(err); werr != nil {
					return 0, werr
				}
				continue
			}
			r.body = body
			if l, ok := body.(localBody); ok && l.local() {
				// The blob is in the cache (its registry ignores Range):
				// the rest reads from disk, with no deadline to meet.
				r.cancel()
				r.ctx, r.cancel = context.WithCancel(r.parent)
			}
		}
		if rest := r.n - r.pos; int64(len(p)) > rest {
			p = p[:rest]
		}
		k, err := r.body.Read(p)
		r.pos += int64(k)
		if k > 0 {
			r.fails = 0
		}
		switch {
		case err == nil:
			if k > 0 {
				return k, nil
			}
		case err == io.EOF && r.pos >= r.n:
			r.closeBody()
			return k, nil
		default:
			// A dropped connection, a stalled response, or a body that ended
			// early: ask again for the rest.
			r.closeBody()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			if werr := r.failed(&retryableError{fmt.Errorf("blob %s: reading bytes %d-%d: %w", r.b.digest, r.off, r.off+r.n-1, err)}); werr != nil {
				return k, werr
			}
			if k > 0 {
				return k, nil
			}
		}
	}
}

// failed waits before the next attempt, or returns the error to give up
// with.
func (r *rangeReader) failed(err error) error {
	var se *SlowError
	if errors.As(err, &se) {
		return err // already says what arrived
	}
	if cerr := r.ctx.Err(); cerr != nil {
		return cerr
	}
	if !isRetryable(err) {
		return err
	}
	r.fails++
	if r.fails >= r.b.policy.attempts {
		return fmt.Errorf("%w: giving up after %d attempts: %w", ErrNetwork, r.fails, err)
	}
	wait := r.b.policy.backoff << (r.fails - 1)
	if wait > maxBackoff || wait <= 0 {
		wait = maxBackoff
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-t.C:
		return nil
	}
}

func (r *rangeReader) closeBody() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
}

func (r *rangeReader) Close() error {
	r.closeBody()
	if r.cancel != nil {
		r.cancel()
	}
	return nil
}

// registryBlobs reads blobs from a registry with plain HTTP requests sent
// through go-containerregistry's transport, which authenticates them (basic
// or bearer tokens, refreshed as needed) for the registry's host only.
//
// A registry that answers a range request with the whole blob (200) would
// make every ranged read download the blob from its start: the first such
// answer marks the blob, the answer is kept whole in the cache (verified
// against the digest), and every read of it is served from there.
type registryBlobs struct {
	repo   name.Repository
	client *http.Client
	stall  time.Duration
	policy retryPolicy // for the deadline of a blob kept whole
	store  *cas.Store

	mu    sync.Mutex
	whole map[v1.Hash]*wholeBlob // blobs whose registry ignored Range
}

// wholeBlob is a blob kept whole in the cache because its registry ignores
// Range.
type wholeBlob struct {
	mu   sync.Mutex // held while it is fetched
	path string     // the verified cache file, once there
}

func newRegistryBlobs(repo name.Repository, authed http.RoundTripper, policy retryPolicy, store *cas.Store) *registryBlobs {
	registryHost := repo.RegistryStr()
	client := &http.Client{
		Transport: authed,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			// Blob storage elsewhere (a CDN, S3) gets the Range header but
			// never the registry's credentials.
			if req.URL.Host != registryHost {
				req.Header.Del("Authorization")
			}
			return nil
		},
	}
	return &registryBlobs{repo: repo, client: client, stall: policy.stall, policy: policy, store: store, whole: map[v1.Hash]*wholeBlob{}}
}

func (r *registryBlobs) describe() string { return "registry " + r.repo.RegistryStr() }

func (r *registryBlobs) close() error {
	r.client.CloseIdleConnections()
	return nil
}

func (r *registryBlobs) blobURL(d v1.Hash) string {
	u := url.URL{
		Scheme: r.repo.Scheme(),
		Host:   r.repo.RegistryStr(),
		Path:   fmt.Sprintf("/v2/%s/blobs/%s", r.repo.RepositoryStr(), d),
	}
	return u.String()
}

// ignoresRange returns the blob's whole-blob state if its registry was
// seen to ignore Range.
func (r *registryBlobs) ignoresRange(d v1.Hash) *wholeBlob {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.whole[d]
}

func (r *registryBlobs) markIgnoresRange(d v1.Hash) *wholeBlob {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.whole[d]
	if w == nil {
		w = &wholeBlob{}
		r.whole[d] = w
	}
	return w
}

func (r *registryBlobs) openRange(ctx context.Context, d v1.Hash, size, off, n int64, c *counter) (io.ReadCloser, error) {
	end := min(off+n, size) - 1
	if off < 0 || end < off {
		return nil, fmt.Errorf("blob %s: empty range %d+%d of %d bytes", d, off, n, size)
	}
	whole := off == 0 && end == size-1
	if w := r.ignoresRange(d); w != nil && !whole {
		return r.openCached(ctx, w, d, size, off, end, c, nil)
	}
	rng := ""
	if !whole {
		// Always both ends, clamped to the blob: some registries refuse
		// open-ended ranges.
		rng = fmt.Sprintf("bytes=%d-%d", off, end)
	}
	resp, body, err := r.get(ctx, d, rng, c)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (io.ReadCloser, error) {
		io.Copy(io.Discard, io.LimitReader(body, 4096))
		body.Close()
		return nil, err
	}
	want := end - off + 1
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		start, last, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != off || last != end || (total >= 0 && total != size) {
			return fail(fmt.Errorf("blob %s: asked for bytes %d-%d of %d, registry sent Content-Range %q", d, off, end, size, resp.Header.Get("Content-Range")))
		}
		return limitReadCloser(body, want), nil
	case resp.StatusCode == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return fail(fmt.Errorf("blob %s: registry sent %d bytes for a blob of %d", d, resp.ContentLength, size))
		}
		if whole {
			return limitReadCloser(body, want), nil
		}
		// The registry ignores Range: keep this whole answer in the cache
		// and read this blob from there from now on.
		return r.openCached(ctx, r.markIgnoresRange(d), d, size, off, end, c, body)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return fail(&retryableError{fmt.Errorf("blob %s: registry answered %s", d, resp.Status)})
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fail(fmt.Errorf("blob %s: %w (%s)", d, ErrUnauthorized, resp.Status))
	case resp.StatusCode == http.StatusNotFound:
		return fail(fmt.Errorf("blob %s: %w: registry answered %s", d, ErrNotFound, resp.Status))
	default:
		return fail(fmt.Errorf("blob %s: registry answered %s to bytes=%d-%d", d, resp.Status, off, end))
	}
}

// get sends one GET for blob d (with a Range header unless rng is "") and
// returns the response with its body watched for stalls.
func (r *registryBlobs) get(ctx context.Context, d v1.Hash, rng string, c *counter) (*http.Response, *watchedBody, error) {
	// Each attempt has its own context, cancelled when the response stalls
	// or ctx ends. It is linked to ctx rather than derived from it, so that
	// a whole-blob answer can be handed over to the longer deadline of the
	// whole blob (rebind).
	actx, cancelCause := context.WithCancelCause(context.WithoutCancel(ctx))
	cancel := func() { cancelCause(context.Canceled) }
	unlink := context.AfterFunc(ctx, func() { cancelCause(context.Cause(ctx)) })
	stalled := &atomic.Bool{}
	watchdog := time.AfterFunc(r.stall, func() { stalled.Store(true); cancel() })
	req, err := http.NewRequestWithContext(actx, http.MethodGet, r.blobURL(d), nil)
	if err != nil {
		watchdog.Stop()
		unlink()
		cancel()
		return nil, nil, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	c.requests.Add(1)
	resp, err := r.client.Do(req)
	if err != nil {
		watchdog.Stop()
		unlink()
		cancel()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if stalled.Load() {
			// Not the cancellation's own error: a stall is the network's
			// failure, not the user's interruption.
			err = fmt.Errorf("no response within %v", r.stall)
		}
		return nil, nil, &retryableError{fmt.Errorf("blob %s from %s: %w", d, r.describe(), err)}
	}
	return resp, &watchedBody{rc: resp.Body, watchdog: watchdog, stall: r.stall, stalled: stalled, cancel: cancel,
		cancelCause: cancelCause, unlink: unlink, c: c}, nil
}

// openCached returns bytes [off, end] of a blob kept whole in the cache,
// fetching it first if it is not there yet: from first (a whole-blob
// answer already received) or with one more GET.
func (r *registryBlobs) openCached(ctx context.Context, w *wholeBlob, d v1.Hash, size, off, end int64, c *counter, first *watchedBody) (io.ReadCloser, error) {
	// The whole blob has the deadline of its size, not of the range asked
	// for; the caller's cancellation still ends it.
	wctx, done := r.wholeContext(ctx, size)
	defer done()
	if first != nil {
		first.rebind(wctx)
	}
	p, err := r.fetchWhole(wctx, w, d, size, c, first)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("blob %s: cached copy: %w", d, err)
	}
	return cachedRange{readCloser{Reader: io.NewSectionReader(f, off, end-off+1), Closer: f}}, nil
}

// localBody is a range served from the cache rather than the network.
type localBody interface{ local() bool }

type cachedRange struct{ readCloser }

func (cachedRange) local() bool { return true }

// wholeKind is the cache kind of blobs kept whole.
const wholeKind = "blobs"

// wholeContext is ctx without the deadline of a range read (errBlobDeadline)
// and with one for size bytes.
func (r *registryBlobs) wholeContext(ctx context.Context, size int64) (context.Context, func()) {
	wctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	link := func() {
		if cause := context.Cause(ctx); cause != errBlobDeadline {
			cancel(cause)
		}
	}
	stop := context.AfterFunc(ctx, link)
	stopTimer := func() bool { return false }
	if d, ok := r.policy.deadline(size); ok {
		stopTimer = time.AfterFunc(time.Until(d), func() { cancel(errBlobDeadline) }).Stop
	}
	return wctx, func() {
		stop()
		stopTimer()
		cancel(context.Canceled)
	}
}

func (r *registryBlobs) fetchWhole(ctx context.Context, w *wholeBlob, d v1.Hash, size int64, c *counter, first *watchedBody) (string, error) {
	start := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.path != "" {
		if first != nil {
			first.Close()
		}
		return w.path, nil
	}
	key := d.String()
	final, err := r.store.Path(wholeKind, key, "")
	if err != nil {
		return "", err
	}
	unlock, err := r.store.Lock(wholeKind, key)
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process (or an earlier run) may have kept it: trust it only
	// once it hashes to its name.
	if f, err := os.Open(final); err == nil {
		got, n, herr := cas.SHA256Reader(f)
		f.Close()
		if herr == nil && got == key && n == size {
			if first != nil {
				first.Close()
			}
			touch(final)
			w.path = final
			return final, nil
		}
		os.Remove(final)
	}
	var body io.ReadCloser = first
	if first == nil {
		resp, wb, err := r.get(ctx, d, "", c)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			io.Copy(io.Discard, io.LimitReader(wb, 4096))
			wb.Close()
			err := fmt.Errorf("blob %s: registry answered %s", d, resp.Status)
			if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
				err = &retryableError{err}
			}
			return "", err
		}
		body = wb
	}
	defer body.Close()
	pend, err := r.store.Create(wholeKind, key, "")
	if err != nil {
		return "", err
	}
	defer pend.Abort()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(pend, h), io.LimitReader(body, size+1))
	if err != nil {
		if context.Cause(ctx) == errBlobDeadline {
			return "", &SlowError{Digest: key, From: r.describe(), Got: n, Want: size, MinRate: r.policy.minRate,
				Elapsed: time.Since(start).Round(time.Millisecond)}
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("cache: %w", err) // the disk, not the network
		}
		return "", &retryableError{fmt.Errorf("blob %s from %s: reading the whole blob (the registry ignores Range): %w", d, r.describe(), err)}
	}
	if n != size {
		return "", &retryableError{fmt.Errorf("blob %s from %s: %d bytes for a blob of %d", d, r.describe(), n, size)}
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != key {
		return "", fmt.Errorf("blob %s: %w: it hashes to %s", d, ErrDigestMismatch, got)
	}
	if err := pend.Commit(); err != nil {
		return "", err
	}
	w.path = final
	return final, nil
}

// parseContentRange parses "bytes FIRST-LAST/TOTAL" (TOTAL may be "*",
// reported as -1).
func parseContentRange(s string) (first, last, total int64, err error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	if first, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	if last, err = strconv.ParseInt(b, 10, 64); err != nil || last < first {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("bad Content-Range %q", s)
		}
	}
	return first, last, total, nil
}

// watchedBody counts the bytes of a response and drops the connection when
// it stalls.
type watchedBody struct {
	rc       io.ReadCloser
	watchdog *time.Timer
	stall    time.Duration
	stalled  *atomic.Bool
	cancel   context.CancelFunc
	c        *counter

	cancelCause context.CancelCauseFunc
	mu          sync.Mutex
	unlink      func() bool // stops the link to the context the response ends with
}

// rebind makes the response end with ctx instead of the context it was
// asked for with.
func (w *watchedBody) rebind(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unlink()
	w.unlink = context.AfterFunc(ctx, func() { w.cancelCause(context.Cause(ctx)) })
}

func (w *watchedBody) Read(p []byte) (int, error) {
	n, err := w.rc.Read(p)
	w.c.bytes.Add(int64(n))
	if n > 0 {
		w.watchdog.Reset(w.stall)
	}
	if err != nil && err != io.EOF && w.stalled.Load() {
		// Not wrapped: the cancellation that dropped the response is the
		// watchdog's, and must not read as the user's interruption.
		err = fmt.Errorf("no data for %v (%v)", w.stall, err)
	}
	return n, err
}

func (w *watchedBody) Close() error {
	w.watchdog.Stop()
	err := w.rc.Close()
	w.mu.Lock()
	w.unlink()
	w.mu.Unlock()
	w.cancel()
	return err
}

type limitedReadCloser struct {
	io.Reader
	io.Closer
}

func limitReadCloser(rc io.ReadCloser, n int64) io.ReadCloser {
	return limitedReadCloser{Reader: io.LimitReader(rc, n), Closer: rc}
}

// layoutBlobs reads the blobs of an OCI image layout directory.
type layoutBlobs struct {
	dir   string
	mu    sync.Mutex
	files map[v1.Hash]*os.File
}

func newLayoutBlobs(dir string) *layoutBlobs {
	return &layoutBlobs{dir: dir, files: map[v1.Hash]*os.File{}}
}

func (l *layoutBlobs) file(d v1.Hash) (*os.File, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.files[d]; f != nil {
		return f, nil
	}
	// v1.Hash guarantees a plain algorithm name and hex digits.
	f, err := os.Open(layoutBlobPath(l.dir, d))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	l.files[d] = f
	return f, nil
}

func (l *layoutBlobs) openRange(ctx context.Context, d v1.Hash, size, off, n int64, c *counter) (io.ReadCloser, error) {
	f, err := l.file(d)
	if err != nil {
		return nil, err
	}
	c.requests.Add(1)
	return io.NopCloser(&countingReader{r: io.NewSectionReader(f, off, min(n, size-off)), c: c}), nil
}

func (l *layoutBlobs) describe() string { return "OCI layout " + l.dir }

func (l *layoutBlobs) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, f := range l.files {
		errs = append(errs, f.Close())
	}
	clear(l.files)
	return errors.Join(errs...)
}

type countingReader struct {
	r io.Reader
	c *counter
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.c.bytes.Add(int64(n))
	return n, err
}
