package lazy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nanofs/nanofs/lazy/internal/cas"
)

// PruneResult says what PruneCache removed and what is left.
type PruneResult struct {
	TempFiles int   // temporary files of processes that died while writing
	TempBytes int64 // their bytes
	Entries   int   // cache entries removed (a layer's tar and index count as one)
	Bytes     int64 // their bytes
	Remaining int64 // bytes left in the cache
}

// PruneCache cleans the cache in dir (DefaultCacheDir when ""): it
// removes the temporary files of processes that died while writing (as
// every Open does), then, while the cache holds more than maxSize bytes,
// its least recently used entries (maxSize < 0: none). Entries in use by
// another process are safe to remove: open files stay readable, and a
// removed entry is fetched again when next needed.
func PruneCache(dir string, maxSize int64) (*PruneResult, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	store, err := cas.Open(dir)
	if err != nil {
		return nil, err
	}
	res := &PruneResult{}
	var errs []error
	res.TempFiles, res.TempBytes, err = store.RemoveStale()
	if err != nil {
		errs = append(errs, err)
	}
	entries, err := cacheEntries(store.Root())
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		res.Remaining += e.size
	}
	// Oldest use first.
	sort.Slice(entries, func(i, j int) bool {
		if !entries[i].used.Equal(entries[j].used) {
			return entries[i].used.Before(entries[j].used)
		}
		return entries[i].files[0] < entries[j].files[0]
	})
	for _, e := range entries {
		if maxSize < 0 || res.Remaining <= maxSize {
			break
		}
		var rmErr error
		for _, f := range e.files {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				rmErr = err
			}
		}
		if rmErr != nil {
			errs = append(errs, fmt.Errorf("cache: %w", rmErr))
			continue
		}
		res.Entries++
		res.Bytes += e.size
		res.Remaining -= e.size
	}
	return res, errors.Join(errs...)
}

// cacheEntry is the files of one cached item: kind/xx/<hex> with any
// suffix (.tar, .idx, .lock).
type cacheEntry struct {
	files []string
	size  int64
	used  time.Time // the newest access or modification of its files
}

// cacheEntries lists the cache's entries. Files the store did not write
// (anything not under kind/xx/<64 hex>...) are left alone.
func cacheEntries(root string) ([]*cacheEntry, error) {
	byStem := map[string]*cacheEntry{}
	var order []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		parts := strings.Split(rel, string(filepath.Separator))
		name := d.Name()
		if len(parts) != 3 || len(name) < 64 || strings.HasPrefix(name, ".") {
			return nil
		}
		stem := filepath.Join(parts[0], parts[1], name[:64])
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		e := byStem[stem]
		if e == nil {
			e = &cacheEntry{}
			byStem[stem] = e
			order = append(order, stem)
		}
		e.files = append(e.files, p)
		e.size += info.Size()
		if t := lastUse(info); t.After(e.used) {
			e.used = t
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	out := make([]*cacheEntry, 0, len(order))
	for _, s := range order {
		out = append(out, byStem[s])
	}
	return out, nil
}

// touch marks a cache file as just used, for PruneCache's order
// (access times are often not kept: relatime, noatime).
func touch(p string) {
	now := time.Now()
	_ = os.Chtimes(p, now, now) // only an ordering hint
}

// VerifyResult says what VerifyCache checked and what it removed.
type VerifyResult struct {
	Entries int      // content-addressed entries hashed
	Bytes   int64    // their bytes
	Corrupt []string // entries whose content does not match their name (removed), as kind/digest
}

// verifiedKinds are the cache kinds whose files are named by the digest
// of their whole content: eStargz chunks and TOCs, blobs (configs, blobs
// kept whole) and manifests. Layers read whole (streamKind) are checked
// against the per-segment digests of their index (verifyStreamLayers).
var verifiedKinds = []string{chunkKind, tocKind, wholeKind, manifestKind}

// VerifyCache hashes every content-addressed entry of the cache in dir
// (DefaultCacheDir when "") and removes those whose content does not match
// their name, so that the next build fetches them again. Builds do not
// hash cached chunks or layer tars again when they read them (each was
// checked before it was stored, and is read after a size check only): this
// is the check of what a disk error or a hand may have damaged since. A
// layer tar is checked against the segment digests of its index and
// removed with it.
func VerifyCache(dir string) (*VerifyResult, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	res := &VerifyResult{}
	var errs []error
	for _, kind := range verifiedKinds {
		root := filepath.Join(dir, kind)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			name := d.Name()
			if d.IsDir() || !d.Type().IsRegular() || len(name) != 64 || !isHex(name) {
				return nil // temporary files, locks, records with a suffix
			}
			f, err := os.Open(p)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // pruned meanwhile
				}
				errs = append(errs, fmt.Errorf("cache: %w", err))
				return nil
			}
			got, n, err := cas.SHA256Reader(f)
			f.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("cache: %s: %w", p, err))
				return nil
			}
			res.Entries++
			res.Bytes += n
			if got != "sha256:"+name {
				res.Corrupt = append(res.Corrupt, kind+"/sha256:"+name)
				if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, fmt.Errorf("cache: removing damaged %s: %w", p, err))
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("cache: %w", err))
		}
	}
	store, err := cas.Open(dir)
	if err != nil {
		return res, errors.Join(append(errs, err)...)
	}
	errs = append(errs, verifyStreamLayers(store, res))
	return res, errors.Join(errs...)
}

// verifyStreamLayers hashes every cached layer tar segment by segment
// against its index and removes a tar that does not match, or whose index
// is damaged, with its index: the next build streams the layer again.
func verifyStreamLayers(store *cas.Store, res *VerifyResult) error {
	var errs []error
	root := filepath.Join(store.Root(), streamKind)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		stem, ok := strings.CutSuffix(d.Name(), ".tar")
		if d.IsDir() || !d.Type().IsRegular() || !ok || len(stem) != 64 || !isHex(stem) {
			return nil
		}
		key := "sha256:" + stem
		n, good, err := verifyStreamLayer(store, key, p)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		res.Entries++
		res.Bytes += n
		if good {
			return nil
		}
		res.Corrupt = append(res.Corrupt, streamKind+"/"+key)
		for _, suffix := range []string{".tar", binIndexSuffix, ".index"} {
			q, err := store.Path(streamKind, key, suffix)
			if err != nil {
				continue
			}
			if err := os.Remove(q); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("cache: removing damaged %s: %w", q, err))
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("cache: %w", err))
	}
	return errors.Join(errs...)
}

// verifyStreamLayer says whether the cached tar at p matches its index
// (false also when the index is missing, damaged or of another size), and
// how many bytes it hashed.
func verifyStreamLayer(store *cas.Store, key, p string) (int64, bool, error) {
	unlock, err := store.Lock(streamKind, key)
	if err != nil {
		return 0, false, err
	}
	// Held so that a build streaming this layer again is not judged half
	// written, nor removed once it is whole.
	defer unlock()
	idx, _, err := readStreamIndex(store, key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(p); errors.Is(serr, fs.ErrNotExist) {
				return 0, true, nil // pruned meanwhile
			}
		}
		return 0, false, nil
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, true, nil
		}
		return 0, false, fmt.Errorf("cache: %w", err)
	}
	defer f.Close()
	var n int64
	for i, want := range idx.Segments {
		got, k, err := cas.SHA256Reader(io.NewSectionReader(f, int64(i)*segmentSize, segmentSize))
		n += k
		if err != nil {
			return n, false, fmt.Errorf("cache: %s: %w", p, err)
		}
		if got != "sha256:"+want {
			return n, false, nil
		}
	}
	return n, true, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
