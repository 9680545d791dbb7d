package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nanofs/nanofs/tfs"
)

// The media types of what nanofs pushes.
const (
	// ArtifactType marks a manifest as a built unikernel.
	ArtifactType = "application/vnd.nanofs.unikernel.v1"
	// DiskMediaType is a bootable Nanos disk image, stored as it is (raw).
	DiskMediaType types.MediaType = "application/vnd.nanofs.disk.v1.raw"
	// PackageMediaType is an ops package archive (.tar.gz).
	PackageMediaType types.MediaType = "application/vnd.nanofs.ops-package.v1.tar+gzip"
	// emptyMediaType is the OCI empty descriptor's config ("{}").
	emptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"
)

// The annotations a pushed artifact carries.
const (
	AnnotationInputs       = "dev.nanofs.build.inputs"   // the build-inputs digest (what Find matches)
	AnnotationSource       = "dev.nanofs.source.digest"  // the source image's manifest digest
	AnnotationSourceName   = "dev.nanofs.source.name"    // the source image as given
	AnnotationProgram      = "dev.nanofs.program"        // the program the unikernel runs
	AnnotationArguments    = "dev.nanofs.arguments"      // its arguments, a JSON array
	AnnotationVersion      = "dev.nanofs.version"        // the nanofs that built it
	AnnotationNanosVersion = "dev.nanofs.nanos.version"  // the Nanos release ("" when unknown)
	AnnotationFormat       = "dev.nanofs.format.version" // the disk format version (FormatVersion)
	AnnotationPackage      = "dev.nanofs.package.name"   // an ops package's name
	annotationTitle        = "org.opencontainers.image.title"
)

// ErrNotArtifact: a manifest is not a nanofs artifact.
var ErrNotArtifact = errors.New("is not a nanofs unikernel artifact")

// ErrNoDisk: an artifact carries no disk (an ops package only).
var ErrNoDisk = errors.New("carries no disk image")

// Option configures how the registry is reached.
type Option func(*options)

type options struct {
	insecure  bool
	keychain  authn.Keychain
	transport http.RoundTripper
}

// WithInsecure allows plain HTTP and unverified TLS.
func WithInsecure() Option { return func(o *options) { o.insecure = true } }

// WithKeychain takes credentials from k (default: authn.DefaultKeychain).
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithTransport sends requests through t.
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

func newOptions(ctx context.Context, opts []Option) (*options, []remote.Option, []name.Option) {
	o := &options{keychain: authn.DefaultKeychain}
	for _, opt := range opts {
		opt(o)
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain), remote.WithUserAgent("nanofs")}
	if o.transport != nil {
		ropts = append(ropts, remote.WithTransport(o.transport))
	}
	var nopts []name.Option
	if o.insecure {
		nopts = append(nopts, name.Insecure)
	}
	return o, ropts, nopts
}

// File is one file an artifact carries.
type File struct {
	Path      string          // the file on the host
	MediaType types.MediaType // DiskMediaType or PackageMediaType
}

// Push describes an artifact to push.
type Push struct {
	Target      string        // where to push it: a reference (REPO[:TAG])
	Subject     v1.Descriptor // the source image's manifest
	Files       []File
	Annotations map[string]string
}

// Pushed is an artifact in a registry.
type Pushed struct {
	Ref    string // REPO@DIGEST
	Tag    string // the reference pushed to
	Digest v1.Hash
	Bytes  int64 // of the files
}

// Write pushes p as an OCI artifact manifest whose subject is the source
// image. Registries without the Referrers API get the referrers tag
// (sha256-HEX) updated, as the distribution spec says
// (go-containerregistry's remote.Write does this).
func Write(ctx context.Context, p Push, opts ...Option) (*Pushed, error) {
	_, ropts, nopts := newOptions(ctx, opts)
	ref, err := name.ParseReference(p.Target, nopts...)
	if err != nil {
		return nil, fmt.Errorf("push target %q: %w", p.Target, err)
	}
	img, size, err := newImage(p)
	if err != nil {
		return nil, err
	}
	if err := remote.Write(ref, img, ropts...); err != nil {
		return nil, fmt.Errorf("pushing to %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &Pushed{Ref: ref.Context().Digest(d.String()).String(), Tag: ref.String(), Digest: d, Bytes: size}, nil
}

// Found is an artifact a Find matched.
type Found struct {
	Ref         string // REPO@DIGEST
	Descriptor  v1.Descriptor
	Annotations map[string]string
}

// Find looks among the referrers of subject (REPO@DIGEST), in the
// subject's repository and each of also, for an artifact built from the
// same inputs. It answers nil, nil when there is none. A registry without
// the Referrers API is read through the referrers tag.
func Find(ctx context.Context, subject string, inputs string, also []string, opts ...Option) (*Found, error) {
	_, ropts, nopts := newOptions(ctx, opts)
	d, err := name.NewDigest(subject, nopts...)
	if err != nil {
		return nil, fmt.Errorf("subject %q: %w", subject, err)
	}
	repos := []name.Repository{d.Context()}
	for _, a := range also {
		r, err := name.ParseReference(a, nopts...)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", a, err)
		}
		if !slices.ContainsFunc(repos, func(x name.Repository) bool { return x.String() == r.Context().String() }) {
			repos = append(repos, r.Context())
		}
	}
	for _, repo := range repos {
		idx, err := remote.Referrers(repo.Digest(d.DigestStr()), append(ropts, remote.WithFilter("artifactType", ArtifactType))...)
		if err != nil {
			return nil, fmt.Errorf("referrers of %s in %s: %w", d.DigestStr(), repo, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("referrers of %s in %s: %w", d.DigestStr(), repo, err)
		}
		// The newest push is last in the tag schema; any match is the same
		// disk, so the first is as good as any.
		for _, m := range im.Manifests {
			if m.ArtifactType == ArtifactType && m.Annotations[AnnotationInputs] == inputs {
				return &Found{Ref: repo.Digest(m.Digest.String()).String(), Descriptor: m, Annotations: m.Annotations}, nil
			}
		}
	}
	return nil, nil
}

// Manifest is an artifact's manifest as read from a registry.
type Manifest struct {
	Ref      string // REPO@DIGEST
	Manifest *v1.Manifest
}

// Get reads the manifest ref names and checks that it is a nanofs
// artifact (ErrNotArtifact otherwise).
func Get(ctx context.Context, ref string, opts ...Option) (*Manifest, error) {
	_, ropts, nopts := newOptions(ctx, opts)
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", ref, err)
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	if desc.MediaType.IsIndex() {
		return nil, fmt.Errorf("%s (an image index) %w", ref, ErrNotArtifact)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", ref, err)
	}
	if m.ArtifactType != ArtifactType {
		return nil, fmt.Errorf("%s %w", ref, ErrNotArtifact)
	}
	return &Manifest{Ref: r.Context().Digest(desc.Digest.String()).String(), Manifest: m}, nil
}

// Pulled is a disk fetched from an artifact.
type Pulled struct {
	Ref         string            `json:"ref"` // REPO@DIGEST of the artifact
	Output      string            `json:"output"`
	Bytes       int64             `json:"bytes"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Pull writes the disk of the artifact ref names to out (through a
// temporary file renamed when complete and verified against its digest).
func Pull(ctx context.Context, ref, out string, opts ...Option) (*Pulled, error) {
	m, err := Get(ctx, ref, opts...)
	if err != nil {
		return nil, err
	}
	var disk *v1.Descriptor
	for i, l := range m.Manifest.Layers {
		if l.MediaType == DiskMediaType {
			disk = &m.Manifest.Layers[i]
			break
		}
	}
	if disk == nil {
		return nil, fmt.Errorf("%s %w", ref, ErrNoDisk)
	}
	_, ropts, nopts := newOptions(ctx, opts)
	d, err := name.NewDigest(m.Ref, nopts...)
	if err != nil {
		return nil, err
	}
	l, err := remote.Layer(d.Context().Digest(disk.Digest.String()), ropts...)
	if err != nil {
		return nil, fmt.Errorf("%s: disk %s: %w", ref, disk.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("%s: disk %s: %w", ref, disk.Digest, err)
	}
	defer rc.Close()
	o, err := tfs.CreateOutput(out, "disk")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(o, h), io.LimitReader(rc, disk.Size+1))
	if err != nil {
		o.Abort()
		return nil, fmt.Errorf("%s: fetching disk %s: %w", ref, disk.Digest, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); n != disk.Size || got != disk.Digest.String() {
		o.Abort()
		return nil, fmt.Errorf("%s: disk %s: got %d bytes with digest %s, want %d bytes", ref, disk.Digest, n, got, disk.Size)
	}
	if err := o.Commit(); err != nil {
		return nil, err
	}
	return &Pulled{Ref: m.Ref, Output: out, Bytes: n, Annotations: m.Manifest.Annotations}, nil
}

// newImage is p as a go-containerregistry image: the OCI empty config and
// one layer per file.
func newImage(p Push) (v1.Image, int64, error) {
	a := &image{config: []byte("{}"), layers: map[v1.Hash]*fileLayer{}}
	ch, cs, err := v1.SHA256(bytes.NewReader(a.config))
	if err != nil {
		return nil, 0, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  ArtifactType,
		Config:        v1.Descriptor{MediaType: emptyMediaType, Digest: ch, Size: cs},
		Annotations:   p.Annotations,
	}
	if p.Subject.Digest != (v1.Hash{}) {
		s := v1.Descriptor{MediaType: p.Subject.MediaType, Digest: p.Subject.Digest, Size: p.Subject.Size}
		m.Subject = &s
	}
	var total int64
	for _, f := range p.Files {
		l, err := newFileLayer(f)
		if err != nil {
			return nil, 0, err
		}
		a.layers[l.digest] = l
		total += l.size
		m.Layers = append(m.Layers, v1.Descriptor{
			MediaType: f.MediaType, Digest: l.digest, Size: l.size,
			// Not the file's own name: the same disk pushed from
			// anywhere gives the same manifest.
			Annotations: map[string]string{annotationTitle: title[f.MediaType]},
		})
	}
	if len(m.Layers) == 0 {
		return nil, 0, errors.New("an artifact needs at least one file")
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, 0, err
	}
	a.manifest = raw
	img, err := partial.CompressedToImage(a)
	return img, total, err
}

var title = map[types.MediaType]string{DiskMediaType: "disk.img", PackageMediaType: "package.tar.gz"}

// image is an artifact as partial.CompressedImageCore.
type image struct {
	manifest, config []byte
	layers           map[v1.Hash]*fileLayer
}

func (a *image) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *image) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *image) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}

// fileLayer is a host file pushed as a blob, byte for byte.
type fileLayer struct {
	path      string
	digest    v1.Hash
	size      int64
	mediaType types.MediaType
}

func newFileLayer(f File) (*fileLayer, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, fmt.Errorf("artifact file: %w", err)
	}
	defer fh.Close()
	h, n, err := v1.SHA256(fh)
	if err != nil {
		return nil, fmt.Errorf("artifact file %s: %w", f.Path, err)
	}
	return &fileLayer{path: f.Path, digest: h, size: n, mediaType: f.MediaType}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
