package lazy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"

	"github.com/nanofs/nanofs/lazy/internal/cas"
	"github.com/nanofs/nanofs/lazy/internal/overlay"
)

// zstd:chunked layers (podman and buildah's partial-pull format) are zstd
// streams in which every file's content (or every chunk of a large file)
// is a zstd frame of its own, with a table of contents (the "manifest") in
// a skippable frame at the end. The layer's annotations say where the TOC
// is (OFFSET:LENGTH:UNCOMPRESSED:TYPE, OFFSET the first byte of the
// compressed TOC) and give the digest of its compressed bytes. The TOC
// is the eStargz TOC's JSON with an end offset per entry; a file is then
// read like an eStargz one, frame by frame, each chunk checked against its
// digest in the TOC.

// The annotations, current and older spellings.
const (
	zstdChunkedPosition       = "io.github.containers.zstd-chunked.manifest-position"
	zstdChunkedChecksum       = "io.github.containers.zstd-chunked.manifest-checksum"
	zstdChunkedLegacyPosition = "io.containers.zstd-chunked.manifest-position"
	zstdChunkedLegacyChecksum = "io.containers.zstd-chunked.manifest-checksum"
	// zstdChunkedManifest is the TYPE of a TOC in the position annotation.
	zstdChunkedManifest = 1
	// skippableHeader is the size of a skippable frame's magic and length.
	skippableHeader = 8
)

// zstdChunkedAnnotations returns the layer's TOC position and checksum
// annotations, current keys first.
func zstdChunkedAnnotations(l *layer) (position, checksum string) {
	if p := l.annotations[zstdChunkedPosition]; p != "" {
		return p, l.annotations[zstdChunkedChecksum]
	}
	return l.annotations[zstdChunkedLegacyPosition], l.annotations[zstdChunkedLegacyChecksum]
}

// isZstdChunked tells whether a layer can be read lazily as zstd:chunked.
func isZstdChunked(l *layer) bool {
	if l.blob == nil || !strings.Contains(string(l.mediaType), "zstd") {
		return false
	}
	p, c := zstdChunkedAnnotations(l)
	return p != "" && c != ""
}

// openZstdChunked reads (or finds in the cache) the layer's TOC and
// returns its entries.
func openZstdChunked(ctx context.Context, l *layer, store *cas.Store, jobs int, sh *stargzShared) (*stargzLayer, []overlay.Entry, error) {
	key := l.key.String()
	pos, sum := zstdChunkedAnnotations(l)
	want, err := v1.NewHash(sum)
	if err != nil {
		return nil, nil, fmt.Errorf("layer %s: zstd:chunked manifest checksum annotation: %w", key, err)
	}
	off, length, usize, err := parseManifestPosition(pos)
	if err != nil || off < skippableHeader || off+length > l.size || usize > maxTOCSize {
		// Not a TOC nanofs can use: the layer is read whole, as zstd.
		return nil, nil, fmt.Errorf("layer %s: %w: zstd:chunked manifest position %q in a %d-byte blob (%v)", key, errNotStargz, pos, l.size, err)
	}
	s := &stargzLayer{l: l, store: store, jobs: jobs, sh: sh, hot: sh.hot, zstd: true,
		inflight: map[int64]*memberCall{}, verified: map[string]bool{}}
	if entries, err := s.cachedEntries(want); err == nil {
		return s, entries, nil
	}
	var tocJSON []byte
	for attempt := 0; ; attempt++ {
		tocJSON, err = s.fetchZstdTOC(ctx, want, off, length, usize)
		if err == nil || !errors.Is(err, ErrDigestMismatch) || attempt == 1 {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	// The last frame before the TOC ends where the TOC's skippable frame
	// starts.
	s.tocOffset = off - skippableHeader
	s.tocBytes = l.size - s.tocOffset
	entries, err := zstdChunkedEntries(tocJSON, s.tocOffset)
	if err != nil {
		var ee *overlay.EntryError
		if errors.As(err, &ee) {
			ee.Layer = key
			return nil, nil, ee
		}
		return nil, nil, fmt.Errorf("layer %s: zstd:chunked manifest: %w", key, err)
	}
	if rec, err := encodeBinIndex(&tocEntries{TOCDigest: want.String(), TOCOffset: s.tocOffset, BlobSize: l.size, Entries: entries}); err == nil {
		_ = s.store.WriteMeta(tocKind, key, binIndexSuffix, rec) // only an optimisation
	}
	return s, entries, nil
}

// parseManifestPosition parses OFFSET:LENGTH:UNCOMPRESSED:TYPE.
func parseManifestPosition(p string) (off, length, usize int64, err error) {
	parts := strings.Split(p, ":")
	if len(parts) != 4 {
		return 0, 0, 0, errors.New("want OFFSET:LENGTH:UNCOMPRESSED:TYPE")
	}
	var v [4]int64
	for i, s := range parts {
		if v[i], err = strconv.ParseInt(s, 10, 64); err != nil || v[i] < 0 {
			return 0, 0, 0, fmt.Errorf("field %d is not a size", i+1)
		}
	}
	if v[3] != zstdChunkedManifest {
		return 0, 0, 0, fmt.Errorf("manifest type %d", v[3])
	}
	if v[1] == 0 {
		return 0, 0, 0, errors.New("empty manifest")
	}
	return v[0], v[1], v[2], nil
}

// fetchZstdTOC fetches the compressed TOC, checks its digest and
// decompresses it.
func (s *stargzLayer) fetchZstdTOC(ctx context.Context, want v1.Hash, off, length, usize int64) ([]byte, error) {
	key := s.l.key.String()
	compressed := s.l.early.take(ctx, off, length)
	if compressed == nil {
		compressed = make([]byte, length)
		if err := s.l.blob.readAt(ctx, compressed, off); err != nil {
			return nil, fmt.Errorf("layer %s: reading the zstd:chunked manifest: %w", key, err)
		}
	}
	s.l.early = nil // a second attempt (damaged in transit) asks again
	if got := cas.SHA256(compressed); got != want.String() {
		return nil, fmt.Errorf("layer %s: %w: its zstd:chunked manifest hashes to %s, the annotation says %s",
			key, ErrDigestMismatch, got, want)
	}
	d, err := getZstdDecoder(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("layer %s: zstd:chunked manifest: %w", key, err)
	}
	defer putZstdDecoder(d)
	tocJSON, err := io.ReadAll(io.LimitReader(d, maxTOCSize+1))
	if err != nil {
		return nil, fmt.Errorf("layer %s: zstd:chunked manifest: %w", key, err)
	}
	if len(tocJSON) > maxTOCSize || (usize > 0 && int64(len(tocJSON)) != usize) {
		return nil, fmt.Errorf("layer %s: zstd:chunked manifest of %d bytes, the annotation says %d", key, len(tocJSON), usize)
	}
	return tocJSON, nil
}

// zstdChunkedEntries converts a zstd:chunked TOC into entries: the
// eStargz rules (overlay.FromTOC), then each chunk's frame cut at its end
// offset, so that the headers framed between two files' contents are not
// fetched.
func zstdChunkedEntries(tocJSON []byte, tocOffset int64) ([]overlay.Entry, error) {
	var toc estargz.JTOC
	if err := decodeTOC(tocJSON, &toc); err != nil {
		return nil, err
	}
	var ends struct {
		Entries []struct {
			Offset    int64 `json:"offset"`
			EndOffset int64 `json:"endOffset"`
		} `json:"entries"`
	}
	if err := decodeTOC(tocJSON, &ends); err != nil {
		return nil, err
	}
	entries, err := overlay.FromTOC(&toc, tocOffset)
	if err != nil {
		return nil, err
	}
	endOf := map[int64]int64{}
	for _, e := range ends.Entries {
		if e.Offset > 0 && e.EndOffset > e.Offset {
			endOf[e.Offset] = e.EndOffset
		}
	}
	for i := range entries {
		for j := range entries[i].Chunks {
			c := &entries[i].Chunks[j]
			if end, ok := endOf[c.Offset]; ok && end <= c.Next {
				c.Next = end
			}
		}
	}
	return entries, nil
}

// zstd decoders are reused: each holds buffers worth keeping. Their
// window is bounded, so that a hostile frame cannot make one allocate
// more than a chunk may hold.
var zstdDecoders sync.Pool

func getZstdDecoder(r io.Reader) (*zstd.Decoder, error) {
	if d, ok := zstdDecoders.Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err != nil {
			d.Close()
			return nil, err
		}
		return d, nil
	}
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(overlay.MaxChunkSize),
		zstd.WithDecoderLowmem(false))
}

func putZstdDecoder(d *zstd.Decoder) {
	_ = d.Reset(nil)
	zstdDecoders.Put(d)
}
