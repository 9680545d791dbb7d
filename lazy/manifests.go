package lazy

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nanofs/nanofs/lazy/internal/cas"
)

// manifestKind is the cache kind of manifests and indexes, by digest.
const manifestKind = "manifests"

// maxManifestSize bounds the manifests kept in the cache.
const maxManifestSize = 4 << 20

// keepManifest puts a manifest (or index) fetched from a registry in the
// cache under its digest, so that a later reference by that digest is
// answered without asking the registry. The cache is an optimisation:
// failing to fill it is not an error.
func keepManifest(store *cas.Store, desc *remote.Descriptor) {
	if desc == nil || len(desc.Manifest) > maxManifestSize || cas.SHA256(desc.Manifest) != desc.Digest.String() {
		return
	}
	_ = store.Write(manifestKind, desc.Digest.String(), desc.Manifest)
}

// cachedManifest returns the cached manifest a reference by digest names
// (checked against the digest), or nil: for a tag, which only the
// registry can resolve, always nil.
func cachedManifest(store *cas.Store, ref name.Reference) *remote.Descriptor {
	d, ok := ref.(name.Digest)
	if !ok {
		return nil
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil || h.Algorithm != "sha256" {
		return nil
	}
	raw, err := store.ReadVerified(manifestKind, h.String())
	if err != nil {
		return nil
	}
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Layers    json.RawMessage `json:"layers"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return nil
	}
	mt := probe.MediaType
	if mt == "" {
		// An OCI manifest or index may leave its media type out.
		switch {
		case probe.Manifests != nil:
			mt = types.OCIImageIndex
		case probe.Layers != nil:
			mt = types.OCIManifestSchema1
		default:
			return nil
		}
	}
	return &remote.Descriptor{Descriptor: v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: h}, Manifest: raw}
}

// lazyTransport connects to the registry (its /v2/ ping and token) on
// the first request sent through it, trying again on the next request if
// that failed.
type lazyTransport struct {
	connect func() (http.RoundTripper, error)
	mu      sync.Mutex
	rt      http.RoundTripper
}

func (l *lazyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt, err := l.connected()
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(req)
}

// connected returns the transport connected to the registry, connecting
// first if needed. Handed to go-containerregistry, it is taken as ready
// (no second ping), which a lazyTransport is not.
func (l *lazyTransport) connected() (http.RoundTripper, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rt == nil {
		rt, err := l.connect()
		if err != nil {
			return nil, err
		}
		l.rt = rt
	}
	return l.rt, nil
}
