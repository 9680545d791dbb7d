package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// imageRun runs the CLI with a fresh cache directory.
func imageRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--cache-dir", t.TempDir())
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestLs(t *testing.T) {
	layout := testimage.WriteOCILayout(t, testimage.EdgeSpec().Image(t, testimage.EStargz))

	code, stdout, stderr := imageRun(t, "ls", layout, "/usr/bin")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, `-rwsr-xr-x   1     0     0            7 2020-01-01 00:00 su-ish
-rwxr-xr-x   2     0     0           23 2020-01-01 00:00 tool
lrwxrwxrwx   1     0     0           13 2020-01-01 00:00 tool-abs -> /usr/bin/tool
-rwxr-xr-x   2     0     0           23 2020-01-01 00:00 tool-hard
lrwxrwxrwx   1     0     0            4 2020-01-01 00:00 tool-rel -> tool
-rwxr-xr-x   2     0     0           21 2020-01-01 00:00 tool2
-rwxr-xr-x   2     0     0           21 2020-01-01 00:00 tool2-hard
`, stdout)

	// A symlink to a directory lists the directory; a file lists itself.
	code, stdout2, stderr := imageRun(t, "ls", layout, "bin")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, stdout, stdout2)
	code, stdout, stderr = imageRun(t, "ls", layout, "/home/user/.profile")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "-rw-r-----   1  1000  1000           19 2020-01-01 00:00 /home/user/.profile\n", stdout)
	code, stdout, stderr = imageRun(t, "ls", layout, "/run/initctl")
	require.Equal(t, 0, code, stderr)
	assert.True(t, strings.HasPrefix(stdout, "prw-------"), stdout)

	code, stdout, stderr = imageRun(t, "ls", layout)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "drwxrwxrwt   2     0     0            0 2020-01-01 00:00 tmp\n")
	assert.Contains(t, stdout, "lrwxrwxrwx   1     0     0            7 2020-01-01 00:00 bin -> usr/bin\n")
	assert.NotContains(t, stdout, "landmark", "eStargz's own files are hidden")

	code, stdout, stderr = imageRun(t, "ls", "-R", layout, "/srv")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, `drwx------   2     0     0            0 2020-01-01 00:00 /srv/opaque
-rw-r--r--   1     0     0            5 2020-01-01 00:00 /srv/opaque/new1
`, strings.SplitN(stdout, "\n", 2)[1])
}

func TestLsRegistryVerbose(t *testing.T) {
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "edge:gzip", testimage.EdgeSpec().Image(t, testimage.Gzip))
	c := testimage.StartCounter(t, reg.Host)
	code, stdout, stderr := imageRun(t, "-v", "ls", c.Ref("edge:gzip"), "/etc")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "hostname\n")
	assert.Contains(t, stderr, "downloaded whole, then cached")
	assert.Contains(t, stderr, "fetched ")
	assert.Positive(t, c.Stats().BlobBytes)
}

func TestLsErrors(t *testing.T) {
	layout := testimage.WriteOCILayout(t, testimage.EdgeSpec().Image(t, testimage.Gzip))
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"ls", layout, "/no/such"}, "no/such: file does not exist"},
		{[]string{"ls", layout, "/../x"}, "invalid path"},
		{[]string{"ls", "--platform", "linux", layout}, "want os/arch"},
		{[]string{"ls", "--platform", "linux/s390x", layout}, "no image for the platform linux/s390x"},
		{[]string{"ls", t.TempDir() + "/missing.tar"}, "missing.tar"},
		{[]string{"ls"}, "accepts between 1 and 2 arg"},
	} {
		code, _, stderr := imageRun(t, tc.args...)
		want := exitFailure
		if strings.Contains(tc.msg, "no image for the platform") {
			want = exitBadInput
		}
		assert.Equal(t, want, code, tc.args)
		assert.True(t, strings.HasPrefix(stderr, "nanofs: "), stderr)
		assert.Contains(t, stderr, tc.msg, tc.args)
	}
}
