package lazy

import (
	"context"
	"io"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nanofs/nanofs/lazy/internal/cas"
)

// go-containerregistry reaches a registry that may speak plain HTTP
// (--insecure, localhost) by trying HTTPS first and falling back to HTTP:
// two connections and a failed TLS handshake, two round trips more, on
// every open. The cache remembers a registry that answered in plain HTTP,
// and its HTTPS requests go straight to HTTP from then on; should it
// speak only TLS one day, the record is dropped and HTTPS tried again.

// plainSuffix is the cache suffix of the record that a registry host
// speaks plain HTTP, kept with the manifests under the SHA-256 of its name.
const plainSuffix = ".plain-http"

func plainKey(host string) string { return cas.SHA256([]byte("plain-http " + host)) }

// plainHTTP sends the HTTPS requests for a registry known to speak plain
// HTTP as HTTP, and records the registry when it answers in HTTP.
type plainHTTP struct {
	inner    http.RoundTripper
	store    *cas.Store
	host     string
	known    atomic.Bool // the cache says the registry speaks plain HTTP
	recorded atomic.Bool // this process wrote (or read) the record
}

// newPlainHTTP wraps inner for reg, or returns inner unchanged when
// go-containerregistry would not talk plain HTTP to reg at all.
func newPlainHTTP(inner http.RoundTripper, store *cas.Store, reg name.Registry) (http.RoundTripper, *plainHTTP) {
	if reg.Scheme() != "http" {
		return inner, nil
	}
	p := &plainHTTP{inner: inner, store: store, host: reg.RegistryStr()}
	if _, err := store.ReadMeta(manifestKind, plainKey(p.host), plainSuffix); err == nil {
		p.known.Store(true)
		p.recorded.Store(true)
	}
	return p, p
}

func (p *plainHTTP) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == p.host && req.URL.Scheme == "https" {
		if !p.known.Load() {
			if req.Method == http.MethodGet && req.URL.Path == "/v2/" {
				return p.race(req)
			}
		} else {
			r := req.Clone(req.Context())
			r.URL.Scheme = "http"
			req = r
		}
	}
	resp, err := p.inner.RoundTrip(req)
	if err == nil && req.URL.Host == p.host && req.URL.Scheme == "http" && !p.recorded.Swap(true) {
		_ = p.store.WriteMeta(manifestKind, plainKey(p.host), plainSuffix, []byte(p.host)) // only an optimisation
	}
	return resp, err
}

// forget drops the record (the registry did not answer in plain HTTP):
// HTTPS is tried first again.
func (p *plainHTTP) forget() bool {
	if p == nil || !p.known.Swap(false) {
		return false
	}
	p.recorded.Store(false)
	if path, err := p.store.Path(manifestKind, plainKey(p.host), plainSuffix); err == nil {
		_ = os.Remove(path)
	}
	return true
}

// race sends the /v2/ ping of a registry not known to speak plain HTTP
// over HTTPS and HTTP at once: go-containerregistry tries HTTP only once
// HTTPS has failed, a connection and a round trip later. HTTPS wins
// whenever it answers; otherwise a ping's answer over HTTP (200, or 401
// with a challenge) is returned, as the answer to a request sent as HTTP
// (go-containerregistry then talks plain HTTP to the registry), and the
// registry is recorded.
func (p *plainHTTP) race(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	plain := req.Clone(ctx)
	plain.URL.Scheme = "http"
	type answer struct {
		resp *http.Response
		err  error
	}
	plainAnswer := make(chan answer, 1)
	go func() {
		resp, err := p.inner.RoundTrip(plain)
		plainAnswer <- answer{resp, err}
	}()
	resp, err := p.inner.RoundTrip(req)
	if err == nil {
		cancel()
		go func() {
			if a := <-plainAnswer; a.resp != nil {
				a.resp.Body.Close()
			}
		}()
		return resp, nil
	}
	a := <-plainAnswer
	if a.err != nil || (a.resp.StatusCode != http.StatusOK && a.resp.StatusCode != http.StatusUnauthorized) {
		// Not a registry answering in plain HTTP (or not now): HTTPS's
		// failure stands, and go-containerregistry tries HTTP itself and
		// reports both, as without the race (a TLS registry whose
		// certificate does not verify is told so).
		if a.resp != nil {
			a.resp.Body.Close()
		}
		cancel()
		return nil, err
	}
	a.resp.Body = &cancelOnClose{ReadCloser: a.resp.Body, cancel: cancel}
	if !p.recorded.Swap(true) {
		_ = p.store.WriteMeta(manifestKind, plainKey(p.host), plainSuffix, []byte(p.host)) // only an optimisation
	}
	return a.resp, nil
}

// cancelOnClose ends a request's context once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
