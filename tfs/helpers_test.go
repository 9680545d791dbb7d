package tfs

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// image is an in-memory io.WriterAt + io.ReaderAt.
type image struct {
	mu sync.Mutex
	b  []byte
}

func (m *image) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

func (m *image) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}

func (m *image) size() int64 { return int64(len(m.b)) }

// entry describes one thing to add in table-driven tests.
type entry struct {
	name   string
	kind   kind // kindDir, kindFile, kindSymlink, kindLink
	data   []byte
	target string
}

func regular(name, data string) entry        { return entry{name: name, kind: kindFile, data: []byte(data)} }
func dirEntry(name string) entry             { return entry{name: name, kind: kindDir} }
func symlink(target, name string) entry      { return entry{name: name, kind: kindSymlink, target: target} }
func hardlink(oldname, name string) entry    { return entry{name: name, kind: kindLink, target: oldname} }
func bigFile(name string, data []byte) entry { return entry{name: name, kind: kindFile, data: data} }

func add(t testing.TB, w *Writer, es ...entry) {
	t.Helper()
	for _, e := range es {
		switch e.kind {
		case kindDir:
			require.NoError(t, w.Mkdir(e.name))
		case kindFile:
			require.NoError(t, w.AddFile(e.name, int64(len(e.data)), bytes.NewReader(e.data)))
		case kindSymlink:
			require.NoError(t, w.Symlink(e.target, e.name))
		case kindLink:
			require.NoError(t, w.Link(e.target, e.name))
		}
	}
}

// build writes entries with NewWriter and returns the image.
func build(t testing.TB, setup func(*Writer), opts ...Option) *image {
	t.Helper()
	img := &image{}
	w, err := NewWriter(img, opts...)
	require.NoError(t, err)
	setup(w)
	require.NoError(t, w.Close())
	require.Equal(t, w.Size(), img.size())
	return img
}

func open(t testing.TB, img *image) *FS {
	t.Helper()
	f, err := Open(img, img.size())
	require.NoError(t, err)
	return f
}

var _ io.WriterAt = (*image)(nil)
