package resolve

import (
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
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
	events   []string       // "queue NAME" and "read NAME", in order
	reads    []readSpan
}

// readSpan is when one read of a file was in flight.
type readSpan struct {
	name       string
	start, end time.Time
}

// firstEvent is the index of the first of r's events that is e, or -1.
func (r *remoteFS) firstEvent(e string) int { return slices.Index(r.events, e) }

// overlapping reports whether a read of a was in flight while one of b was.
func (r *remoteFS) overlapping(a, b string) bool {
	for _, x := range r.reads {
		for _, y := range r.reads {
			if x.name == a && y.name == b && x.start.Before(y.end) && y.start.Before(x.end) {
				return true
			}
		}
	}
	return false
}

var _ Prefetcher = (*remoteFS)(nil)

func (r *remoteFS) PrefetchLater(names ...string) {
	r.mu.Lock()
	r.queued = append(r.queued, names...)
	for _, n := range names {
		r.events = append(r.events, "queue "+n)
	}
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
	f.r.events = append(f.r.events, "read "+f.name)
	span := readSpan{name: f.name, start: time.Now()}
	f.r.mu.Unlock()
	time.Sleep(f.r.lag)
	defer func() {
		f.r.mu.Lock()
		span.end = time.Now()
		f.r.reads = append(f.r.reads, span)
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
			for _, f := range []string{"etc/passwd", "etc/ld.so.conf", "etc/nsswitch.conf", "etc/group", "etc/gai.conf"} {
				assert.True(t, slices.Contains(remote.queued, f), "%s, which every resolve reads or adds, not queued", f)
			}
			if libs >= 2 {
				assert.GreaterOrEqual(t, remote.most, 2, "libraries' headers read one library at a time")
			}
			program := fsName(got.ProgramFile)
			queued, read := remote.firstEvent("queue "+program), remote.firstEvent("read "+program)
			assert.True(t, queued >= 0 && queued < read, "the program is queued before its header is read (queued at event %d, read at %d)", queued, read)
			var interp string
			for _, o := range got.Objects {
				if o.Role == RoleInterpreter {
					interp = fsName(o.File)
				}
			}
			require.NotEmpty(t, interp)
			for _, o := range got.Objects {
				switch {
				case o.Role == RoleNeeded && o.File != got.Objects[0].File && fsName(o.File) != interp && len(got.Objects[0].Needed) > 0 &&
					o.Path == got.Objects[0].Needed[0].Path:
					// The program's first library: its header travels with the loader's.
					assert.True(t, remote.overlapping(fsName(o.File), interp), "%s read after the loader %s, not with it", o.File, interp)
				case o.Role == RoleRuntime && strings.HasPrefix(path.Base(o.File), "libnss_"):
					// NSS modules: their headers travel with the program's libraries'.
					withLibs := false
					for _, l := range got.Objects {
						withLibs = withLibs || (l.Role == RoleNeeded && remote.overlapping(fsName(o.File), fsName(l.File)))
					}
					assert.True(t, withLibs, "NSS module %s read after the program's libraries, not with them", o.File)
				}
			}
		})
	}
}
