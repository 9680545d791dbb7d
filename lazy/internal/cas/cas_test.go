package cas

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteAndReadVerified(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	data := []byte("hello cache")
	d := SHA256(data)

	_, err = s.ReadVerified("chunks", d)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Error(t, s.Write("chunks", d, []byte("something else")), "content must match its name")
	require.NoError(t, s.Write("chunks", d, data))
	got, err := s.ReadVerified("chunks", d)
	require.NoError(t, err)
	assert.Equal(t, data, got)

	// Damage after writing is noticed, and the entry removed.
	p, err := s.Path("chunks", d, "")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, []byte("hello cachf"), 0o644))
	_, err = s.ReadVerified("chunks", d)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = os.Stat(p)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assertNoTemp(t, s.Root())
}

func TestPendingLeavesNothingBehind(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	d := SHA256([]byte("x"))
	p, err := s.Create("layers", d, ".tar")
	require.NoError(t, err)
	_, err = p.Write([]byte("partial"))
	require.NoError(t, err)
	p.Abort()
	p.Abort()
	final, err := s.Path("layers", d, ".tar")
	require.NoError(t, err)
	_, err = os.Stat(final)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assertNoTemp(t, s.Root())

	p, err = s.Create("layers", d, ".tar")
	require.NoError(t, err)
	_, err = p.Write([]byte("complete"))
	require.NoError(t, err)
	require.NoError(t, p.Commit())
	p.Abort() // after Commit: nothing to undo
	b, err := os.ReadFile(final)
	require.NoError(t, err)
	assert.Equal(t, "complete", string(b))
	assertNoTemp(t, s.Root())
}

func TestPathRejectsBadNames(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	good := SHA256(nil)
	for _, tc := range []struct{ kind, digest, suffix string }{
		{"../x", good, ""},
		{"", good, ""},
		{"chunks", "sha256:../../etc/passwd", ""},
		{"chunks", "sha512:" + good[7:], ""},
		{"chunks", "sha256:" + good[8:], ""},
		{"chunks", "sha256:" + "G" + good[8:], ""},
		{"chunks", good, "/../x"},
	} {
		_, err := s.Path(tc.kind, tc.digest, tc.suffix)
		assert.Error(t, err, "%+v", tc)
	}
	p, err := s.Path("chunks", good, ".json")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(s.Root(), "chunks", good[7:9], good[7:]+".json"), p)
}

// TestLock: a second holder waits for the first (each Lock is its own
// open file, as in another process).
func TestLock(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	d := SHA256([]byte("layer"))
	unlock, err := s.Lock("layers", d)
	require.NoError(t, err)
	got := make(chan struct{})
	go func() {
		unlock2, err := s.Lock("layers", d)
		assert.NoError(t, err)
		close(got)
		unlock2()
	}()
	select {
	case <-got:
		t.Fatal("second lock taken while the first is held")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	<-got
}

func assertNoTemp(t *testing.T, root string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			assert.NotRegexp(t, `^\.tmp-`, d.Name(), p)
		}
		return err
	}))
}
