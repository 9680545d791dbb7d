package testimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanofs/nanofs/tfs"
)

// WriteTree writes files (name -> content; "->T" makes a link to T, a
// name ending in "/" a directory) under dir.
func WriteTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(content[2:], p)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// OpenDisk verifies the root filesystem of a Nanos disk (or a bare TFS
// volume) and opens it for the rest of the test.
func OpenDisk(t testing.TB, disk string) *tfs.FS {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := tfs.Verify(f, st.Size()); err != nil {
		t.Fatalf("tfs.Verify %s: %v", disk, err)
	}
	fsys, err := tfs.Open(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}
