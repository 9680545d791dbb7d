package artifact

import (
	"bytes"
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Source is a source image's manifest, the subject of its artifacts.
type Source struct {
	Ref        string // REPO@DIGEST
	Descriptor v1.Descriptor
}

// ResolveSource reads which manifest ref names for platform, as lazy.Open
// would pick it from an index (OS and architecture, and the variant when
// given), without reading its config or layers: what a reused build costs
// beyond the artifact.
func ResolveSource(ctx context.Context, ref string, platform v1.Platform, opts ...Option) (*Source, error) {
	_, ropts, nopts := newOptions(ctx, opts)
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", ref, err)
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	for depth := 0; desc.MediaType.IsIndex(); depth++ {
		if depth == 4 {
			return nil, fmt.Errorf("%s: indexes nested too deep", ref)
		}
		im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return nil, fmt.Errorf("%s: index: %w", ref, err)
		}
		var child *v1.Descriptor
		for i, m := range im.Manifests {
			if p := m.Platform; p != nil && p.OS == platform.OS && p.Architecture == platform.Architecture &&
				(platform.Variant == "" || p.Variant == platform.Variant) {
				child = &im.Manifests[i]
				break
			}
		}
		if child == nil {
			return nil, fmt.Errorf("%s: no image for %s/%s in the index", ref, platform.OS, platform.Architecture)
		}
		if desc, err = remote.Get(r.Context().Digest(child.Digest.String()), ropts...); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
	}
	return &Source{Ref: r.Context().Digest(desc.Digest.String()).String(), Descriptor: desc.Descriptor}, nil
}
