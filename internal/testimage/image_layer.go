package testimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Encoding is how a layer's tar is compressed in the registry.
type Encoding int

const (
	Gzip    Encoding = iota // gzip, OCI media type
	Zstd                    // zstd, OCI media type
	EStargz                 // eStargz (seekable gzip with a TOC), gzip media type plus TOC annotations
)

// Encodings lists every encoding, for table-driven tests.
var Encodings = []Encoding{Gzip, Zstd, EStargz}

func (e Encoding) String() string {
	switch e {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case EStargz:
		return "estargz"
	}
	return "encoding(" + strconv.Itoa(int(e)) + ")"
}

// MediaType is the layer media type the encoding is published under.
func (e Encoding) MediaType() types.MediaType {
	if e == Zstd {
		return types.OCILayerZStd
	}
	return types.OCILayer
}

// Annotations that eStargz layer descriptors carry.
const (
	TOCDigestAnnotation        = estargz.TOCJSONDigestAnnotation         // digest of the uncompressed TOC JSON
	UncompressedSizeAnnotation = estargz.StoreUncompressedSizeAnnotation // size of the uncompressed layer tar
)

// Compression settings are part of every cache key: changing one rebuilds.
const (
	layerFormatVersion = "testimage-layer-v1"
	gzipLevel          = gzip.DefaultCompression
	estargzLevel       = gzip.DefaultCompression
	// estargzParallelism fixes how estargz.Build slices the tar, which fixes
	// the chunk boundaries: the blob is the same on every machine.
	estargzParallelism = 4
)

// LayerCacheEnv overrides the layer cache directory
// (default: os.UserCacheDir()/nanofs-test/layers).
const LayerCacheEnv = "NANOFS_TEST_LAYER_CACHE"

func layerCacheRoot() (string, error) {
	if d := os.Getenv(LayerCacheEnv); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: %w", err)
	}
	return filepath.Join(d, "nanofs-test", "layers"), nil
}

// LayerOption tunes LayerFromDir.
type LayerOption func(*layerOptions)

type layerOptions struct{ keepMTimes bool }

// KeepMTimes keeps the host tree's modification times instead of Epoch.
func KeepMTimes() LayerOption { return func(o *layerOptions) { o.keepMTimes = true } }

// layerSource is an uncompressed layer tar, known by a key that changes
// whenever the tar would.
type layerSource struct {
	name  string
	key   string
	size  int64 // content bytes, to choose between memory and disk
	write func(io.Writer) error
}

// LayerFromDir builds a layer from a host tree (an image root or an
// overlayfs upper directory; see writeHostTar for the conversion). A tree
// is scanned once per process: do not change it after using it.
func LayerFromDir(t testing.TB, dir string, enc Encoding, opts ...LayerOption) v1.Layer {
	t.Helper()
	src, _, err := hostTreeSource(dir, opts...)
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	return mustLayer(t, src, enc)
}

// LayerFromEntries builds a layer holding exactly entries, in order.
func LayerFromEntries(t testing.TB, enc Encoding, entries ...Entry) v1.Layer {
	t.Helper()
	tarball, err := TarEntries(entries)
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	return LayerFromTar(t, tarball, enc)
}

// LayerFromTar builds a layer from an uncompressed tar stream, verbatim.
func LayerFromTar(t testing.TB, tarball []byte, enc Encoding) v1.Layer {
	t.Helper()
	return mustLayer(t, bytesSource(tarball), enc)
}

func bytesSource(tarball []byte) layerSource {
	sum := sha256.Sum256(tarball)
	return layerSource{
		name:  "tar " + hex.EncodeToString(sum[:6]),
		key:   blobSetKey("tar", hex.EncodeToString(sum[:])),
		size:  int64(len(tarball)),
		write: func(w io.Writer) error { _, err := w.Write(tarball); return err },
	}
}

func blobSetKey(parts ...string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s gzip=%d zstd=%v estargz=%d/%d\n", layerFormatVersion, gzipLevel, zstd.SpeedDefault, estargzLevel, estargzParallelism)
	for _, p := range parts {
		fmt.Fprintf(h, "%q\n", p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hostTrees memoizes scans of host trees within one process: the big trees
// (Debian) are read-only caches, scanned once per test binary.
var hostTrees sync.Map // "dir\x00keep" -> *hostTreeScan

type hostTreeScan struct {
	once  sync.Once
	items []layerItem
	src   layerSource
	err   error
}

// hostTreeSource scans dir and returns it as a layer source together with
// its items. The key covers every byte and attribute that goes in the tar.
func hostTreeSource(dir string, opts ...LayerOption) (layerSource, []layerItem, error) {
	var o layerOptions
	for _, opt := range opts {
		opt(&o)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return layerSource{}, nil, err
	}
	v, _ := hostTrees.LoadOrStore(abs+"\x00"+strconv.FormatBool(o.keepMTimes), &hostTreeScan{})
	s := v.(*hostTreeScan)
	s.once.Do(func() {
		s.items, s.err = scanHostTree(abs)
		if s.err != nil {
			return
		}
		h := sha256.New()
		var size int64
		firstName := map[string]string{} // linkID -> first path: inode numbers are not stable
		for _, it := range s.items {
			size += it.node.Size
			link := ""
			if it.linkID != "" {
				if firstName[it.linkID] == "" {
					firstName[it.linkID] = it.path
				}
				link = firstName[it.linkID]
			}
			n := it.node
			fmt.Fprintf(h, "%d %q %d %d:%d %d %s %q %q %q\n", it.kind, it.path, uint32(n.Mode), n.UID, n.GID, n.Size, n.SHA256, n.Target, n.Dev, link)
			if o.keepMTimes {
				fmt.Fprintf(h, " mtime=%d\n", it.mtime.UnixNano())
			}
			keys := make([]string, 0, len(it.xattrs))
			for k := range it.xattrs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(h, " xattr %q=%q\n", k, it.xattrs[k])
			}
		}
		items := s.items
		s.src = layerSource{
			name:  abs,
			key:   blobSetKey("dir", hex.EncodeToString(h.Sum(nil)), strconv.FormatBool(o.keepMTimes)),
			size:  size,
			write: func(w io.Writer) error { return writeHostTar(w, items, o.keepMTimes) },
		}
	})
	return s.src, s.items, s.err
}

func mustLayer(t testing.TB, src layerSource, enc Encoding) v1.Layer {
	t.Helper()
	set, err := buildLayerSet(src)
	if err != nil {
		t.Fatalf("testimage: building layer %s: %v", src.name, err)
	}
	return set[enc]
}

// blobLayer is a compressed layer blob, in the disk cache (file) or in
// memory (data), with its descriptor and diffID known, so that nothing is
// re-hashed on use.
type blobLayer struct {
	file   string
	data   []byte
	desc   v1.Descriptor
	diffID v1.Hash
}

// blobMeta is the JSON stored next to each cached blob.
type blobMeta struct {
	Descriptor v1.Descriptor `json:"descriptor"`
	DiffID     v1.Hash       `json:"diffID"`
}

var _ partial.Describable = (*blobLayer)(nil)

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *blobLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *blobLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error) {
	if l.data != nil {
		return io.NopCloser(bytes.NewReader(l.data)), nil
	}
	return os.Open(l.file)
}
func (l *blobLayer) Descriptor() (*v1.Descriptor, error) { d := l.desc; return &d, nil }
func (l *blobLayer) Uncompressed() (io.ReadCloser, error) {
	// Only the compressed side is ours; decompression is the library's.
	ext, err := partial.CompressedToLayer(compressedOnly{l})
	if err != nil {
		return nil, err
	}
	return ext.Uncompressed()
}

// compressedOnly hides blobLayer's Uncompressed from partial, which would
// otherwise call straight back into it.
type compressedOnly struct{ l *blobLayer }

func (c compressedOnly) Digest() (v1.Hash, error)            { return c.l.Digest() }
func (c compressedOnly) Compressed() (io.ReadCloser, error)  { return c.l.Compressed() }
func (c compressedOnly) Size() (int64, error)                { return c.l.Size() }
func (c compressedOnly) MediaType() (types.MediaType, error) { return c.l.MediaType() }

var _ v1.Layer = (*blobLayer)(nil)

// layerSets memoizes built (or loaded and verified) layers per key.
var layerSets sync.Map // key -> *layerSetOnce

type layerSetOnce struct {
	once sync.Once
	set  map[Encoding]*blobLayer
	err  error
}

// BuildStats records how long the last fresh build of a layer took, per
// encoding, for reporting (a cache hit records nothing).
type BuildStats struct {
	Source   string
	TarBytes int64
	Tar      time.Duration
	Blobs    map[Encoding]BlobStats
}

// BlobStats is the size and build time of one encoding of a layer.
type BlobStats struct {
	Bytes int64
	Took  time.Duration
}

var (
	buildStatsMu sync.Mutex
	buildStats   []BuildStats
)

// LayerBuildStats returns the fresh layer builds of this process so far.
func LayerBuildStats() []BuildStats {
	buildStatsMu.Lock()
	defer buildStatsMu.Unlock()
	return append([]BuildStats(nil), buildStats...)
}

// diskCacheMinBytes is the content size from which a layer's blobs are
// kept in the on-disk cache; smaller layers are built in memory, once per
// process, which is cheaper than keeping every variant of them forever.
var diskCacheMinBytes int64 = 32 << 20

// layerCacheMaxIdle is how long an unused set of cached blobs is kept.
const layerCacheMaxIdle = 30 * 24 * time.Hour

// buildLayerSet returns all three encodings of a source: small ones built
// in memory; big ones from the disk cache when it has them, else built once
// (under a file lock, so that parallel test processes do not build the
// same layer twice).
func buildLayerSet(src layerSource) (map[Encoding]*blobLayer, error) {
	root, err := layerCacheRoot()
	if err != nil {
		return nil, err
	}
	inMemory := src.size < diskCacheMinBytes
	memoKey := src.key
	if !inMemory {
		memoKey = root + "\x00" + src.key
	}
	v, _ := layerSets.LoadOrStore(memoKey, &layerSetOnce{})
	s := v.(*layerSetOnce)
	s.once.Do(func() {
		if inMemory {
			s.set, s.err = buildLayerBlobs(src, "")
			return
		}
		s.set, s.err = loadOrBuildLayerSet(root, src)
	})
	return s.set, s.err
}

func loadOrBuildLayerSet(root string, src layerSource) (map[Encoding]*blobLayer, error) {
	dir := filepath.Join(root, src.key[:2])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, src.key)
	unlock, err := layerCacheFlock(base + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if set, err := loadLayerSet(base); err == nil {
		return set, nil
	}
	set, err := buildLayerBlobs(src, base)
	if err == nil {
		pruneLayerCache(root, time.Now().Add(-layerCacheMaxIdle))
	}
	return set, err
}

// layerCacheFlock takes an exclusive flock on path (created if needed).
func layerCacheFlock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// loadLayerSet loads and verifies cached blobs, and marks them as used.
func loadLayerSet(base string) (map[Encoding]*blobLayer, error) {
	set := map[Encoding]*blobLayer{}
	now := time.Now()
	for _, enc := range Encodings {
		metaFile := base + "." + enc.String() + ".json"
		raw, err := os.ReadFile(metaFile)
		if err != nil {
			return nil, err
		}
		var m blobMeta
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("cache metadata %s: %w", metaFile, err)
		}
		l := &blobLayer{file: base + "." + enc.String(), desc: m.Descriptor, diffID: m.DiffID}
		// A damaged cache must not turn into a confusing test failure later.
		f, err := os.Open(l.file)
		if err != nil {
			return nil, err
		}
		got, size, err := v1.SHA256(f)
		f.Close()
		if err != nil || got != m.Descriptor.Digest || size != m.Descriptor.Size {
			return nil, fmt.Errorf("cached blob %s does not match its metadata", l.file)
		}
		os.Chtimes(metaFile, now, now)
		set[enc] = l
	}
	return set, nil
}

// pruneLayerCache removes, best effort, cached sets not used since cutoff
// (their gzip metadata file is touched on every use).
func pruneLayerCache(root string, cutoff time.Time) {
	metas, _ := filepath.Glob(filepath.Join(root, "*", "*."+Gzip.String()+".json"))
	for _, m := range metas {
		info, err := os.Stat(m)
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		base := strings.TrimSuffix(m, "."+Gzip.String()+".json")
		unlock, err := layerCacheFlock(base + ".lock")
		if err != nil {
			continue
		}
		files, _ := filepath.Glob(base + ".*")
		for _, f := range files {
			if !strings.HasSuffix(f, ".lock") {
				os.Remove(f)
			}
		}
		unlock()
	}
}

// buildLayerBlobs writes the tar once, then the three encodings of it in
// parallel. With base "" everything stays in memory; otherwise the tar is
// a temp file and each blob base.<encoding>, renamed into place complete.
func buildLayerBlobs(src layerSource, base string) (map[Encoding]*blobLayer, error) {
	stats := BuildStats{Source: src.name, Blobs: map[Encoding]BlobStats{}}
	start := time.Now()
	var tarAt io.ReaderAt
	var tarOut io.Writer
	var buf *bytes.Buffer
	if base == "" {
		buf = &bytes.Buffer{}
		tarOut = buf
	} else {
		f, err := os.CreateTemp(filepath.Dir(base), "tar-*")
		if err != nil {
			return nil, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		tarOut, tarAt = f, f
	}
	tarDigest := sha256.New()
	counter := &byteCountingWriter{w: io.MultiWriter(tarOut, tarDigest)}
	if err := src.write(counter); err != nil {
		return nil, err
	}
	stats.TarBytes, stats.Tar = counter.n, time.Since(start)
	if buf != nil {
		tarAt = bytes.NewReader(buf.Bytes())
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(tarDigest.Sum(nil))}

	set := map[Encoding]*blobLayer{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(Encodings))
	for i, enc := range Encodings {
		wg.Go(func() {
			t0 := time.Now()
			l, err := writeBlob(io.NewSectionReader(tarAt, 0, counter.n), enc, diffID, base)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", enc, err)
				return
			}
			mu.Lock()
			set[enc] = l
			stats.Blobs[enc] = BlobStats{Bytes: l.desc.Size, Took: time.Since(t0)}
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	buildStatsMu.Lock()
	buildStats = append(buildStats, stats)
	buildStatsMu.Unlock()
	return set, nil
}

type byteCountingWriter struct {
	w io.Writer
	n int64
}

func (c *byteCountingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeBlob compresses tar in encoding enc, into memory (base "") or into
// base.<encoding> followed by its metadata file, which is what marks the
// blob as complete in the cache.
func writeBlob(tar *io.SectionReader, enc Encoding, diffID v1.Hash, base string) (*blobLayer, error) {
	var sink io.Writer
	var mem *bytes.Buffer
	var tmp *os.File
	if base == "" {
		mem = &bytes.Buffer{}
		sink = mem
	} else {
		var err error
		if tmp, err = os.CreateTemp(filepath.Dir(base), "blob-*"); err != nil {
			return nil, err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		sink = tmp
	}
	digest := sha256.New()
	out := &byteCountingWriter{w: io.MultiWriter(sink, digest)}
	desc := v1.Descriptor{MediaType: enc.MediaType()}
	annotations, esgzDiffID, err := encodeLayer(out, tar, enc)
	if err != nil {
		return nil, err
	}
	if enc == EStargz {
		desc.Annotations, diffID = annotations, esgzDiffID
	}
	desc.Size = out.n
	desc.Digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(digest.Sum(nil))}
	if mem != nil {
		return &blobLayer{data: mem.Bytes(), desc: desc, diffID: diffID}, nil
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	final := base + "." + enc.String()
	if err := os.Rename(tmp.Name(), final); err != nil {
		return nil, err
	}
	meta, err := json.Marshal(blobMeta{Descriptor: desc, DiffID: diffID})
	if err != nil {
		return nil, err
	}
	if err := renameIntoPlace(final+".json", meta); err != nil {
		return nil, err
	}
	return &blobLayer{file: final, desc: desc, diffID: diffID}, nil
}

// encodeLayer writes tar in encoding enc to out. For eStargz it also
// returns the descriptor annotations and the diffID of the rewritten tar.
func encodeLayer(out io.Writer, tar *io.SectionReader, enc Encoding) (map[string]string, v1.Hash, error) {
	switch enc {
	case Gzip:
		return nil, v1.Hash{}, compressBlob(out, tar, func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, gzipLevel) })
	case Zstd:
		return nil, v1.Hash{}, compressBlob(out, tar, func(w io.Writer) (io.WriteCloser, error) {
			return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		})
	case EStargz:
		return EncodeEStargz(out, tar, estargzLevel, estargzParallelism)
	}
	return nil, v1.Hash{}, fmt.Errorf("unknown encoding %d", enc)
}

func compressBlob(out io.Writer, in io.Reader, newWriter func(io.Writer) (io.WriteCloser, error)) error {
	zw, err := newWriter(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, in); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// EncodeEStargz converts tar with estargz.Build at a gzip level, cut into
// parallelism slices (which fix the output as much as the level does), and
// returns the descriptor annotations a lazy reader needs and the diffID of
// the converted stream (estargz rewrites the tar: it appends its TOC and a
// landmark file).
func EncodeEStargz(out io.Writer, tar *io.SectionReader, level, parallelism int) (map[string]string, v1.Hash, error) {
	blob, err := estargz.Build(tar,
		estargz.WithCompressionLevel(level),
		estargz.WithParallelism(parallelism))
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if _, err := io.Copy(out, blob); err != nil {
		blob.Close()
		return nil, v1.Hash{}, err
	}
	if err := blob.Close(); err != nil {
		return nil, v1.Hash{}, err
	}
	usize, err := blob.UncompressedSize()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	diffID, err := v1.NewHash(blob.DiffID().String())
	if err != nil {
		return nil, v1.Hash{}, err
	}
	return map[string]string{
		TOCDigestAnnotation:        blob.TOCDigest().String(),
		UncompressedSizeAnnotation: strconv.FormatInt(usize, 10),
	}, diffID, nil
}

// renameIntoPlace writes data to a temp file beside name and renames it.
func renameIntoPlace(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
