package lazy

import (
	"errors"
	"fmt"
	"github.com/google/go-containerregistry/pkg/name"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Option configures Open.
type Option func(*options)

type options struct {
	platform         v1.Platform
	platformExplicit bool
	insecure         bool
	cacheDir         string
	keychain         authn.Keychain
	transport        http.RoundTripper
	jobs             int
	policy           retryPolicy
	userAgent        string
	progress         func(Stats)
	expansion        expansionLimit
	mirror           string // registry host serving Docker Hub's repositories
	tagLater         bool   // WithTagCheckLater
}

func defaultOptions() options {
	return options{
		platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		keychain: authn.DefaultKeychain,
		jobs:     4,
		policy: retryPolicy{attempts: 5, backoff: 200 * time.Millisecond, stall: 30 * time.Second,
			minRate: DefaultMinRate, grace: DefaultRateGrace},
		expansion: expansionLimit{ratio: DefaultMaxExpansion, max: DefaultMaxLayerSize},
	}
}

// WithPlatform chooses the image of a multi-platform index (default: linux
// and the host's architecture). A variant or OS version left empty
// matches any. For a single-platform image, a platform given explicitly
// must match the image's config.
func WithPlatform(p v1.Platform) Option {
	return func(o *options) { o.platform, o.platformExplicit = p, true }
}

// ParsePlatform reads os/arch[/variant] (linux/arm64, linux/arm/v7) for
// WithPlatform; both the os and the architecture are needed.
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err == nil && (p.OS == "" || p.Architecture == "") {
		err = errors.New("want os/arch[/variant], e.g. linux/arm64")
	}
	if err != nil {
		return v1.Platform{}, err
	}
	return *p, nil
}

// PlatformOf is the platform that Open, given opts, picks images for:
// WithPlatform's, or linux and the host's architecture. A unikernel built
// from the image runs programs of this architecture.
func PlatformOf(opts ...Option) v1.Platform {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return o.platform
}

// WithInsecure allows plain HTTP and registries whose TLS certificate does
// not verify. Registries on localhost and loopback addresses are reached
// over plain HTTP without it.
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// WithRegistryMirror fetches Docker Hub references (node:16.3.0 is
// index.docker.io/library/node:16.3.0) from the registry at host instead,
// as the Docker daemon's registry-mirrors setting does: a pull-through
// cache, or a registry holding copies. Other registries are not affected;
// the reference keeps its name (output names, messages).
func WithRegistryMirror(host string) Option { return func(o *options) { o.mirror = host } }

// CheckRegistryMirror reports whether host can name a registry mirror
// (HOST or HOST:PORT), before any image is opened.
func CheckRegistryMirror(host string) error {
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil || strings.ContainsAny(host, "/@") {
		return fmt.Errorf("registry mirror %q: want a registry host such as mirror.example.com or 127.0.0.1:5000", host)
	}
	return nil
}

// WithCacheDir puts the content cache in dir instead of
// os.UserCacheDir()/nanofs ($XDG_CACHE_HOME/nanofs, ~/.cache/nanofs).
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// WithKeychain sets where registry credentials come from (default:
// authn.DefaultKeychain: docker's config.json, its credential helpers and
// podman's auth.json).
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithTransport sets the HTTP transport registry requests go through
// before authentication is added (default: remote.DefaultTransport).
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

// WithJobs bounds how many layers are downloaded and indexed whole, and
// how many requests a prefetch makes, at once (default 4). The tables of
// contents of eStargz and zstd:chunked layers are fetched up to max(n, 8)
// at a time.
func WithJobs(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.jobs = n
		}
	}
}

// WithRetries sets how many times in a row a blob request may fail (5xx,
// timeout, dropped connection) before a read gives up (default 5), and the
// wait after the first failure, doubled after each further one (default
// 200ms).
func WithRetries(attempts int, backoff time.Duration) Option {
	return func(o *options) {
		if attempts > 0 {
			o.policy.attempts = attempts
		}
		if backoff > 0 {
			o.policy.backoff = backoff
		}
	}
}

// WithStallTimeout sets how long a blob response may send nothing before
// it is dropped and asked for again (default 30s).
func WithStallTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.policy.stall = d
		}
	}
}

// DefaultMinRate and DefaultRateGrace bound how long a blob read may take:
// DefaultRateGrace plus its size at DefaultMinRate bytes a second.
const (
	DefaultMinRate   = 10 << 10
	DefaultRateGrace = 60 * time.Second
)

// WithMinRate sets the slowest a blob read may be: a read of n bytes (a
// whole layer, or the chunks of a file) that has not finished grace plus
// n/bytesPerSec seconds after it started fails with a *SlowError, however
// its bytes trickle in and whatever the retries (default DefaultMinRate
// and DefaultRateGrace). bytesPerSec 0 turns the deadline off; a negative
// grace keeps the default.
func WithMinRate(bytesPerSec int64, grace time.Duration) Option {
	return func(o *options) {
		if bytesPerSec >= 0 {
			o.policy.minRate = bytesPerSec
		}
		if grace >= 0 {
			o.policy.grace = grace
		}
	}
}

// DefaultMaxExpansion and DefaultMaxLayerSize bound what a layer without
// random access may expand to (see WithMaxExpansion).
const (
	DefaultMaxExpansion = 100
	DefaultMaxLayerSize = 32 << 30
)

// expansionSlack is what any layer may expand to, whatever its ratio: small
// layers of zeros are not bombs.
const expansionSlack = 64 << 20

// WithMaxExpansion bounds what one layer read whole (gzip, zstd) may
// expand to: ratio times its compressed size (plus 64 MiB, for small
// layers), and never more than maxBytes, so that a decompression bomb
// fails with an *ExpansionError naming the layer instead of filling the
// cache (default DefaultMaxExpansion and DefaultMaxLayerSize). A value of
// 0 keeps the default.
func WithMaxExpansion(ratio, maxBytes int64) Option {
	return func(o *options) {
		if ratio > 0 {
			o.expansion.ratio = ratio
		}
		if maxBytes > 0 {
			o.expansion.max = maxBytes
		}
	}
}

// WithProgress has Open call fn with the counts so far several times a
// second while it fetches the layers' indexes (a whole layer, for layers
// without a TOC), and once more before it returns, from one goroutine.
// Stats.Layers[i].Size says how much a layer has in all.
func WithProgress(fn func(Stats)) Option { return func(o *options) { o.progress = fn } }

// WithTagCheckLater lets Open start from the manifest a tag named the last
// time it was looked up (when that manifest is in the cache) and ask the
// registry where the tag points now while the image is read: the round
// trips of that question are hidden behind the caller's work. The caller
// must call Image.CheckTag before it trusts anything it made of the image:
// only then is the image known to be the one the tag names
// (ErrTagMoved if it is not).
func WithTagCheckLater() Option { return func(o *options) { o.tagLater = true } }

// WithUserAgent adds to the User-Agent of registry requests.
func WithUserAgent(ua string) Option { return func(o *options) { o.userAgent = ua } }

// DefaultCacheDir is where the cache lives unless WithCacheDir says
// otherwise: os.UserCacheDir()/nanofs.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory (set XDG_CACHE_HOME or HOME, or pass a cache dir): %w", err)
	}
	return filepath.Join(d, "nanofs"), nil
}
