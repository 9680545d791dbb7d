package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestVersionLine(t *testing.T) {
	code, stdout, stderr := kernelCLI(t, "--version")
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, "nanofs "+version+"\n", stdout, "one line, ending in a newline")
}
