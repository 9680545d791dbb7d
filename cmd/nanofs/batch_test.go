package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/vm/build"
)

func TestBatchImages(t *testing.T) {
	list := filepath.Join(t.TempDir(), "images.txt")
	require.NoError(t, os.WriteFile(list, []byte("# fleet\n  a:1  \n\nb@sha256:00\n"), 0o644))
	for _, tc := range []struct {
		name    string
		args    []string
		from    string
		stdin   string
		want    []string
		wantErr string
	}{
		{name: "arguments only", args: []string{"x", "y"}, want: []string{"x", "y"}},
		{name: "file after arguments", args: []string{"x"}, from: list, want: []string{"x", "a:1", "b@sha256:00"}},
		{name: "stdin", from: "-", stdin: "c\n#d\ne", want: []string{"c", "e"}},
		{name: "empty list", from: "-", stdin: "# nothing\n", wantErr: build.ErrNoImages.Error()},
		{name: "missing file", from: "/no/such/list", wantErr: "--images-from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := batchImages(tc.args, tc.from, strings.NewReader(tc.stdin))
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzBatchImages: any list gives trimmed, non-empty, non-comment lines.
func FuzzBatchImages(f *testing.F) {
	f.Add("a:1\n# c\n\n b \r\n")
	f.Fuzz(func(t *testing.T, list string) {
		got, err := batchImages(nil, "-", strings.NewReader(list))
		if err != nil {
			return
		}
		for _, img := range got {
			if img == "" || img != strings.TrimSpace(img) || strings.HasPrefix(img, "#") || strings.Contains(img, "\n") {
				t.Fatalf("bad image %q from %q", img, list)
			}
		}
	})
}
