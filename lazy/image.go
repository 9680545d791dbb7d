package lazy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/nanofs/nanofs/lazy/internal/cas"
	"github.com/nanofs/nanofs/lazy/internal/overlay"
)

// Image is an image's layers merged into one read-only file system whose
// file contents are fetched when they are read.
//
// It implements fs.FS, fs.StatFS, fs.ReadDirFS, fs.ReadFileFS and
// fs.ReadLinkFS; Open follows symbolic links (inside the image: an absolute
// target starts at the image root), Lstat and ReadLink do not. Opened
// regular files implement io.ReaderAt and io.Seeker. FileInfo.Sys returns a
// *Stat. An Image is safe for concurrent use.
type Image struct {
	name   string
	digest v1.Hash
	config v1.ConfigFile
	layers []*layer
	tree   *overlay.Tree
	src    blobSource
	store  *cas.Store
	jobs   int

	cfgStats *counter
	sh       *stargzShared // what the eStargz layers share
	bg       *background   // fetches queued by PrefetchLater
	tag      *tagCheck     // WithTagCheckLater: where the tag points now

	ctx    context.Context // bounds every fetch; cancelled by Close
	cancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

var (
	_ fs.FS         = (*Image)(nil)
	_ fs.StatFS     = (*Image)(nil)
	_ fs.ReadDirFS  = (*Image)(nil)
	_ fs.ReadFileFS = (*Image)(nil)
	_ fs.ReadLinkFS = (*Image)(nil)
)

// Open reads an image's manifest, config and the index of every layer,
// and returns the merged file system. ref is
//
//   - an image reference with Docker's defaults ("node:20" is
//     index.docker.io/library/node:20; tags and @sha256: digests),
//   - an OCI image layout directory (or "oci:DIR"),
//   - a `docker save` tarball (or "docker-archive:FILE").
//
// Layers with an eStargz TOC cost one or two small range requests (none
// when cached); other layers are downloaded once, in parallel, and kept in the
// cache. ctx bounds Open and every later fetch, like
// go-containerregistry's remote.WithContext; Close the image to release it.
func Open(ctx context.Context, ref string, opts ...Option) (*Image, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	dir := o.cacheDir
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	store, err := cas.Open(dir)
	if err != nil {
		return nil, err
	}
	// What processes killed while writing left behind (kill -9 skips
	// every cleanup) goes now; live writers' files stay.
	store.RemoveStale() //nolint:errcheck // best effort: PruneCache reports

	cfgStats := &counter{}
	r, err := resolve(ctx, ref, &o, store, cfgStats)
	if err != nil {
		return nil, err
	}
	img := &Image{name: r.name, digest: r.digest, layers: r.layers, src: r.src, store: store, jobs: o.jobs, cfgStats: cfgStats, tag: r.tag}
	if o.progress != nil {
		stop := reportProgress(o.progress, r.layers, cfgStats)
		defer stop()
	}
	img.ctx, img.cancel = context.WithCancel(ctx)
	img.bg = &background{}
	if err := json.Unmarshal(r.rawConfig, &img.config); err != nil {
		img.Close()
		return nil, r.tag.moved(ctx, fmt.Errorf("%s: config: %w", r.name, err))
	}
	if err := img.index(ctx, &o); err != nil {
		img.Close()
		return nil, r.tag.moved(ctx, fmt.Errorf("%s: %w", r.name, err))
	}
	return img, nil
}

// hotChunkBytes is how much recently read eStargz chunk data an image
// keeps in memory.
const hotChunkBytes = 64 << 20

// minConns is the fewest range requests an image keeps in flight at once
// (WithJobs may allow more): enough to hide the round trips of the small
// requests a resolve makes while a prefetch streams large files.
const minConns = 8

// index reads every layer's entries (in parallel) and merges them.
// lazyFormats are the layer formats with a table of contents, whose files
// are fetched chunk by chunk; a layer in none of them is read as a stream.
var lazyFormats = []struct {
	is   func(*layer) bool
	open func(context.Context, *layer, *cas.Store, int, *stargzShared) (*stargzLayer, []overlay.Entry, error)
}{
	{isZstdChunked, openZstdChunked},
	{isStargz, openStargz},
}

func (img *Image) index(ctx context.Context, o *options) error {
	entries := make([][]overlay.Entry, len(img.layers))
	conns := max(o.jobs, minConns)
	img.sh = newStargzShared(conns)
	// A table of contents costs a round trip or two and little else: every
	// layer's is asked for at once (up to conns). Layers read as streams
	// are downloaded and decompressed whole, o.jobs at a time.
	streams := make(chan struct{}, max(1, o.jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conns)
	for i, l := range img.layers {
		g.Go(func() error {
			var err error
			for _, f := range lazyFormats {
				if !f.is(l) {
					continue
				}
				l.stargz, entries[i], err = f.open(gctx, l, img.store, o.jobs, img.sh)
				if err == nil {
					l.lazy.Store(true)
					l.tocBytes.Store(l.stargz.tocBytes)
				}
				if !errors.Is(err, errNotStargz) {
					return err
				}
				l.stargz = nil // not that format after all: read it as a stream
			}
			if err := acquire(gctx, streams); err != nil {
				return err
			}
			defer func() { <-streams }()
			l.stream, entries[i], err = indexStream(gctx, l, img.store)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	t := overlay.New()
	for i, l := range img.layers {
		if err := t.Apply(i, l.key.String(), entries[i], l.dataFor); err != nil {
			return err
		}
		entries[i] = nil
	}
	t.Finish()
	img.tree = t
	return nil
}

// progressInterval is how often WithProgress's function is called.
const progressInterval = 200 * time.Millisecond

// reportProgress calls fn with the counts every progressInterval until
// the returned function is called, which makes a last call.
func reportProgress(fn func(Stats), layers []*layer, cfg *counter) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn(statsOf(layers, cfg))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		fn(statsOf(layers, cfg))
	}
}

// Close stops fetches in progress and releases open files. Reads after
// Close fail.
func (img *Image) Close() error {
	img.closeOnce.Do(func() {
		img.cancel()
		img.bg.stop()
		var errs []error
		for _, l := range img.layers {
			errs = append(errs, l.close())
		}
		if img.src != nil {
			errs = append(errs, img.src.close())
		}
		img.closeErr = errors.Join(errs...)
	})
	return img.closeErr
}

// Name says which image this is: the repository and manifest digest, or
// the local source.
func (img *Image) Name() string { return img.name }

// Digest is the manifest's digest (for a docker-save tarball, the config's).
func (img *Image) Digest() v1.Hash { return img.digest }

// Config is the part of the image config that says how to run it.
type Config struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
}

// Config returns how the image says it is run.
func (img *Image) Config() Config {
	c := img.config.Config
	return Config{
		Entrypoint: slices.Clone(c.Entrypoint),
		Cmd:        slices.Clone(c.Cmd),
		Env:        slices.Clone(c.Env),
		WorkingDir: c.WorkingDir,
		User:       c.User,
	}
}

// ConfigFile returns a copy of the whole image config.
func (img *Image) ConfigFile() *v1.ConfigFile { return img.config.DeepCopy() }

// Stats counts what was fetched from the image's source, per layer.
type Stats struct {
	Layers   []LayerStats
	Requests int64 // all blob requests, config included
	Bytes    int64 // all blob bytes received, config included
}

// LayerStats describes one layer and what was fetched of it.
type LayerStats struct {
	Digest    string // blob digest (docker-save tarballs: diffID)
	MediaType string
	Size      int64 // compressed size; -1 when unknown
	Lazy      bool  // eStargz: files are fetched chunk by chunk
	TOCBytes  int64 // eStargz: bytes of the blob's tail read for its TOC and footer
	Requests  int64 // requests made for this layer's blob
	Bytes     int64 // bytes received of this layer's blob
}

// Stats returns the counts so far.
func (img *Image) Stats() Stats { return statsOf(img.layers, img.cfgStats) }

func statsOf(layers []*layer, cfg *counter) Stats {
	s := Stats{Requests: cfg.requests.Load(), Bytes: cfg.bytes.Load()}
	for _, l := range layers {
		ls := LayerStats{
			Digest: l.key.String(), MediaType: string(l.mediaType), Size: l.size, Lazy: l.lazy.Load(),
			TOCBytes: l.tocBytes.Load(), Requests: l.stats.requests.Load(), Bytes: l.stats.bytes.Load(),
		}
		s.Layers = append(s.Layers, ls)
		s.Requests += ls.Requests
		s.Bytes += ls.Bytes
	}
	return s
}

// Prefetch fetches the contents of the named files (symbolic links
// followed) into the cache, many requests at once, neighbouring chunks
// in one request. Files of layers that were downloaded whole at Open are
// already local. Names that do not exist or are not regular files are
// reported in the error, after everything else was fetched.
func (img *Image) Prefetch(ctx context.Context, names []string) error {
	var errs []error
	byLayer := map[*stargzLayer][]overlay.Chunk{}
	ends := map[*stargzLayer]map[int64]bool{} // members holding a file's first or last chunk
	for _, name := range names {
		n, err := img.lookup("prefetch", name, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !n.Mode.IsRegular() {
			errs = append(errs, &fs.PathError{Op: "prefetch", Path: name, Err: errors.New("not a regular file")})
			continue
		}
		if d, ok := n.Data.(*fileData); ok && d.layer.stargz != nil && len(d.chunks) > 0 {
			s := d.layer.stargz
			byLayer[s] = append(byLayer[s], d.chunks...)
			if ends[s] == nil {
				ends[s] = map[int64]bool{}
			}
			ends[s][d.chunks[0].Offset] = true
			ends[s][d.chunks[len(d.chunks)-1].Offset] = true
		}
	}
	// Merge the two contexts: the caller's, and the image's (Close).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(img.ctx, cancel)
	defer stop()
	g, gctx := errgroup.WithContext(ctx)
	for s, cs := range byLayer {
		if ctx.Value(backgroundKey{}) != nil {
			g.Go(func() error { return s.ensureLater(gctx, cs, ends[s]) })
		} else {
			g.Go(func() error { return s.ensure(gctx, cs) })
		}
	}
	errs = append(errs, g.Wait())
	return errors.Join(errs...)
}
