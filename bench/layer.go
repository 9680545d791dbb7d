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
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/nanofs/nanofs/internal/testimage"
)

// EncodedLayer is a compressed layer blob in a file, with everything its
// manifest entry and the image config need, so that nothing is hashed
// again when it is pushed.
type EncodedLayer struct {
	File     string
	Desc     v1.Descriptor // digest, size, media type; eStargz: TOC annotations
	DiffID   v1.Hash
	TarBytes int64 // uncompressed
	// EncodeSeconds is how long compressing took (the encodings run at
	// once, sharing the CPUs).
	EncodeSeconds float64
}

// EncodeLayers writes the tar that writeTar produces once, into dir, then
// compresses it three ways at once: plain gzip (klauspost, BestSpeed),
// eStargz (estargz.Build, BestSpeed, 4 MiB chunks) and zstd:chunked
// (testimage.EncodeZstdChunked, SpeedFastest, 4 MiB chunks), keyed by the
// report's encoding names. The content is incompressible ballast, so the
// level changes the time taken, not the blob size. The tar is removed
// when done.
func EncodeLayers(dir, name string, writeTar func(io.Writer) error) (map[string]*EncodedLayer, error) {
	tarFile, err := os.CreateTemp(dir, name+".tar-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tarFile.Name())
	defer tarFile.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tarFile, h)}
	if err := writeTar(cw); err != nil {
		return nil, fmt.Errorf("%s: writing the tar: %w", name, err)
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	tarBytes := cw.n

	var mu sync.Mutex
	out := map[string]*EncodedLayer{}
	var g errgroup.Group
	encode := func(enc string, mediaType types.MediaType, write func(w io.Writer) (map[string]string, v1.Hash, error)) {
		g.Go(func() error {
			var annotations map[string]string
			var layerDiffID v1.Hash
			t0 := time.Now()
			l, err := writeBlob(filepath.Join(dir, name+"."+slug(enc)), mediaType, func(w io.Writer) error {
				var err error
				annotations, layerDiffID, err = write(w)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", enc, err)
			}
			l.Desc.Annotations, l.DiffID, l.TarBytes = annotations, layerDiffID, tarBytes
			l.EncodeSeconds = time.Since(t0).Seconds()
			mu.Lock()
			out[enc] = l
			mu.Unlock()
			return nil
		})
	}
	encode(Gzip, types.OCILayer, func(w io.Writer) (map[string]string, v1.Hash, error) {
		zw, err := kgzip.NewWriterLevel(w, kgzip.BestSpeed)
		if err != nil {
			return nil, v1.Hash{}, err
		}
		if _, err := io.Copy(zw, io.NewSectionReader(tarFile, 0, tarBytes)); err != nil {
			return nil, v1.Hash{}, err
		}
		return nil, diffID, zw.Close()
	})
	encode(EStargz, types.OCILayer, func(w io.Writer) (map[string]string, v1.Hash, error) {
		// estargz rewrites the tar, so the layer has its own diffID.
		return testimage.EncodeEStargz(w, io.NewSectionReader(tarFile, 0, tarBytes), gzip.BestSpeed, 2)
	})
	encode(ZstdChunked, types.OCILayerZStd, func(w io.Writer) (map[string]string, v1.Hash, error) {
		// The frames decompress to the tar as it is: the same diffID.
		ann, err := testimage.EncodeZstdChunked(w, tarFile, tarBytes,
			testimage.ZstdChunkedOptions{ChunkSize: 4 << 20, Level: zstd.SpeedFastest})
		return ann, diffID, err
	})
	if err := g.Wait(); err != nil {
		for _, l := range out {
			os.Remove(l.File)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// writeBlob writes what encode produces to file, measuring it as it goes.
func writeBlob(file string, mediaType types.MediaType, encode func(io.Writer) error) (*EncodedLayer, error) {
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
		MediaType: mediaType,
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
	if l.e.Desc.MediaType == types.OCILayerZStd {
		zr, err := zstd.NewReader(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	}
	zr, err := kgzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{zr, f.Close}, nil
}

// readCloser is a decompressor with what closing it must release.
type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }
