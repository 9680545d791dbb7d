package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/nanofs/nanofs/vm/build"
)

// Off a terminal nothing is drawn, and the bars cost nothing.
func TestProgressOffTerminal(t *testing.T) {
	var stderr bytes.Buffer
	pr := newProgress(&globals{stderr: &stderr})
	pr.Show(build.Progress{Phase: build.PhaseOpen, Image: "x", Fetched: 1})
	b := pr.Bytes("x", 10)
	b.Set(5)
	pr.Show(build.Progress{Phase: build.PhaseDone})
	pr.Done()
	assert.Empty(t, stderr.String())
}
