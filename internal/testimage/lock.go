package testimage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/moby/sys/mountinfo"
)

// The on-disk cache of expensive fixtures (compiled C programs, debootstrap
// trees, apt layers). Every entry is a directory <base>/<key> that appears
// in one atomic rename once it is complete, so a reader never sees half an
// entry; building is serialized across processes (go test runs packages in
// parallel) by an flock on <base>/<key>.lock.

// cacheRootDir is os.UserCacheDir()/nanofs-test, shared with the other
// testimage caches.
func cacheRootDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: %w", err)
	}
	return filepath.Join(d, "nanofs-test"), nil
}

// cacheBase is the directory holding the entries of one kind of fixture.
func cacheBase(kind string) (string, error) {
	root, err := cacheRootDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, kind), nil
}

// completeMarker is written into an entry just before it is renamed into
// place; an entry directory without it is debris and gets rebuilt.
const completeMarker = ".complete"

// cacheBuilds counts the builds this process ran, so tests can tell a cache
// hit from a rebuild without timing anything.
var cacheBuilds atomic.Int64

// cachedDir returns base/key, first building it when it is missing: build
// fills a fresh temporary directory beside the entry, which is renamed into
// place after build returns nil. Concurrent callers, in this process or
// others, wait for the one that builds. A failed build leaves nothing
// behind (mounts under the temporary directory are undone before removal).
func cachedDir(base, key string, build func(dir string) error) (string, error) {
	if key == "" || strings.ContainsAny(key, `/\`) || key == "." || key == ".." {
		return "", fmt.Errorf("cache key %q is not a plain name", key)
	}
	entry := filepath.Join(base, key)
	if complete(entry) {
		return entry, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("cache %s: %w", base, err)
	}
	unlock, err := lockFile(entry + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if complete(entry) { // built by whoever held the lock before us
		return entry, nil
	}
	// Holding the lock, anything left under this key is debris from a
	// build that died: an entry without its marker, or temporary dirs.
	stale, _ := filepath.Glob(filepath.Join(base, key+".tmp-*"))
	if _, err := os.Lstat(entry); err == nil {
		stale = append(stale, entry)
	}
	for _, s := range stale {
		if err := removeTree(s); err != nil {
			return "", fmt.Errorf("cache %s: removing debris: %w", entry, err)
		}
	}
	tmp, err := os.MkdirTemp(base, key+".tmp-")
	if err != nil {
		return "", fmt.Errorf("cache %s: %w", entry, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", errors.Join(fmt.Errorf("cache %s: %w", entry, err), removeTree(tmp))
	}
	cacheBuilds.Add(1)
	if err := build(tmp); err != nil {
		return "", errors.Join(fmt.Errorf("building %s: %w", entry, err), removeTree(tmp))
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), nil, 0o644); err != nil {
		return "", errors.Join(fmt.Errorf("cache %s: %w", entry, err), removeTree(tmp))
	}
	if err := os.Rename(tmp, entry); err != nil {
		return "", errors.Join(fmt.Errorf("cache %s: %w", entry, err), removeTree(tmp))
	}
	return entry, nil
}

func complete(entry string) bool {
	_, err := os.Stat(filepath.Join(entry, completeMarker))
	return err == nil
}

// lockFile takes an exclusive flock on path (created if needed), waiting
// for other holders. flock locks belong to the open file description, so
// two goroutines of one process exclude each other as well as two
// processes do, and the kernel drops the lock when a holder dies.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// removeTree deletes dir after undoing every mount below it. os.RemoveAll
// alone would walk into a leftover mount (a chroot's /proc or /dev, an
// overlay) and delete what lies behind it, so when a mount cannot be
// undone the tree is left alone and an error returned.
func removeTree(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(abs); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	mounts, err := mountsUnder(abs)
	if err != nil {
		return err
	}
	for _, m := range mounts { // deepest first
		if err := syscall.Unmount(m, 0); err != nil {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	if left, err := mountsUnder(abs); err != nil {
		return err
	} else if len(left) > 0 {
		return fmt.Errorf("not removing %s: still mounted below it: %s", abs, strings.Join(left, ", "))
	}
	if err := makeWritable(abs); err != nil {
		return err
	}
	return os.RemoveAll(abs)
}

// makeWritable gives the owner write and search permission on every
// directory under dir, so that a non-root user can remove trees holding
// read-only directories (an overlay work dir, a rootfs's /proc, ...).
func makeWritable(dir string) error {
	if os.Geteuid() == 0 {
		return nil
	}
	return filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.IsDir() || info.Mode().Perm()&0o700 == 0o700 {
			return nil
		}
		return os.Chmod(p, info.Mode().Perm()|0o700)
	})
}

// mountsUnder lists the mount points at or below dir in this process's
// mount namespace, deepest first.
func mountsUnder(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("listing mounts: %w", err)
	}
	out := make([]string, len(infos))
	for i, m := range infos {
		out[i] = m.Mountpoint
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}
