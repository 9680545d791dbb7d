// Package cas is nanofs's on-disk content cache: files named by the SHA-256
// of what they hold, grouped by kind, written through a temporary file and
// renamed into place complete, so that a reader never sees half a file and
// several processes can share one cache.
//
// Entries are verified when they are written (Write, Commit with a digest).
// Small ones are checked again whenever they are read (ReadVerified); large
// ones are read after a size check, and their callers hash them again on
// demand (lazy.VerifyCache): a file damaged after it was written is removed
// and fetched again rather than believed.
package cas

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nanofs/nanofs/tfs/tempfile"
)

// Store is a cache directory.
type Store struct {
	root string
}

// Open returns the store rooted at dir, creating dir if needed.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("cache: no directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Store{root: abs}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// ErrCorrupt reports a cache file whose content does not match its name.
var ErrCorrupt = errors.New("cache entry does not match its digest")

// Digest is "sha256:<64 hex digits>", the only algorithm the store knows.
// checkDigest returns its hex part.
func checkDigest(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexPart) != 64 {
		return "", fmt.Errorf("cache: %q is not a sha256 digest", digest)
	}
	if _, err := hex.DecodeString(hexPart); err != nil || strings.ToLower(hexPart) != hexPart {
		return "", fmt.Errorf("cache: %q is not a sha256 digest", digest)
	}
	return hexPart, nil
}

// checkKind accepts plain directory names only.
func checkKind(kind string) error {
	if kind == "" || kind == "." || kind == ".." || strings.ContainsAny(kind, `/\`) {
		return fmt.Errorf("cache: bad kind %q", kind)
	}
	return nil
}

// Path returns where the entry kind/digest+suffix lives. Entries are spread
// over 256 subdirectories by the digest's first byte.
func (s *Store) Path(kind, digest, suffix string) (string, error) {
	if err := checkKind(kind); err != nil {
		return "", err
	}
	h, err := checkDigest(digest)
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(suffix, `/\`) {
		return "", fmt.Errorf("cache: bad suffix %q", suffix)
	}
	return filepath.Join(s.root, kind, h[:2], h+suffix), nil
}

// ReadVerified returns the content of kind/digest after checking that it
// hashes to digest. A missing entry gives an error satisfying
// errors.Is(err, fs.ErrNotExist); a damaged one is removed and reported as
// missing too, so that callers simply fetch it again.
func (s *Store) ReadVerified(kind, digest string) ([]byte, error) {
	p, err := s.Path(kind, digest, "")
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if SHA256(data) != digest {
		os.Remove(p)
		return nil, fmt.Errorf("cache: %s: %w (removed): %w", p, ErrCorrupt, fs.ErrNotExist)
	}
	// Mark it used, for pruning least recently used entries first.
	now := time.Now()
	_ = os.Chtimes(p, now, now)
	return data, nil
}

// Write stores data as kind/digest after checking that it hashes to digest.
func (s *Store) Write(kind, digest string, data []byte) error {
	if got := SHA256(data); got != digest {
		return fmt.Errorf("cache: refusing to store %s/%s: content hashes to %s", kind, digest, got)
	}
	p, err := s.Path(kind, digest, "")
	if err != nil {
		return err
	}
	return writeAtomic(p, data)
}

// WriteMeta stores data under kind/digest+suffix without a digest check: for
// small records about a blob (which its reader validates) rather than content.
func (s *Store) WriteMeta(kind, digest, suffix string, data []byte) error {
	p, err := s.Path(kind, digest, suffix)
	if err != nil {
		return err
	}
	return writeAtomic(p, data)
}

// ReadMeta reads a record written by WriteMeta.
func (s *Store) ReadMeta(kind, digest, suffix string) ([]byte, error) {
	p, err := s.Path(kind, digest, suffix)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

func writeAtomic(p string, data []byte) error {
	pend, err := create(p)
	if err != nil {
		return err
	}
	if _, err := pend.Write(data); err != nil {
		pend.Abort()
		return fmt.Errorf("cache: writing %s: %w", p, err)
	}
	return pend.Commit()
}

// Pending is an entry being written: a temporary file beside its final
// name. Commit publishes it; Abort (safe after Commit) throws it away.
type Pending struct {
	*os.File
	final string
	done  bool
}

// Create starts writing kind/digest+suffix. The caller verifies what it
// writes before calling Commit.
func (s *Store) Create(kind, digest, suffix string) (*Pending, error) {
	p, err := s.Path(kind, digest, suffix)
	if err != nil {
		return nil, err
	}
	return create(p)
}

func create(final string) (*Pending, error) {
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	f, err := tempfile.Create(filepath.Dir(final), "")
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Pending{File: f, final: final}, nil
}

// RemoveStale removes the temporary files of processes that died while
// writing an entry (killed, crashed), and says how many and how many
// bytes. Those of live processes stay.
func (s *Store) RemoveStale() (files int, bytes int64, err error) {
	kinds, err := os.ReadDir(s.root)
	if err != nil {
		return 0, 0, fmt.Errorf("cache: %w", err)
	}
	var errs []error
	for _, k := range kinds {
		if !k.IsDir() {
			continue
		}
		subs, err := os.ReadDir(filepath.Join(s.root, k.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, sub := range subs {
			if !sub.IsDir() {
				continue
			}
			removed, n, err := tempfile.RemoveStale(filepath.Join(s.root, k.Name(), sub.Name()), "")
			files += len(removed)
			bytes += n
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return files, bytes, errors.Join(errs...)
}

// Commit closes the temporary file and renames it to its final name.
func (p *Pending) Commit() error {
	if p.done {
		return errors.New("cache: entry already committed or aborted")
	}
	p.done = true
	name := p.File.Name()
	if err := p.File.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("cache: writing %s: %w", p.final, err)
	}
	if err := os.Rename(name, p.final); err != nil {
		os.Remove(name)
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// Abort discards the entry.
func (p *Pending) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.File.Close()
	os.Remove(p.File.Name())
}

// Lock takes an exclusive lock named kind/digest+".lock", waiting for
// other processes (or other goroutines: each Lock opens its own file) that
// hold it. The returned function releases it.
func (s *Store) Lock(kind, digest string) (unlock func(), err error) {
	p, err := s.Path(kind, digest, ".lock")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cache: locking %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}

// SHA256 returns "sha256:<hex>" of data.
func SHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// SHA256Reader returns "sha256:<hex>" of everything r yields.
func SHA256Reader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", n, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}
