package testimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// zstd:chunked is podman and buildah's partial-pull format: a zstd layer
// in which every file's content starts a zstd frame of its own (large
// files are cut into several chunks, each a frame), so that the stream
// still decompresses to the layer's tar, and a table of contents (the
// "manifest", zstd-compressed in a skippable frame at the end) says where
// each frame is and what its bytes hash to. The layer's annotations locate
// the TOC ("OFFSET:LENGTH:UNCOMPRESSED:TYPE") and give its digest.
const (
	ZstdChunkedPositionAnnotation       = "io.github.containers.zstd-chunked.manifest-position"
	ZstdChunkedChecksumAnnotation       = "io.github.containers.zstd-chunked.manifest-checksum"
	ZstdChunkedLegacyPositionAnnotation = "io.containers.zstd-chunked.manifest-position"
	ZstdChunkedLegacyChecksumAnnotation = "io.containers.zstd-chunked.manifest-checksum"
)

// ZstdChunkedOptions shape the layers ZstdChunkedImage writes.
type ZstdChunkedOptions struct {
	ChunkSize  int64 // the largest chunk of a file (default 1 MiB)
	LegacyKeys bool  // annotate with the older io.containers.zstd-chunked.* keys
	// Level is the zstd encoder's (default SpeedDefault). For
	// incompressible content it changes the time taken, not the size.
	Level zstd.EncoderLevel
}

// zstdChunkedEntry is one TOC entry as containers/storage writes it.
type zstdChunkedEntry struct {
	Type        string `json:"type"`
	Name        string `json:"name"`
	LinkName    string `json:"linkName,omitempty"`
	Mode        int64  `json:"mode,omitempty"`
	Size        int64  `json:"size,omitempty"`
	UID         int    `json:"uid,omitempty"`
	GID         int    `json:"gid,omitempty"`
	ModTime     string `json:"modtime,omitempty"`
	DevMajor    int64  `json:"devMajor,omitempty"`
	DevMinor    int64  `json:"devMinor,omitempty"`
	Digest      string `json:"digest,omitempty"`
	Offset      int64  `json:"offset,omitempty"`
	EndOffset   int64  `json:"endOffset,omitempty"`
	ChunkSize   int64  `json:"chunkSize,omitempty"`
	ChunkOffset int64  `json:"chunkOffset,omitempty"`
	ChunkDigest string `json:"chunkDigest,omitempty"`
}

// ZstdChunkedImage returns img with every layer re-encoded as
// zstd:chunked (the same tars, so the same diff_ids and config).
func ZstdChunkedImage(t testing.TB, img v1.Image, o ZstdChunkedOptions) v1.Image {
	t.Helper()
	out, err := zstdChunkedImage(img, o)
	if err != nil {
		t.Fatalf("testimage: zstd:chunked: %v", err)
	}
	return out
}

func zstdChunkedImage(img v1.Image, o ZstdChunkedOptions) (v1.Image, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	out := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	out = mutate.ConfigMediaType(out, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for _, l := range layers {
		diffID, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		tarBytes, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		ann, err := EncodeZstdChunked(&out, bytes.NewReader(tarBytes), int64(len(tarBytes)), o)
		if err != nil {
			return nil, err
		}
		blob := out.Bytes()
		sum := sha256.Sum256(blob)
		desc := v1.Descriptor{
			MediaType: types.OCILayerZStd, Size: int64(len(blob)), Annotations: ann,
			Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
		}
		adds = append(adds, mutate.Addendum{Layer: &blobLayer{data: blob, desc: desc, diffID: diffID},
			MediaType: types.OCILayerZStd, Annotations: ann, History: v1.History{Created: v1.Time{Time: Epoch}}})
	}
	if out, err = mutate.Append(out, adds...); err != nil {
		return nil, err
	}
	return mutate.ConfigFile(out, cf.DeepCopy())
}

// EncodeZstdChunked writes the tar of size bytes in tarFile to w as a
// zstd:chunked blob: frames cut at every file's content and every
// ChunkSize bytes of it, the TOC in a skippable frame, and a footer frame,
// as containers/storage lays them out. It returns the layer's annotations.
// The tar is read in place (only one chunk at a time is in memory), so a
// layer of gigabytes costs no more memory than a small one.
func EncodeZstdChunked(w io.Writer, tarFile io.ReaderAt, size int64, o ZstdChunkedOptions) (map[string]string, error) {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 1 << 20
	}
	level := o.Level
	if level == 0 {
		level = zstd.SpeedDefault
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	var written int64
	var buf, out []byte
	emit := func(b []byte) error {
		n, err := w.Write(b)
		written += int64(n)
		return err
	}
	// frame compresses the tar's bytes [from, to) into one frame and
	// returns where it lies in the blob.
	frame := func(from, to int64) (start, end int64, err error) {
		start = written
		if to <= from {
			return start, start, nil
		}
		buf = slices.Grow(buf[:0], int(to-from))[:to-from]
		if _, err := tarFile.ReadAt(buf, from); err != nil {
			return 0, 0, fmt.Errorf("reading the tar at %d: %w", from, err)
		}
		out = enc.EncodeAll(buf, out[:0])
		return start, start + int64(len(out)), emit(out)
	}
	sr := io.NewSectionReader(tarFile, 0, size)
	// archive/tar reads headers block by block and seeks over contents, so
	// after Next the section's offset is where the entry's content starts.
	tr := tar.NewReader(sr)
	var entries []zstdChunkedEntry
	var pos int64 // tar bytes already framed
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		e := zstdChunkedEntry{Name: hdr.Name, LinkName: hdr.Linkname, Mode: hdr.Mode & 0o7777, UID: hdr.Uid, GID: hdr.Gid,
			ModTime: hdr.ModTime.UTC().Format(time.RFC3339), DevMajor: hdr.Devmajor, DevMinor: hdr.Devminor}
		switch hdr.Typeflag {
		case tar.TypeReg:
			e.Type, e.Size = "reg", hdr.Size
		case tar.TypeDir:
			e.Type = "dir"
		case tar.TypeSymlink:
			e.Type = "symlink"
		case tar.TypeLink:
			e.Type = "hardlink"
		case tar.TypeChar:
			e.Type = "char"
		case tar.TypeBlock:
			e.Type = "block"
		case tar.TypeFifo:
			e.Type = "fifo"
		default:
			return nil, fmt.Errorf("%s: tar type %q", hdr.Name, hdr.Typeflag)
		}
		if e.Type != "reg" || hdr.Size == 0 {
			entries = append(entries, e)
			continue
		}
		// The headers up to here in one frame, then the content in
		// frames of its own.
		start, err := sr.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		if _, _, err := frame(pos, start); err != nil {
			return nil, err
		}
		whole := sha256.New()
		for off := int64(0); off < hdr.Size; off += o.ChunkSize {
			n := min(o.ChunkSize, hdr.Size-off)
			s, end, err := frame(start+off, start+off+n)
			if err != nil {
				return nil, err
			}
			whole.Write(buf)
			cs := sha256.Sum256(buf)
			c := e
			if off > 0 {
				c = zstdChunkedEntry{Type: "chunk", Name: hdr.Name}
			}
			c.Offset, c.EndOffset, c.ChunkOffset, c.ChunkSize = s, end, off, n
			c.ChunkDigest = "sha256:" + hex.EncodeToString(cs[:])
			entries = append(entries, c)
		}
		// The file's digest heads its first chunk's entry.
		first := len(entries) - int((hdr.Size+o.ChunkSize-1)/o.ChunkSize)
		entries[first].Digest = "sha256:" + hex.EncodeToString(whole.Sum(nil))
		pos = start + hdr.Size
	}
	// The padding and the end-of-archive blocks.
	if _, _, err := frame(pos, size); err != nil {
		return nil, err
	}
	toc, err := json.Marshal(map[string]any{"version": 1, "entries": entries})
	if err != nil {
		return nil, err
	}
	compressedTOC := enc.EncodeAll(toc, nil)
	var tail []byte
	tocOffset := written + skippableFrame(&tail, compressedTOC)
	footer := make([]byte, 0, 40)
	for _, v := range []uint64{uint64(tocOffset), uint64(len(compressedTOC)), uint64(len(toc)), 1} {
		footer = binary.LittleEndian.AppendUint64(footer, v)
	}
	footer = append(footer, []byte("GNUlInUx")...)
	skippableFrame(&tail, footer)
	if err := emit(tail); err != nil {
		return nil, err
	}
	tocSum := sha256.Sum256(compressedTOC)
	posKey, sumKey := ZstdChunkedPositionAnnotation, ZstdChunkedChecksumAnnotation
	if o.LegacyKeys {
		posKey, sumKey = ZstdChunkedLegacyPositionAnnotation, ZstdChunkedLegacyChecksumAnnotation
	}
	return map[string]string{
		posKey: fmt.Sprintf("%d:%d:%d:1", tocOffset, len(compressedTOC), len(toc)),
		sumKey: "sha256:" + hex.EncodeToString(tocSum[:]),
	}, nil
}

// skippableFrame appends data as a zstd skippable frame and returns where
// data starts.
func skippableFrame(blob *[]byte, data []byte) int64 {
	*blob = binary.LittleEndian.AppendUint32(*blob, 0x184D2A50)
	*blob = binary.LittleEndian.AppendUint32(*blob, uint32(len(data)))
	at := int64(len(*blob))
	*blob = append(*blob, data...)
	return at
}
