package progress

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/vm/build"
)

func TestProgressBars(t *testing.T) {
	var out bytes.Buffer
	pr := New(context.Background(), &out, 120)
	pr.Show(build.Progress{Phase: build.PhaseOpen, Image: "localhost:5000/app:1", Fetched: 2048})
	pr.Show(build.Progress{Phase: build.PhaseResolve})
	pr.Show(build.Progress{Phase: build.PhaseWrite, Files: 4, Written: 4, Layers: []lazy.LayerStats{
		{Digest: "sha256:0123456789abcdef", Size: 3 << 20, Bytes: 1 << 20}}})
	pr.Show(build.Progress{Phase: build.PhaseDone})
	s := out.String()
	assert.Contains(t, s, "opening localhost:5000/app:1")
	assert.NotContains(t, s, "/ 0.0 b", "no total shown before it is known")
	assert.Contains(t, s, "layer 0123456789ab")
	assert.Contains(t, s, "1.0 MiB / 1.0 MiB", "a bar completes at what it reached")
	assert.Contains(t, s, "files written")
	assert.Contains(t, s, "4 / 4")
	assert.NotContains(t, s, "\r\033[K", "drawn by mpb, not by hand")

	out.Reset()
	b := pr.Bytes("Nanos kernel", 0)
	b.SetTotal(10 << 20)
	b.Set(10 << 20)
	pr.Done()
	assert.Contains(t, out.String(), "Nanos kernel")
	assert.Contains(t, out.String(), "10.0 MiB / 10.0 MiB")
}

// Without a writer (or without bars at all) nothing is drawn, and the bars
// cost nothing.
func TestProgressNowhere(t *testing.T) {
	for _, pr := range []*Bars{New(context.Background(), nil, 0), nil} {
		pr.Show(build.Progress{Phase: build.PhaseOpen, Image: "x", Fetched: 1})
		b := pr.Bytes("x", 10)
		b.Set(5)
		b.SetTotal(20)
		pr.Show(build.Progress{Phase: build.PhaseDone})
		pr.Done()
	}
}

func TestShortDigest(t *testing.T) {
	assert.Equal(t, "0123456789ab", shortDigest("sha256:0123456789abcdef"))
	assert.Equal(t, "sha256:01", shortDigest("sha256:01"))
}

// Off a terminal (a buffer, a pipe, a file) there are no bars.
func TestOnTerminal(t *testing.T) {
	var buf bytes.Buffer
	assert.Nil(t, OnTerminal(&buf))
	f, err := os.CreateTemp(t.TempDir(), "log")
	require.NoError(t, err)
	defer f.Close()
	assert.Nil(t, OnTerminal(f))
}
