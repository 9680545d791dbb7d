package resolve

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScanStrings(t *testing.T) {
	long := strings.Repeat("x", 3<<20) // longer than the read buffer, without a NUL
	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"plain", "\x00/p/a.js\x00junk\x00/p/b/c.js\x00", []string{"/p/a.js", "/p/b/c.js"}},
		{"inside a string", "prefix-/p/a.js\x00", []string{"/p/a.js"}},
		{"repeats", "/p/a.js\x00/p/a.js\x00", []string{"/p/a.js"}},
		{"no trailing NUL", "\x00/p/a.js", []string{"/p/a.js"}},
		{"dot elements", "/p/../etc/passwd\x00/p/./a\x00/p//a\x00", nil},
		{"unprintable", "/p/a\x01b\x00/p/a b\x00", nil},
		{"after a long run", long + "\x00/p/z.js\x00", []string{"/p/z.js"}},
		{"in a long run", long + "/p/y.js" + long + "\x00", nil},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scanStrings(strings.NewReader(tc.data), []byte("/p/"))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzScanStrings: what scanStrings finds are clean paths under the
// prefix, and scanning bytes in memory (scanStringsIn) finds the same.
func FuzzScanStrings(f *testing.F) {
	f.Add([]byte("\x00/usr/share/nodejs/a.js\x00"))
	f.Add([]byte("/usr/share/nodejs/../../etc\x00/usr/share/nodejs/x"))
	f.Add([]byte("\x00/usr/share/nodejs/a.js\x00x/usr/share/nodejs/b.js\x00/usr/share/nodejs/a.js"))
	f.Add([]byte("/usr/share/nodejs//usr/share/nodejs/c\x00\x00"))
	f.Add(append(bytes.Repeat([]byte("y"), scanBuffer+10), []byte("/usr/share/nodejs/long\x00/usr/share/nodejs/ok\x00")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		prefix := []byte(nodeBuiltinsDir)
		got, err := scanStrings(bytes.NewReader(data), prefix)
		require.NoError(t, err)
		for _, p := range got {
			assert.True(t, strings.HasPrefix(p, nodeBuiltinsDir), p)
			assert.True(t, cleanPath(p), p)
			assert.NotContains(t, p, "\x00")
		}
		assert.Equal(t, got, scanStringsIn(data, prefix), "in memory against as a stream")
	})
}
