package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sampleRun runs `go test -json` on a small real package whose tests pass,
// fail, skip (one with a subtest) and print, and returns the event stream.
func sampleRun(t *testing.T) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/sample\n\ngo 1.22\n",
		"sample_test.go": `package sample

import "testing"

func TestPass(t *testing.T) { t.Log("fine") }
func TestFail(t *testing.T) { t.Error("boom: the disk did not boot") }
func TestSkipAllowed(t *testing.T) { t.Skip("needs the bench machine") }
func TestSkipOther(t *testing.T) { t.Skip("needs qemu: install qemu-system-x86") }
func TestParent(t *testing.T) {
	t.Run("child", func(t *testing.T) { t.Skip("child skipped: needs fuse3") })
	t.Run("ok", func(t *testing.T) {})
}
`,
	}
	for name, text := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	cmd := exec.Command(goBin, "test", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	out, _ := cmd.Output() // fails: a test fails
	require.Contains(t, string(out), `"Action":"fail"`)
	return out
}

func TestSummary(t *testing.T) {
	stream := sampleRun(t)
	allow, err := parseAllowList(strings.NewReader(`
# comment
example.com/sample TestSkipAllowed   # bench only
example.com/sample TestPar*          # subtests follow their parent
`), "allow")
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		strict bool
		allow  allowList
		want   []string
		absent []string
	}{
		{"local run", false, nil,
			[]string{"tests: 3 passed, 1 failed, 3 skipped", "boom: the disk did not boot",
				"example.com/sample TestSkipOther: sample_test.go:8: needs qemu: install qemu-system-x86",
				"example.com/sample TestParent/child: sample_test.go:10: child skipped: needs fuse3",
				"FAIL example.com/sample", "failed (1):"},
			[]string{"NOT ALLOWED"}},
		{"CI with allow-list", true, allow,
			[]string{"[allowed: bench only]", "[allowed: subtests follow their parent]",
				"TestSkipOther: sample_test.go:8: needs qemu: install qemu-system-x86  [NOT ALLOWED in CI",
				"1 skip(s) not on the allow-list"},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, log bytes.Buffer
			s := newSummary(&out, &log, tc.allow, tc.strict)
			require.NoError(t, s.read(bytes.NewReader(stream)))
			assert.False(t, s.report(), "a failed test fails the run")
			for _, w := range tc.want {
				assert.Contains(t, out.String(), w)
			}
			for _, w := range tc.absent {
				assert.NotContains(t, out.String(), w)
			}
			assert.Contains(t, log.String(), "=== RUN   TestPass", "the log is go test -v's text")
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			assert.Regexp(t, `^tests: \d+ passed, \d+ failed, \d+ skipped$`, lines[len(lines)-1], "closing line")
		})
	}
}

func TestSummaryNoTests(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out, &bytes.Buffer{}, nil, true)
	require.NoError(t, s.read(strings.NewReader("go: warning: nothing\n")))
	assert.False(t, s.report(), "a run with no test is no success")
	assert.Contains(t, out.String(), "no test ran")
	assert.Contains(t, out.String(), "go: warning: nothing", "non-JSON lines pass through")
}

func TestParseAllowList(t *testing.T) {
	for _, tc := range []struct{ text, err string }{
		{"pkg TestX  # why", ""},
		{"pkg TestX", "want PACKAGE TEST"},
		{"pkg  # why", "want PACKAGE TEST"},
		{"pkg Test[  # why", "syntax error"},
	} {
		_, err := parseAllowList(strings.NewReader(tc.text), "f")
		if tc.err == "" {
			assert.NoError(t, err, tc.text)
		} else {
			assert.ErrorContains(t, err, tc.err, tc.text)
		}
	}
	l, err := parseAllowList(strings.NewReader("a TestX # x\na TestY/sub # y"), "f")
	require.NoError(t, err)
	assert.Equal(t, "x", l.reason("a", "TestX/deep/er"))
	assert.Equal(t, "y", l.reason("a", "TestY/sub"))
	assert.Empty(t, l.reason("a", "TestY"))
	assert.Empty(t, l.reason("b", "TestX"))
}

func FuzzParseAllowList(f *testing.F) {
	f.Add("pkg TestX  # why\n# c\n\nq T* # z")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseAllowList(strings.NewReader(s), "f")
		if err == nil {
			for _, a := range l {
				_ = l.reason(a.pkg, a.test)
			}
		}
	})
}
