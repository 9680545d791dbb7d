package resolve

import (
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// remoteFS is a file system that says it fetches files from far away
// (Prefetcher): it records what is queued and how many reads are in
// flight at once, each read taking a little while, as a remote one does.
type remoteFS struct {
	fsys fs.FS
	lag  time.Duration

	mu       sync.Mutex
	queued   []string
	inFlight map[string]int // reads in flight, by file
	most     int            // the most files read at once
}

var _ Prefetcher = (*remoteFS)(nil)

func (r *remoteFS) PrefetchLater(names ...string) {
	r.mu.Lock()
	r.queued = append(r.queued, names...)
	r.mu.Unlock()
}

func (r *remoteFS) Open(name string) (fs.File, error) {
	f, err := r.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return f, nil
	}
	return &remoteFile{File: f, r: r, name: name}, nil
}

func (r *remoteFS) ReadLink(name string) (string, error)   { return fs.ReadLink(r.fsys, name) }
func (r *remoteFS) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(r.fsys, name) }

type remoteFile struct {
	fs.File
	r    *remoteFS
	name string
}

func (f *remoteFile) ReadAt(p []byte, off int64) (int, error) {
	f.r.mu.Lock()
	if f.r.inFlight == nil {
		f.r.inFlight = map[string]int{}
	}
	f.r.inFlight[f.name]++
	f.r.most = max(f.r.most, len(f.r.inFlight))
	f.r.mu.Unlock()
	time.Sleep(f.r.lag)
	defer func() {
		f.r.mu.Lock()
		if f.r.inFlight[f.name]--; f.r.inFlight[f.name] == 0 {
			delete(f.r.inFlight, f.name)
		}
		f.r.mu.Unlock()
	}()
	ra, ok := f.File.(io.ReaderAt)
	if !ok {
		return 0, fs.ErrInvalid
	}
	return ra.ReadAt(p, off)
}

// TestReadAheadSamePlan: on a file system that fetches from far away, the
// libraries a program needs have their headers read several at once (the
// dependency tree costs the round trips of its deepest chain, not one per
// library) and are all queued for fetching, as are the small files every
// resolve reads; the plan is the one the same resolve makes on the plain
// file system.
func TestReadAheadSamePlan(t *testing.T) {
	root := testimage.DebianRootfsWith(t, "nodejs", "python3", "redis-server")
	for _, prog := range []string{"/usr/bin/node", "/usr/bin/python3", "/usr/bin/redis-server"} {
		t.Run(prog, func(t *testing.T) {
			want, err := NewResolver(os.DirFS(root)).Resolve(Config{Entrypoint: []string{prog}})
			require.NoError(t, err)
			remote := &remoteFS{fsys: os.DirFS(root), lag: 2 * time.Millisecond}
			got, err := NewResolver(remote).Resolve(Config{Entrypoint: []string{prog}})
			require.NoError(t, err)
			assert.Equal(t, want.Entries, got.Entries)
			assert.Equal(t, want.Objects, got.Objects)
			assert.Equal(t, want.Warnings, got.Warnings)

			remote.mu.Lock()
			defer remote.mu.Unlock()
			libs := 0
			for _, o := range got.Objects {
				if o.Role != RoleNeeded {
					continue
				}
				libs++
				assert.True(t, slices.Contains(remote.queued, fsName(o.File)), "%s not queued for fetching", o.File)
			}
			for _, f := range []string{"etc/passwd", "etc/ld.so.conf", "etc/nsswitch.conf"} {
				assert.True(t, slices.Contains(remote.queued, f), "%s, which every resolve reads, not queued", f)
			}
			if libs >= 2 {
				assert.GreaterOrEqual(t, remote.most, 2, "libraries' headers read one library at a time")
			}
		})
	}
}
