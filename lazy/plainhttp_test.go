package lazy

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/lazy/internal/cas"
)

// schemeLog records the scheme of every request sent through it.
type schemeLog struct {
	inner http.RoundTripper
	mu    sync.Mutex
	seen  []string
}

func (l *schemeLog) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.seen = append(l.seen, req.URL.Scheme)
	l.mu.Unlock()
	return l.inner.RoundTrip(req)
}

func (l *schemeLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen
	l.seen = nil
	return s
}

// TestPlainHTTPRemembered: a registry that answered in plain HTTP is not
// tried with TLS first on the next open; one that speaks only TLS after
// all is tried with TLS again.
func TestPlainHTTPRemembered(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "plain:1", testimage.EdgeSpec().Image(t, testimage.EStargz))
	cache := t.TempDir()
	seenBy := &schemeLog{inner: http.DefaultTransport.(*http.Transport).Clone()}
	open := func(ref string) {
		t.Helper()
		img, err := Open(t.Context(), ref, WithCacheDir(cache), WithTransport(seenBy))
		require.NoError(t, err)
		require.NoError(t, img.CheckTag(t.Context()))
		img.Close()
	}
	open(reg.Host + "/plain:1")
	assert.Contains(t, seenBy.take(), "https", "the first open tries TLS")
	open(reg.Host + "/plain:1")
	seen := seenBy.take()
	assert.NotEmpty(t, seen)
	assert.NotContains(t, seen, "https", "the registry is known to speak plain HTTP")

	// A registry recorded as plain that speaks TLS: the record is dropped.
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: reg.Host}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the plain HTTP attempts are expected
	srv.StartTLS()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	store, err := cas.Open(cache)
	require.NoError(t, err)
	require.NoError(t, store.WriteMeta(manifestKind, plainKey(host), plainSuffix, []byte(host)))
	tlsLog := &schemeLog{inner: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test server's own certificate
	img, err := Open(t.Context(), host+"/plain:1", WithCacheDir(cache), WithTransport(tlsLog), WithInsecure())
	require.NoError(t, err)
	img.Close()
	assert.Contains(t, tlsLog.take(), "https", "tried with TLS again")
	_, err = store.ReadMeta(manifestKind, plainKey(host), plainSuffix)
	assert.Error(t, err, "the record is gone")
}

// slowDialProxy forwards connections to upstream, each after delay: a
// registry far away, whose every new connection costs a round trip.
func slowDialProxy(t *testing.T, upstream string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				time.Sleep(delay)
				up, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c) //nolint:errcheck // ends when either side closes
				io.Copy(c, up)    //nolint:errcheck
			}()
		}
	}()
	return ln.Addr().String()
}

// attemptLog records when each request through it started and ended, by
// scheme.
type attemptLog struct {
	inner http.RoundTripper
	mu    sync.Mutex
	start map[string][]time.Time
	end   map[string][]time.Time
}

func (l *attemptLog) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.start[req.URL.Scheme] = append(l.start[req.URL.Scheme], time.Now())
	l.mu.Unlock()
	resp, err := l.inner.RoundTrip(req)
	l.mu.Lock()
	l.end[req.URL.Scheme] = append(l.end[req.URL.Scheme], time.Now())
	l.mu.Unlock()
	return resp, err
}

// TestPlainHTTPPingRaced: the first open of a plain-HTTP registry asks
// over HTTP while the HTTPS attempt is still failing, rather than after
// it; the image opens and the registry is recorded as plain.
func TestPlainHTTPPingRaced(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "plain:1", testimage.EdgeSpec().Image(t, testimage.EStargz))
	host := slowDialProxy(t, reg.Host, 200*time.Millisecond)
	cache := t.TempDir()
	attempts := &attemptLog{inner: http.DefaultTransport.(*http.Transport).Clone(), start: map[string][]time.Time{}, end: map[string][]time.Time{}}
	img, err := Open(t.Context(), host+"/plain:1", WithCacheDir(cache), WithTransport(attempts))
	require.NoError(t, err)
	img.Close()

	attempts.mu.Lock()
	defer attempts.mu.Unlock()
	require.Len(t, attempts.start["https"], 1, "one HTTPS attempt: the ping")
	require.Len(t, attempts.end["https"], 1)
	require.NotEmpty(t, attempts.start["http"])
	assert.True(t, attempts.start["http"][0].Before(attempts.end["https"][0]),
		"HTTP asked at %v, HTTPS failed at %v", attempts.start["http"][0], attempts.end["https"][0])
	store, err := cas.Open(cache)
	require.NoError(t, err)
	_, err = store.ReadMeta(manifestKind, plainKey(host), plainSuffix)
	assert.NoError(t, err, "recorded as plain")
}

// TestTLSRegistryBadCertificate: a localhost registry that speaks only TLS,
// with a certificate that does not verify, fails to open with an error
// that says so, not only with the plain-HTTP attempt's answer (400) that
// the HTTPS/HTTP race also got.
func TestTLSRegistryBadCertificate(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "tls:1", testimage.EdgeSpec().Image(t, testimage.EStargz))
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: reg.Host}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	_, err := Open(t.Context(), host+"/tls:1", WithCacheDir(t.TempDir()), WithTransport(http.DefaultTransport.(*http.Transport).Clone()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate", "the HTTPS attempt's failure is told")
}
