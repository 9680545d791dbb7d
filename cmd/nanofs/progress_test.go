package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestProgressBars(t *testing.T) {
	var out bytes.Buffer
	pr := newProgressTo(context.Background(), &out, 120)
	layer := pr.bytes("layer 0123456789ab", 0)
	layer.setTotal(3 << 20)
	layer.set(1 << 20)
	files := pr.count("files written", 4)
	files.set(4)
	pr.done()
	s := out.String()
	assert.Contains(t, s, "layer 0123456789ab")
	assert.Contains(t, s, "1.0 MiB / 1.0 MiB", "a bar completes at what it reached")
	assert.Contains(t, s, "files written")
	assert.Contains(t, s, "4 / 4")
	assert.NotContains(t, s, "\r\033[K", "drawn by mpb, not by hand")
}

// Off a terminal nothing is drawn, and the bars cost nothing.
func TestProgressOffTerminal(t *testing.T) {
	var stderr bytes.Buffer
	g := &globals{stderr: &stderr}
	pr := g.newProgress(context.Background())
	b := pr.bytes("x", 10)
	b.set(5)
	pr.watchImage(nil)
	pr.done()
	assert.Empty(t, stderr.String())
}

func TestShortDigest(t *testing.T) {
	assert.Equal(t, "0123456789ab", shortDigest("sha256:0123456789abcdef"))
	assert.Equal(t, "sha256:01", shortDigest("sha256:01"))
}
