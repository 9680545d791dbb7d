package testimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Counter is a reverse proxy in front of a registry that counts what its
// clients fetch (requests, and body bytes of blob responses actually sent)
// and can inject faults into blob downloads. Point a client at Host (or
// mount the Counter, an http.Handler, on your own server).
type Counter struct {
	Host string // "127.0.0.1:PORT" when started by StartCounter

	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	stats    Stats
	faults   []*Fault
	inflight int // requests being served, recorded when their handler returns
}

// Stats is a snapshot of what a Counter saw since it started or was Reset.
type Stats struct {
	Requests     int                  // every request
	BlobRequests int                  // GET or HEAD of /v2/NAME/blobs/DIGEST (uploads excluded)
	BlobBytes    int64                // body bytes of blob responses sent to clients
	Blobs        map[string]BlobCount // per blob digest ("sha256:...")
	Log          []Request            // every request, in the order they finished
}

// BlobCount is what was fetched of one blob.
type BlobCount struct {
	Requests int
	Bytes    int64
}

// Request is one request as the Counter saw it.
type Request struct {
	Method string
	Path   string
	Range  string // the client's Range header
	Digest string // the blob digest, for blob requests
	Status int
	Bytes  int64  // body bytes sent to the client
	Fault  string // the fault injected into this request, if any
}

// FaultKind is a way a blob download can go wrong.
type FaultKind int

const (
	// DropAfter cuts the connection after Offset body bytes of the response.
	DropAfter FaultKind = iota + 1
	// Status500 answers 500 without asking the registry.
	Status500
	// IgnoreRange removes the Range header, so the registry answers 200 with
	// the whole blob, as a server that does not do ranges would.
	IgnoreRange
	// CorruptByte flips every bit of the byte at blob offset Offset, if the
	// response covers it.
	CorruptByte
	// Trickle lets Offset body bytes through, then sends one byte every
	// Delay: a stalled server when Delay is long, a trickling one when it
	// is short.
	Trickle
)

func (k FaultKind) String() string {
	switch k {
	case DropAfter:
		return "drop-after"
	case Status500:
		return "status-500"
	case IgnoreRange:
		return "ignore-range"
	case CorruptByte:
		return "corrupt-byte"
	case Trickle:
		return "trickle"
	}
	return fmt.Sprintf("fault(%d)", int(k))
}

// Fault is injected into blob GETs (HEAD and manifest requests pass), or,
// with Path, into the GETs of that path (Status500 only: "/v2/" is the
// registry's ping).
type Fault struct {
	Kind   FaultKind
	Digest string        // only this blob ("sha256:..."); "" for any blob
	Path   string        // instead of blobs, GETs of exactly this path
	Offset int64         // DropAfter, Trickle: body bytes let through; CorruptByte: blob offset
	Delay  time.Duration // Trickle: the wait before each further byte
	// BytesPerSec, with any kind, sends the response body no faster.
	BytesPerSec int64
	Times       int // how many matching requests it hits; 0 for all of them
	hits        int
}

// NewCounter returns a Counter proxying to the registry at upstreamHost
// ("127.0.0.1:PORT", plain HTTP).
func NewCounter(upstreamHost string) *Counter {
	target := &url.URL{Scheme: "http", Host: upstreamHost}
	c := &Counter{stats: Stats{Blobs: map[string]BlobCount{}}}
	c.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Keep the client's Host so that the registry's upload
			// locations point back at the proxy.
			pr.Out.Host = pr.In.Host
			if f := faultOf(pr.In.Context()); f != nil && f.Kind == IgnoreRange {
				pr.Out.Header.Del("Range")
				pr.Out.Header.Del("If-Range")
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			f := faultOf(resp.Request.Context())
			if f == nil {
				return nil
			}
			if f.BytesPerSec > 0 {
				resp.Body = &throttleReader{ReadCloser: resp.Body, rate: f.BytesPerSec, ctx: resp.Request.Context(), start: time.Now()}
			}
			switch f.Kind {
			case DropAfter:
				resp.Body = &dropReader{ReadCloser: resp.Body, left: f.Offset}
			case Trickle:
				resp.Body = &trickleReader{ReadCloser: resp.Body, left: f.Offset, delay: f.Delay, ctx: resp.Request.Context()}
			case CorruptByte:
				start, ok := responseStart(resp)
				if ok && f.Offset >= start {
					resp.Body = &corruptReader{ReadCloser: resp.Body, at: f.Offset - start}
				}
			}
			return nil
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return c
}

// StartCounter serves a new Counter for upstreamHost on a loopback port
// until the test ends.
func StartCounter(t testing.TB, upstreamHost string) *Counter {
	t.Helper()
	c := NewCounter(upstreamHost)
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	c.Host = strings.TrimPrefix(srv.URL, "http://")
	return c
}

// Ref returns "HOST/REPO" on the counter's host.
func (c *Counter) Ref(repo string) string { return c.Host + "/" + repo }

// Stats returns a snapshot of the counts.
//
// A client can have read a whole response before the handler that sent it
// has returned and recorded it, so Stats first waits (half a second at
// most: a request stalled on purpose is still in flight) for the requests
// in flight to be recorded.
func (c *Counter) Stats() Stats {
	for deadline := time.Now().Add(500 * time.Millisecond); ; time.Sleep(2 * time.Millisecond) {
		c.mu.Lock()
		if c.inflight == 0 || time.Now().After(deadline) {
			break
		}
		c.mu.Unlock()
	}
	defer c.mu.Unlock()
	s := c.stats
	s.Blobs = maps.Clone(s.Blobs)
	s.Log = append([]Request(nil), s.Log...)
	return s
}

// Reset zeroes the counts (faults stay).
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats = Stats{Blobs: map[string]BlobCount{}}
}

// Inject adds a fault; faults are tried in the order added and the first
// matching one is applied to a request.
func (c *Counter) Inject(f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = append(c.faults, &f)
}

// ClearFaults removes every fault.
func (c *Counter) ClearFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = nil
}

var blobPath = regexp.MustCompile(`^/v2/(.+)/blobs/([a-z0-9]+:[a-zA-Z0-9=_-]+)$`)

// pickFault returns the fault for a request and counts the hit.
func (c *Counter) pickFault(method, path, digest string) *Fault {
	if method != http.MethodGet {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.faults {
		match := f.Path == path
		if f.Path == "" {
			match = digest != "" && (f.Digest == "" || f.Digest == digest)
		}
		if match && (f.Times == 0 || f.hits < f.Times) {
			f.hits++
			copied := *f
			return &copied
		}
	}
	return nil
}

type faultKey struct{}

func faultOf(ctx context.Context) *Fault {
	f, _ := ctx.Value(faultKey{}).(*Fault)
	return f
}

// ServeHTTP implements http.Handler.
func (c *Counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Range: r.Header.Get("Range")}
	if m := blobPath.FindStringSubmatch(r.URL.Path); m != nil {
		rec.Digest = m[2]
	}
	cw := &countingResponseWriter{ResponseWriter: w}
	c.mu.Lock()
	c.inflight++
	c.mu.Unlock()
	// The proxy aborts a response by panicking with http.ErrAbortHandler;
	// the request is recorded either way.
	defer func() {
		rec.Status, rec.Bytes = cw.status, cw.n
		if rec.Status == 0 {
			rec.Status = http.StatusOK
		}
		c.record(rec)
	}()
	f := c.pickFault(r.Method, r.URL.Path, rec.Digest)
	if f != nil {
		rec.Fault = f.Kind.String()
		if f.Kind == Status500 {
			cw.Header().Set("Content-Type", "application/json")
			cw.WriteHeader(http.StatusInternalServerError)
			io.WriteString(cw, `{"errors":[{"code":"UNKNOWN","message":"fault injected by testimage.Counter"}]}`)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), faultKey{}, f))
		// What precedes a dropped connection must reach the client, not die
		// in the server's buffer.
		cw.flushEach = f.Kind == DropAfter || f.Kind == Trickle || f.BytesPerSec > 0
	}
	c.proxy.ServeHTTP(cw, r)
}

func (c *Counter) record(rec Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	c.stats.Requests++
	c.stats.Log = append(c.stats.Log, rec)
	if rec.Digest == "" {
		return
	}
	c.stats.BlobRequests++
	c.stats.BlobBytes += rec.Bytes
	b := c.stats.Blobs[rec.Digest]
	b.Requests++
	b.Bytes += rec.Bytes
	c.stats.Blobs[rec.Digest] = b
}

type countingResponseWriter struct {
	http.ResponseWriter
	status    int
	n         int64
	flushEach bool
}

func (w *countingResponseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
	if w.flushEach {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

func (w *countingResponseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	if w.flushEach && err == nil {
		err = http.NewResponseController(w.ResponseWriter).Flush()
	}
	return n, err
}

// Unwrap lets http.ResponseController (used by the proxy to flush) reach
// the server's writer.
func (w *countingResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// responseStart is the blob offset of a response body's first byte.
func responseStart(resp *http.Response) (int64, bool) {
	switch resp.StatusCode {
	case http.StatusOK:
		return 0, true
	case http.StatusPartialContent:
		var start, end, size int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &size); err != nil {
			return 0, false
		}
		return start, true
	}
	return 0, false
}

var errDropped = errors.New("testimage: connection dropped by injected fault")

// dropReader fails after left bytes, which makes the proxy abort the
// response mid-body: the client sees the connection close early.
type dropReader struct {
	io.ReadCloser
	left int64
}

func (d *dropReader) Read(p []byte) (int, error) {
	if d.left <= 0 {
		return 0, errDropped
	}
	if int64(len(p)) > d.left {
		p = p[:d.left]
	}
	n, err := d.ReadCloser.Read(p)
	d.left -= int64(n)
	return n, err
}

// corruptReader flips the byte at body offset at.
type corruptReader struct {
	io.ReadCloser
	at, pos int64
}

func (c *corruptReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if c.at >= c.pos && c.at < c.pos+int64(n) {
		p[c.at-c.pos] ^= 0xff
	}
	c.pos += int64(n)
	return n, err
}

// trickleReader lets left bytes through, then one byte per delay, until
// the client goes away.
type trickleReader struct {
	io.ReadCloser
	left  int64
	delay time.Duration
	ctx   context.Context
}

func (t *trickleReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if t.left > 0 {
		if int64(len(p)) > t.left {
			p = p[:t.left]
		}
		n, err := t.ReadCloser.Read(p)
		t.left -= int64(n)
		return n, err
	}
	timer := time.NewTimer(t.delay)
	defer timer.Stop()
	select {
	case <-t.ctx.Done():
		return 0, t.ctx.Err()
	case <-timer.C:
	}
	return t.ReadCloser.Read(p[:1])
}

// throttleReader sends at most rate bytes a second.
type throttleReader struct {
	io.ReadCloser
	rate  int64
	ctx   context.Context
	start time.Time
	sent  int64
}

func (t *throttleReader) Read(p []byte) (int, error) {
	if chunk := max(t.rate/50, 1); int64(len(p)) > chunk {
		p = p[:chunk]
	}
	// Wait until the bytes sent so far are due.
	due := t.start.Add(time.Duration(float64(t.sent) / float64(t.rate) * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-t.ctx.Done():
			return 0, t.ctx.Err()
		case <-timer.C:
		}
	}
	n, err := t.ReadCloser.Read(p)
	t.sent += int64(n)
	return n, err
}
