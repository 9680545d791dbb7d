package bench

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	kgzip "github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"
)

// EncodedLayer is a compressed layer blob in a file, with everything its
// manifest entry and the image config need, so that nothing is hashed
// again when it is pushed.
type EncodedLayer struct {
	File     string
	Desc     v1.Descriptor // digest, size, media type; eStargz: TOC annotations
	DiffID   v1.Hash
	TarBytes int64 // uncompressed
}

// EncodeLayers writes the tar that writeTar produces once, into dir, then
// compresses it two ways at once: plain gzip (klauspost, BestSpeed) and
// eStargz (estargz.Build, BestSpeed, 4 MiB chunks). The content is
// incompressible ballast, so the level changes the time taken, not the
// blob size. The tar is removed when done.
func EncodeLayers(dir, name string, writeTar func(io.Writer) error) (gz, esgz *EncodedLayer, err error) {
	tarFile, err := os.CreateTemp(dir, name+".tar-*")
	if err != nil {
		return nil, nil, err
	}
	defer os.Remove(tarFile.Name())
	defer tarFile.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tarFile, h)}
	if err := writeTar(cw); err != nil {
		return nil, nil, fmt.Errorf("%s: writing the tar: %w", name, err)
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	tarBytes := cw.n

	var g errgroup.Group
	g.Go(func() error {
		var err error
		gz, err = writeBlob(filepath.Join(dir, name+".gzip"), func(w io.Writer) error {
			zw, err := kgzip.NewWriterLevel(w, kgzip.BestSpeed)
			if err != nil {
				return err
			}
			if _, err := io.Copy(zw, io.NewSectionReader(tarFile, 0, tarBytes)); err != nil {
				return err
			}
			return zw.Close()
		})
		if err == nil {
			gz.DiffID, gz.TarBytes = diffID, tarBytes
		}
		return err
	})
	g.Go(func() error {
		var annotations map[string]string
		var esgzDiffID v1.Hash
		var err error
		esgz, err = writeBlob(filepath.Join(dir, name+".estargz"), func(w io.Writer) error {
			blob, err := estargz.Build(io.NewSectionReader(tarFile, 0, tarBytes),
				estargz.WithCompressionLevel(gzip.BestSpeed), estargz.WithParallelism(2))
			if err != nil {
				return err
			}
			defer blob.Close()
			if _, err := io.Copy(w, blob); err != nil {
				return err
			}
			usize, err := blob.UncompressedSize()
			if err != nil {
				return err
			}
			if esgzDiffID, err = v1.NewHash(blob.DiffID().String()); err != nil {
				return err
			}
			annotations = map[string]string{
				estargz.TOCJSONDigestAnnotation:         blob.TOCDigest().String(),
				estargz.StoreUncompressedSizeAnnotation: strconv.FormatInt(usize, 10),
			}
			return nil
		})
		if err == nil {
			// estargz rewrites the tar (it appends its TOC and a landmark
			// file), so the layer has its own diffID.
			esgz.Desc.Annotations, esgz.DiffID, esgz.TarBytes = annotations, esgzDiffID, tarBytes
		}
		return err
	})
	if err := g.Wait(); err != nil {
		for _, l := range []*EncodedLayer{gz, esgz} {
			if l != nil {
				os.Remove(l.File)
			}
		}
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return gz, esgz, nil
}

// writeBlob writes what encode produces to file, measuring it as it goes.
func writeBlob(file string, encode func(io.Writer) error) (*EncodedLayer, error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	err = encode(cw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return nil, err
	}
	return &EncodedLayer{File: file, Desc: v1.Descriptor{
		MediaType: types.OCILayer,
		Size:      cw.n,
		Digest:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))},
	}}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Layer returns the blob as a v1.Layer whose descriptor carries the
// annotations. Once File is removed (after the blob is in the registry),
// the layer still describes itself, which is all that pushing an image
// whose blobs the registry already has needs.
func (e *EncodedLayer) Layer() v1.Layer { return fileLayer{e} }

type fileLayer struct{ e *EncodedLayer }

var (
	_ v1.Layer            = fileLayer{}
	_ partial.Describable = fileLayer{}
)

func (l fileLayer) Digest() (v1.Hash, error)            { return l.e.Desc.Digest, nil }
func (l fileLayer) DiffID() (v1.Hash, error)            { return l.e.DiffID, nil }
func (l fileLayer) Size() (int64, error)                { return l.e.Desc.Size, nil }
func (l fileLayer) MediaType() (types.MediaType, error) { return l.e.Desc.MediaType, nil }
func (l fileLayer) Descriptor() (*v1.Descriptor, error) { d := l.e.Desc; return &d, nil }

func (l fileLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.e.File)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("layer %s: the blob file is gone (already pushed): %w", l.e.Desc.Digest, err)
	}
	return f, err
}

func (l fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := kgzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}
