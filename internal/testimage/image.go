package testimage

import (
	"fmt"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultPlatform is the platform images are built for unless told.
var DefaultPlatform = v1.Platform{OS: "linux", Architecture: "amd64"}

// NewImage stacks layers (bottom first) into an OCI image for
// DefaultPlatform with the given runtime config.
func NewImage(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := buildImage(DefaultPlatform, cfg, layers, nil)
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	return img
}

// buildImage assembles an OCI manifest and config; every time in it is
// Epoch so the same layers always give the same image digest.
func buildImage(platform v1.Platform, cfg v1.Config, layers []v1.Layer, createdBy []string) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		h := v1.History{Created: v1.Time{Time: Epoch}}
		if i < len(createdBy) {
			h.CreatedBy = createdBy[i]
		}
		adds[i] = mutate.Addendum{Layer: l, History: h}
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("appending layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: Epoch}
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = platform.OS, platform.Architecture, platform.Variant, platform.OSVersion
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting config: %w", err)
	}
	return img, nil
}

// NewIndex puts images into an OCI image index, each described with the
// platform of its config.
func NewIndex(t testing.TB, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatalf("testimage: %v", err)
		}
		p := cf.Platform()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: p},
		})
	}
	return idx
}

// LayerInput is one layer of a Spec: a host tree or an exact entry list.
type LayerInput struct {
	Dir        string  // host tree: an image root or an overlayfs upper directory
	Entries    []Entry // used when Dir is empty
	KeepMTimes bool    // Dir only: keep the tree's modification times
	CreatedBy  string  // the history line of the layer
}

// Spec is a named image described by its inputs, from which both the image
// (in any encoding) and the tree it must show are derived.
type Spec struct {
	Name     string
	Platform v1.Platform // zero: DefaultPlatform
	Config   v1.Config
	Layers   []LayerInput // bottom first
}

func (s *Spec) source(i int) (layerSource, []layerItem, error) {
	in := s.Layers[i]
	if in.Dir != "" {
		var opts []LayerOption
		if in.KeepMTimes {
			opts = append(opts, KeepMTimes())
		}
		return hostTreeSource(in.Dir, opts...)
	}
	tarball, err := TarEntries(in.Entries)
	if err != nil {
		return layerSource{}, nil, err
	}
	return bytesSource(tarball), nil, nil
}

// Layer returns layer i (0 = bottom) of the image in encoding enc.
func (s *Spec) Layer(t testing.TB, i int, enc Encoding) v1.Layer {
	t.Helper()
	src, _, err := s.source(i)
	if err != nil {
		t.Fatalf("testimage: %s layer %d: %v", s.Name, i, err)
	}
	return mustLayer(t, src, enc)
}

// Image returns the image with every layer in encoding enc.
func (s *Spec) Image(t testing.TB, enc Encoding) v1.Image {
	t.Helper()
	layers := make([]v1.Layer, len(s.Layers))
	createdBy := make([]string, len(s.Layers))
	for i, in := range s.Layers {
		layers[i] = s.Layer(t, i, enc)
		createdBy[i] = in.CreatedBy
	}
	platform := s.Platform
	if platform.OS == "" {
		platform = DefaultPlatform
	}
	img, err := buildImage(platform, s.Config, layers, createdBy)
	if err != nil {
		t.Fatalf("testimage: %s: %v", s.Name, err)
	}
	return img
}

// Expected returns the tree the image must show when flattened, computed
// from the inputs with overlay semantics, independently of the tar writers
// and of go-containerregistry. eStargz's own files (EStargzMetaFiles) are
// not part of it.
func (s *Spec) Expected(t testing.TB) Tree {
	t.Helper()
	layers := make([][]layerItem, len(s.Layers))
	for i, in := range s.Layers {
		var err error
		if in.Dir != "" {
			_, layers[i], err = s.source(i)
		} else {
			layers[i], err = entryItems(in.Entries)
		}
		if err != nil {
			t.Fatalf("testimage: %s layer %d: %v", s.Name, i, err)
		}
	}
	return stackLayers(layers)
}
