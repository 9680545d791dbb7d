package lazy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nanofs/nanofs/lazy/internal/cas"
)

// Errors that callers may want to tell apart (with errors.Is).
var (
	// ErrNotFound: the registry does not know the image (or a blob of it).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the registry refused the credentials, or asked for
	// some and none were found.
	ErrUnauthorized = errors.New("not authorized")
	// ErrPlatform: a multi-platform index has no image for the platform
	// asked for, or a single image is for another platform.
	ErrPlatform = errors.New("no image for the platform")
	// ErrDigestMismatch: bytes do not match the digest that names them.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrLayerTooLarge: a layer expands to more than WithMaxExpansion
	// allows (an *ExpansionError).
	ErrLayerTooLarge = errors.New("layer expands too far")
	// ErrNetwork: the registry could not be reached or kept failing
	// (connection errors, 5xx, stalls) after every retry, or sent a blob
	// slower than the minimum rate (a *SlowError).
	ErrNetwork = errors.New("network failure")
)

// Source prefixes that say what a reference is without looking at the
// file system.
const (
	PrefixOCILayout     = "oci:"            // an OCI image layout directory
	PrefixDockerArchive = "docker-archive:" // a `docker save` tarball
)

// image is what a source resolves to before the layers are indexed.
type resolved struct {
	name      string  // what to call the image in messages
	digest    v1.Hash // manifest digest (docker-save tarballs: config digest)
	rawConfig []byte
	layers    []*layer
	src       blobSource // nil for docker-save tarballs
	tag       *tagCheck  // WithTagCheckLater: the registry's answer, pending
}

// resolve decides what kind of source ref is and resolves it to one
// image's manifest and config.
func resolve(ctx context.Context, ref string, o *options, store *cas.Store, cfgStats *counter) (*resolved, error) {
	src, err := Classify(ref)
	if err != nil {
		return nil, err
	}
	switch src.Kind {
	case KindOCILayout:
		return openLayout(src.Path, o)
	case KindDockerArchive, KindDisk:
		// A file that does not start like a tar archive gets the tarball
		// reader's own error, which says what is wrong with it.
		return openTarball(src.Path, o)
	case KindDirectory:
		return nil, fmt.Errorf("%s is a directory but not an OCI image layout (it has no index.json)", ref)
	}
	return openRegistry(ctx, ref, o, store, cfgStats)
}

// looksLikePath tells file paths from registry references, which never
// start with "/" or ".".
func looksLikePath(ref string) bool {
	return strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, ".")
}

// mirrored is ref as fetched from mirror when ref is on Docker Hub: the
// same repository path (library/node) and tag or digest on the mirror.
func mirrored(ref name.Reference, mirror string, nopts []name.Option) (name.Reference, error) {
	if mirror == "" || ref.Context().RegistryStr() != name.DefaultRegistry {
		return ref, nil
	}
	sep := ":"
	if _, ok := ref.(name.Digest); ok {
		sep = "@"
	}
	m, err := name.ParseReference(mirror+"/"+ref.Context().RepositoryStr()+sep+ref.Identifier(), nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry mirror %q: %w", mirror, err)
	}
	return m, nil
}

func openRegistry(ctx context.Context, refStr string, o *options, store *cas.Store, cfgStats *counter) (*resolved, error) {
	var nopts []name.Option
	if o.insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(refStr, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%q is not a local OCI layout directory or docker-save tarball, nor an image reference: %w", refStr, err)
	}
	asked := ref
	if ref, err = mirrored(ref, o.mirror, nopts); err != nil {
		return nil, err
	}
	repo := ref.Context()
	// Failures name the registry asked; a mirror's say whose image it was
	// serving.
	registry := "registry " + repo.RegistryStr()
	if ref != asked {
		registry = fmt.Sprintf("registry mirror %s (for %s)", repo.RegistryStr(), asked)
	}
	base := o.transport
	if base == nil {
		base = remote.DefaultTransport
		if o.insecure {
			t := remote.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with WithInsecure
			base = t
		}
	}
	base, plain := newPlainHTTP(base, store, repo.Registry)
	base = transport.NewUserAgent(base, strings.TrimSpace("nanofs "+o.userAgent))
	auth, err := authn.Resolve(ctx, o.keychain, repo)
	if err != nil {
		return nil, fmt.Errorf("%s: looking up credentials: %w", repo, err)
	}
	// A reference by digest whose manifest is in the cache needs no
	// request at all: the registry is pinged (and a token fetched) only
	// once a blob turns out to be missing from the cache.
	var authed http.RoundTripper
	desc := cachedManifest(store, ref)
	later := false
	if desc == nil && o.tagLater {
		desc = recalledTag(store, ref)
		later = desc != nil
	}
	if desc != nil {
		authed = &lazyTransport{connect: func() (http.RoundTripper, error) {
			t, err := newTransport(ctx, repo, auth, base, o.policy, plain)
			if err != nil {
				return nil, classify(err, registry)
			}
			return t, nil
		}}
	} else if authed, err = newTransport(ctx, repo, auth, base, o.policy, plain); err != nil {
		return nil, classify(err, registry)
	}
	ropts := []remote.Option{remote.WithTransport(authed), remote.WithContext(ctx)}
	var check *tagCheck
	if later {
		check = startTagCheck(ctx, ref, desc.Digest, o.policy, authed.(*lazyTransport), store)
	} else if desc == nil {
		if desc, err = getManifest(ctx, ref, o.policy, ropts); err != nil {
			return nil, classify(err, ref.String())
		}
		keepManifest(store, desc)
		rememberTag(store, ref, desc.Digest)
	}
	what := ref.String()
	for depth := 0; desc.MediaType.IsIndex(); depth++ {
		if depth == 4 {
			return nil, fmt.Errorf("%s: indexes nested too deep", what)
		}
		im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return nil, fmt.Errorf("%s: index: %w", what, err)
		}
		child, err := choosePlatform(im, o, what)
		if err != nil {
			return nil, err
		}
		childRef := repo.Digest(child.Digest.String())
		if desc = cachedManifest(store, childRef); desc == nil {
			if lt, ok := authed.(*lazyTransport); ok {
				// Connected first: go-containerregistry would ping again
				// through a transport it does not know as connected.
				rt, err := lt.connected()
				if err != nil {
					return nil, err
				}
				ropts = []remote.Option{remote.WithTransport(rt), remote.WithContext(ctx)}
			}
			if desc, err = getManifest(ctx, childRef, o.policy, ropts); err != nil {
				return nil, classify(err, what)
			}
			keepManifest(store, desc)
		}
	}
	if desc.MediaType.IsSchema1() {
		return nil, fmt.Errorf("%s: Docker schema 1 manifests are not supported (re-push the image with a current client)", what)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", what, err)
	}
	src := newRegistryBlobs(repo, authed, o.policy, store)
	r := &resolved{name: repo.Name() + "@" + desc.Digest.String(), digest: desc.Digest, src: src, tag: check}
	// A failed open leaves the early reads to end with ctx or their bytes.
	early := readTOCsEarly(ctx, m, src, store, o)
	if r.rawConfig, err = fetchConfig(ctx, m.Config, src, store, o, cfgStats); err != nil {
		src.close()
		return nil, check.moved(ctx, fmt.Errorf("%s: config: %w", what, err))
	}
	err = r.addLayers(m, o)
	for _, l := range r.layers {
		if e := early[l.key]; e != nil {
			l.early, l.blob, l.stats = e, e.blob, e.blob.stats
		}
	}
	if err != nil {
		src.close()
		return nil, check.moved(ctx, fmt.Errorf("%s: %w", what, err))
	}
	return r, nil
}

// getManifest is remote.Get, retried with backoff when the registry
// answers 5xx or 429 or the connection fails (go-containerregistry does not
// retry through a transport it is handed ready-made).
func getManifest(ctx context.Context, ref name.Reference, p retryPolicy, opts []remote.Option) (*remote.Descriptor, error) {
	wait := p.backoff
	for attempt := 1; ; attempt++ {
		desc, err := remote.Get(ref, opts...)
		if err == nil || attempt >= p.attempts || ctx.Err() != nil || !transient(err) {
			return desc, err
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, err
		}
		wait = min(2*wait, maxBackoff)
	}
}

// newTransport is transport.NewWithContext, which pings the registry's
// /v2/ (and fetches a token), retried like every other request when the
// ping fails with a 5xx or 429 or the connection fails. A ping that fails
// in plain HTTP to a registry recorded as speaking it (plain) is tried
// once more at once, HTTPS first.
func newTransport(ctx context.Context, repo name.Repository, auth authn.Authenticator, base http.RoundTripper, p retryPolicy, plain *plainHTTP) (http.RoundTripper, error) {
	wait := p.backoff
	for attempt := 1; ; attempt++ {
		t, err := transport.NewWithContext(ctx, repo.Registry, auth, base, []string{repo.Scope(transport.PullScope)})
		if err != nil && ctx.Err() == nil && plain.forget() {
			attempt--
			continue
		}
		if err == nil || attempt >= p.attempts || ctx.Err() != nil || !transient(err) {
			return t, err
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, err
		}
		wait = min(2*wait, maxBackoff)
	}
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// transient tells errors worth another attempt.
func transient(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode >= 500 || terr.StatusCode == http.StatusTooManyRequests || terr.StatusCode == http.StatusRequestTimeout
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

// classify wraps a go-containerregistry error with ErrUnauthorized or
// ErrNotFound when that is what it means.
func classify(err error, what string) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		codes := map[transport.ErrorCode]bool{}
		for _, d := range terr.Errors {
			codes[d.Code] = true
		}
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden ||
			codes[transport.UnauthorizedErrorCode] || codes[transport.DeniedErrorCode]:
			return fmt.Errorf("%s: %w (check the credentials in your docker config or credential helper): %v", what, ErrUnauthorized, err)
		case terr.StatusCode == http.StatusNotFound || codes[transport.ManifestUnknownErrorCode] ||
			codes[transport.NameUnknownErrorCode] || codes[transport.BlobUnknownErrorCode]:
			return fmt.Errorf("%s: image %w: %v", what, ErrNotFound, err)
		}
	}
	if transient(err) {
		return fmt.Errorf("%s: %w: %w", what, ErrNetwork, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// choosePlatform picks the index entry for the wanted platform, or says
// which platforms there are.
func choosePlatform(im *v1.IndexManifest, o *options, what string) (v1.Descriptor, error) {
	want := o.platform
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.OS == "unknown" {
			continue // attestations and signatures, not images
		}
		if d.Platform.Satisfies(want) {
			return d, nil
		}
		have = append(have, d.Platform.String())
	}
	if len(have) == 0 && len(im.Manifests) == 1 && im.Manifests[0].Platform == nil {
		return im.Manifests[0], nil
	}
	if len(have) == 0 {
		return v1.Descriptor{}, fmt.Errorf("%s: %w %s: the index lists no platforms", what, ErrPlatform, want)
	}
	return v1.Descriptor{}, fmt.Errorf("%s: %w %s; it has %s", what, ErrPlatform, want, strings.Join(have, ", "))
}

// maxConfigSize bounds the image config a registry can make us read.
const maxConfigSize = 64 << 20

// fetchConfig returns the config blob, from the cache or the source, after
// checking its digest.
func fetchConfig(ctx context.Context, d v1.Descriptor, src blobSource, store *cas.Store, o *options, c *counter) ([]byte, error) {
	if d.Size < 0 || d.Size > maxConfigSize {
		return nil, fmt.Errorf("config of %d bytes", d.Size)
	}
	if d.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("config digest %s: only sha256 is supported", d.Digest)
	}
	if data, err := store.ReadVerified("blobs", d.Digest.String()); err == nil {
		return data, nil
	}
	b := &blob{digest: d.Digest, size: d.Size, src: src, stats: c, policy: o.policy}
	data := make([]byte, d.Size)
	if d.Size > 0 {
		if err := b.readAt(ctx, data, 0); err != nil {
			return nil, err
		}
	}
	if got := cas.SHA256(data); got != d.Digest.String() {
		return nil, fmt.Errorf("%w: config %s hashes to %s", ErrDigestMismatch, d.Digest, got)
	}
	_ = store.Write("blobs", d.Digest.String(), data) // only an optimisation
	return data, nil
}

// addLayers describes the manifest's layers.
func (r *resolved) addLayers(m *v1.Manifest, o *options) error {
	var cf v1.ConfigFile
	if err := json.Unmarshal(r.rawConfig, &cf); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("the config lists %d diff_ids for %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	if err := checkConfigPlatform(&cf, o); err != nil {
		return err
	}
	for i, d := range m.Layers {
		switch {
		case d.MediaType == types.DockerForeignLayer || len(d.URLs) > 0:
			return fmt.Errorf("layer %s is a foreign layer (its content is not in the registry): not supported", d.Digest)
		case d.Digest.Algorithm != "sha256":
			return fmt.Errorf("layer %s: only sha256 digests are supported", d.Digest)
		case d.Size < 0:
			return fmt.Errorf("layer %s: negative size", d.Digest)
		}
		c := &counter{}
		r.layers = append(r.layers, &layer{
			index: i, key: d.Digest, size: d.Size, mediaType: d.MediaType, annotations: d.Annotations,
			diffID: cf.RootFS.DiffIDs[i], stats: c, expansion: o.expansion,
			blob: &blob{digest: d.Digest, size: d.Size, src: r.src, stats: c, policy: o.policy},
		})
	}
	return nil
}

func checkConfigPlatform(cf *v1.ConfigFile, o *options) error {
	if !o.platformExplicit {
		return nil
	}
	have := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant, OSVersion: cf.OSVersion}
	if !have.Satisfies(o.platform) {
		return fmt.Errorf("%w %s: the image is for %s", ErrPlatform, o.platform, describePlatform(have))
	}
	return nil
}

// openLayout resolves an OCI image layout directory: the image its
// index.json lists, chosen by platform when it lists several.
func openLayout(dir string, o *options) (*resolved, error) {
	what := PrefixOCILayout + dir
	ii, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var desc v1.Descriptor
	for depth := 0; ; depth++ {
		if depth == 5 {
			return nil, fmt.Errorf("%s: indexes nested too deep", what)
		}
		if len(im.Manifests) == 1 {
			desc = im.Manifests[0]
		} else if desc, err = choosePlatform(im, o, what); err != nil {
			return nil, err
		}
		if !desc.MediaType.IsIndex() {
			break
		}
		raw, err := readLayoutBlob(dir, desc.Digest, 16<<20)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if im, err = v1.ParseIndexManifest(bytes.NewReader(raw)); err != nil {
			return nil, fmt.Errorf("%s: index %s: %w", what, desc.Digest, err)
		}
	}
	if !desc.MediaType.IsImage() {
		return nil, fmt.Errorf("%s: %s is a %s, not an image", what, desc.Digest, desc.MediaType)
	}
	raw, err := readLayoutBlob(dir, desc.Digest, 16<<20)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", what, err)
	}
	src := newLayoutBlobs(dir)
	r := &resolved{name: what + "@" + desc.Digest.String(), digest: desc.Digest, src: src}
	if r.rawConfig, err = readLayoutBlob(dir, m.Config.Digest, maxConfigSize); err != nil {
		src.close()
		return nil, fmt.Errorf("%s: config: %w", what, err)
	}
	if err := r.addLayers(m, o); err != nil {
		src.close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return r, nil
}

func layoutBlobPath(dir string, d v1.Hash) string {
	return filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
}

// readLayoutBlob reads a small blob of a layout and checks its digest.
func readLayoutBlob(dir string, d v1.Hash, limit int64) ([]byte, error) {
	if d.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: only sha256 is supported", d)
	}
	f, err := os.Open(layoutBlobPath(dir, d))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("blob %s: larger than %d bytes", d, limit)
	}
	if got := cas.SHA256(data); got != d.String() {
		return nil, fmt.Errorf("blob %s: %w: it hashes to %s", d, ErrDigestMismatch, got)
	}
	return data, nil
}

// openTarball resolves a `docker save` tarball (one image). Its layers
// are read as uncompressed streams and checked against the config's
// diff_ids.
func openTarball(path string, o *options) (*resolved, error) {
	what := PrefixDockerArchive + path
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return nil, fmt.Errorf("%s: not a docker-save tarball with one image: %w", what, err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", what, err)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(raw, &cf); err != nil {
		return nil, fmt.Errorf("%s: config: %w", what, err)
	}
	if err := checkConfigPlatform(&cf, o); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	cfgDigest, _ := v1.NewHash(cas.SHA256(raw))
	r := &resolved{name: what + " (config " + cfgDigest.String() + ")", digest: cfgDigest, rawConfig: raw}
	for i, l := range ls {
		diffID, err := l.DiffID()
		if err != nil {
			return nil, fmt.Errorf("%s: layer %d: %w", what, i, err)
		}
		if diffID.Algorithm != "sha256" {
			return nil, fmt.Errorf("%s: layer %s: only sha256 is supported", what, diffID)
		}
		r.layers = append(r.layers, &layer{
			index: i, key: diffID, size: -1, mediaType: types.OCIUncompressedLayer,
			diffID: diffID, uncompressed: l.Uncompressed, stats: &counter{}, expansion: o.expansion,
		})
	}
	return r, nil
}

// describePlatform names a config's platform, saying which fields it
// leaves out rather than printing blanks.
func describePlatform(p v1.Platform) string {
	var missing []string
	if p.OS == "" {
		missing = append(missing, "os")
	}
	if p.Architecture == "" {
		missing = append(missing, "architecture")
	}
	if len(missing) == 0 {
		return p.String()
	}
	return fmt.Sprintf("%q (its config names no %s)", p.String(), strings.Join(missing, " and no "))
}
