package bench

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// workloadVersion changes whenever the recipe of the workloads changes in
// a way their cache key would not see.
const workloadVersion = "bench-workloads-v2" // v2: zstd:chunked images too

// nodeEntry is the program both workloads are built for. Their entrypoint
// is a shell script that execs node, which no resolver can see through (it
// would find /bin/sh), so, as the README's example does, the build names
// node.
const nodeEntry = "node"

// specEncodings maps the report's names to testimage's, for the
// encodings testimage's specs build themselves; zstd:chunked images are
// made from the gzip ones (debianNode).
var specEncodings = map[string]testimage.Encoding{Gzip: testimage.Gzip, EStargz: testimage.EStargz}

// debianNode is the Debian-node image in each encoding. The gzip and
// eStargz images come from testimage's cache; the zstd:chunked one is
// encoded from the gzip image's tars when first asked for (a few seconds),
// which a run served from the workload cache never does.
type debianNode struct {
	h    *harness
	spec *testimage.Spec
	imgs map[string]v1.Image
}

func (d *debianNode) image(enc string) v1.Image {
	if img, ok := d.imgs[enc]; ok {
		return img
	}
	if enc != ZstdChunked {
		d.h.t.Fatalf("no Debian-node image in %s", enc)
	}
	t0 := time.Now()
	img := testimage.ZstdChunkedImage(d.h.t, d.imgs[Gzip], testimage.ZstdChunkedOptions{})
	d.imgs[enc] = img
	d.h.logf("%s: the Debian-node image encoded as zstd:chunked in %s", DebianNodeImage, fmtSec(time.Since(t0).Seconds()))
	return img
}

// layers are the image's layers in enc.
func (d *debianNode) layers(enc string) []v1.Layer {
	layers, err := d.image(enc).Layers()
	require.NoError(d.h.t, err)
	return layers
}

// setupWorkloads starts the namespace and the registry in it and makes
// sure the registry serves every workload, in every encoding: from the
// cache of earlier runs (the registry's storage directory, kept under the
// cache keyed by what the images are made of) or built and pushed now. The
// link is not shaped yet, so pushing costs no more than local disk.
func (h *harness) setupWorkloads() []Workload {
	t := h.t
	require.NoError(t, os.MkdirAll(h.cfg.cache, 0o755))
	unlock, err := flock(filepath.Join(h.cfg.cache, "lock"))
	require.NoError(t, err)
	h.undo.push(unlock)

	h.logf("Debian-node image: debootstrap and apt the first time on a machine (minutes), cached after")
	spec := testimage.DebianNodeSpec(t)
	dn := &debianNode{h: h, spec: spec, imgs: map[string]v1.Image{}}
	// The zstd:chunked image is a function of the gzip one's tars and the
	// recipe (workloadVersion): it needs no digest of its own in the key.
	var keyParts []string
	for _, enc := range []string{Gzip, EStargz} {
		dn.imgs[enc] = spec.Image(t, specEncodings[enc])
		d, err := dn.imgs[enc].Digest()
		require.NoError(t, err)
		keyParts = append(keyParts, d.String())
	}
	key := fmt.Sprintf("%d-%s", h.cfg.ballast, shortHash(append([]string{workloadVersion,
		strconv.Itoa(ballastLayers), strconv.Itoa(smallFilesPerGiB)}, keyParts...)...))
	dir := filepath.Join(h.cfg.cache, key)
	h.pruneWorkloadCache(key)
	storage := filepath.Join(dir, "registry")
	marker := filepath.Join(dir, "workloads.json")

	h.link, err = NewLink(h.ctx)
	require.NoError(t, err)
	h.undo.push(func() {
		if err := h.link.Close(); err != nil {
			h.t.Errorf("removing the namespace: %v", err)
		}
	})
	h.startRegistry(storage)

	cached := map[string]Workload{}
	if data, err := os.ReadFile(marker); err == nil {
		var list []Workload
		if err := json.Unmarshal(data, &list); err == nil {
			for _, w := range list {
				cached[w.Name] = w
			}
		}
	}
	if len(cached) > 0 {
		if err := h.verifyWorkloads(cached); err != nil {
			h.logf("the cached workloads in %s do not verify (%v): building them again", dir, err)
			h.registry.Stop()
			require.NoError(t, os.RemoveAll(dir))
			cached = map[string]Workload{}
			h.startRegistry(storage)
		}
	}

	var out []Workload
	for _, wname := range []string{DebianNodeImage, LargeImage} {
		if h.cfg.only != nil && !h.cfg.only[wname] {
			continue
		}
		w, ok := cached[wname]
		if ok {
			h.logf("%s: served from the cache %s", wname, dir)
		} else {
			t0 := time.Now()
			if wname == DebianNodeImage {
				w = h.pushDebianNode(dn)
			} else {
				w = h.buildLarge(dn)
			}
			h.logf("%s: built and pushed in %s", wname, fmtSec(time.Since(t0).Seconds()))
			cached[wname] = w
			var list []Workload
			for _, n := range []string{DebianNodeImage, LargeImage} {
				if c, ok := cached[n]; ok {
					list = append(list, c)
				}
			}
			data, err := json.MarshalIndent(list, "", "  ")
			require.NoError(t, err)
			require.NoError(t, writeFileAtomic(marker, append(data, '\n')))
		}
		w.Entry = nodeEntry
		out = append(out, w)
	}
	h.res.Workloads = out
	return out
}

func (h *harness) startRegistry(storage string) {
	var err error
	h.registry, err = StartRegistry(h.ctx, h.link, storage, h.work)
	require.NoError(h.t, err)
	h.undo.push(h.registry.Stop)
}

// pruneWorkloadCache removes other workload sets, to keep one full-size
// set on disk (about 13 GiB). A run with reduced ballast (for development)
// or one that leaves the large image out leaves the full-size set alone:
// it would not build another.
func (h *harness) pruneWorkloadCache(keep string) {
	if h.cfg.only != nil && !h.cfg.only[LargeImage] {
		return
	}
	entries, _ := os.ReadDir(h.cfg.cache)
	for _, e := range entries {
		if !e.IsDir() || e.Name() == keep {
			continue
		}
		size, _, ok := strings.Cut(e.Name(), "-")
		n, err := strconv.ParseInt(size, 10, 64)
		if !ok || err != nil {
			continue // not ours
		}
		if h.cfg.ballast < defaultBallast && n >= defaultBallast {
			continue
		}
		h.logf("removing the stale workload cache %s", filepath.Join(h.cfg.cache, e.Name()))
		os.RemoveAll(filepath.Join(h.cfg.cache, e.Name()))
	}
}

// verifyWorkloads checks that the registry serves every cached image with
// the recorded digest and holds all its blobs.
func (h *harness) verifyWorkloads(ws map[string]Workload) error {
	for _, w := range ws {
		for enc, repoTag := range w.Refs {
			ref, err := name.ParseReference(h.registry.Host+"/"+repoTag, name.Insecure)
			if err != nil {
				return err
			}
			img, err := remote.Image(ref, remote.WithContext(h.ctx))
			if err != nil {
				return fmt.Errorf("%s: %w", repoTag, err)
			}
			d, err := img.Digest()
			if err != nil {
				return err
			}
			if d.String() != w.Digests[enc] {
				return fmt.Errorf("%s is %s, want %s", repoTag, d, w.Digests[enc])
			}
			layers, err := img.Layers()
			if err != nil {
				return err
			}
			for _, l := range layers {
				ld, err := l.Digest()
				if err != nil {
					return err
				}
				if err := h.blobExists(ref.Context(), ld); err != nil {
					return fmt.Errorf("%s: %w", repoTag, err)
				}
			}
		}
	}
	return nil
}

func (h *harness) blobExists(repo name.Repository, d v1.Hash) error {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodHead,
		fmt.Sprintf("http://%s/v2/%s/blobs/%s", h.registry.Host, repo.RepositoryStr(), d), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("blob %s: %s", d, resp.Status)
	}
	return nil
}

// push uploads img as repoTag ("bench/NAME:TAG") and returns its digest.
func (h *harness) push(repoTag string, img v1.Image) string {
	ref, err := name.ParseReference(h.registry.Host+"/"+repoTag, name.Insecure)
	require.NoError(h.t, err)
	require.NoError(h.t, remote.Write(ref, img, remote.WithContext(h.ctx)), "pushing %s", repoTag)
	d, err := img.Digest()
	require.NoError(h.t, err)
	return d.String()
}

func (h *harness) pushDebianNode(dn *debianNode) Workload {
	spec := dn.spec
	w := Workload{
		Name: DebianNodeImage,
		Description: "the catalog's Debian-node image, shaped like the official node image: debootstrap bookworm (minbase), " +
			"apt-get install nodejs python3 redis-server, and a top layer with docker-entrypoint.sh; ENTRYPOINT docker-entrypoint.sh, CMD node. " +
			"The zstd:chunked image holds the gzip image's tars (1 MiB chunks, zstd's default level).",
		Refs: map[string]string{}, Digests: map[string]string{}, BlobBytes: map[string]int64{},
		Layers: len(spec.Layers), Entry: nodeEntry,
	}
	for i := range spec.Layers {
		tarBytes, files := h.layerContent(spec.Layer(h.t, i, testimage.Gzip))
		w.UncompressedBytes += tarBytes
		w.Files += files
	}
	for _, enc := range Encodings {
		img := dn.image(enc)
		repoTag := "bench/" + DebianNodeImage + ":" + slug(enc)
		h.logf("pushing %s", repoTag)
		w.Refs[enc], w.Digests[enc] = repoTag, h.push(repoTag, img)
		w.BlobBytes[enc] = layersSize(h, img)
	}
	return w
}

// layerContent reads a layer's tar: its size and how many regular files
// it adds (whiteouts are not files).
func (h *harness) layerContent(l v1.Layer) (int64, int) {
	rc, err := l.Uncompressed()
	require.NoError(h.t, err)
	defer rc.Close()
	cw := &countWriter{w: io.Discard}
	tr := tar.NewReader(io.TeeReader(rc, cw))
	files := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(h.t, err)
		if hdr.Typeflag == tar.TypeReg && !strings.HasPrefix(filepath.Base(hdr.Name), testimage.WhiteoutPrefix) {
			files++
		}
	}
	_, err = io.Copy(cw, rc) // the tar's padding after the last entry
	require.NoError(h.t, err)
	return cw.n, files
}

func layersSize(h *harness, img v1.Image) int64 {
	layers, err := img.Layers()
	require.NoError(h.t, err)
	var n int64
	for _, l := range layers {
		s, err := l.Size()
		require.NoError(h.t, err)
		n += s
	}
	return n
}

// buildLarge makes the large image: the Debian-node image's three layers
// with the ballast layers between them, half below the layer that holds
// node and its libraries, half above it:
//
//	debian base, ballast 1, ballast 2, nodejs/python3/redis, ballast 3, ballast 4, entrypoint
//
// Each ballast layer is generated, encoded three ways, pushed, and deleted
// before the next, so the scratch space stays at about four layers' worth.
func (h *harness) buildLarge(dn *debianNode) Workload {
	t := h.t
	spec := dn.spec
	require.Len(t, spec.Layers, 3, "the Debian-node spec changed shape: update buildLarge")
	scratch := filepath.Join(h.work, "ballast")
	require.NoError(t, os.MkdirAll(scratch, 0o755))
	defer os.RemoveAll(scratch)

	per := h.cfg.ballast / ballastLayers
	small := int(int64(smallFilesPerGiB) * per >> 30)
	w := Workload{
		Name: LargeImage,
		Refs: map[string]string{}, Digests: map[string]string{}, BlobBytes: map[string]int64{},
		Layers: len(spec.Layers) + ballastLayers, Entry: nodeEntry,
	}
	var dnBytes int64
	for i := range spec.Layers {
		tarBytes, files := h.layerContent(spec.Layer(t, i, testimage.Gzip))
		dnBytes += tarBytes
		w.Files += files
	}
	w.UncompressedBytes = dnBytes
	repo, err := name.NewRepository(h.registry.Host+"/bench/"+LargeImage, name.Insecure)
	require.NoError(t, err)
	ballast := map[string][]v1.Layer{}
	for i := range ballastLayers {
		b := Ballast{Dir: fmt.Sprintf("opt/ballast-%d", i+1), Bytes: per, Small: small, Seed: uint64(i + 1)}
		t0 := time.Now()
		encoded, err := EncodeLayers(scratch, fmt.Sprintf("ballast-%d", i+1), b.WriteTar)
		require.NoError(t, err)
		t1 := time.Now()
		var sizes []string
		for _, enc := range Encodings {
			l := encoded[enc]
			require.NoError(t, remote.WriteLayer(repo, l.Layer(), remote.WithContext(h.ctx)), "pushing ballast %d (%s)", i+1, enc)
			os.Remove(l.File)
			ballast[enc] = append(ballast[enc], l.Layer())
			sizes = append(sizes, fmt.Sprintf("%s %s in %s", enc, fmtBytes(l.Desc.Size), fmtSec(l.EncodeSeconds)))
		}
		h.logf("ballast %d/%d: %s in %d files, generated and encoded in %s (%s, in parallel), pushed in %s",
			i+1, ballastLayers, fmtBytes(encoded[Gzip].TarBytes), len(b.Files()), fmtSec(t1.Sub(t0).Seconds()),
			strings.Join(sizes, ", "), fmtSec(time.Since(t1).Seconds()))
		w.UncompressedBytes += encoded[Gzip].TarBytes
		w.Files += len(b.Files())
	}
	for _, enc := range Encodings {
		dnLayers := dn.layers(enc)
		require.Len(t, dnLayers, 3)
		b := ballast[enc]
		half := len(b) / 2
		layers := append(append(append(append([]v1.Layer{dnLayers[0]}, b[:half]...), dnLayers[1]), b[half:]...), dnLayers[2])
		img := testimage.NewImage(t, spec.Config, layers...)
		repoTag := "bench/" + LargeImage + ":" + slug(enc)
		h.logf("pushing %s", repoTag)
		w.Refs[enc], w.Digests[enc] = repoTag, h.push(repoTag, img)
		w.BlobBytes[enc] = layersSize(h, img)
	}
	w.Description = fmt.Sprintf("the Debian-node image's three layers with %s of ballast between them in %d layers "+
		"(two below the nodejs layer, two above it), each of incompressible ChaCha8 data: %d small files (up to 16 KiB) "+
		"and large ones (1 to 64 MiB) per layer. The same program and plan as debian-node in an image %.0f times as large.",
		fmtBytes(h.cfg.ballast), ballastLayers, small, float64(w.UncompressedBytes)/float64(max(dnBytes, 1)))
	return w
}

// flock takes an exclusive lock on path, so that two benchmark runs do not
// build or prune the workload cache under each other.
func flock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s is locked by another benchmark run: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%q\n", p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
