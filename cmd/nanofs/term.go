package main

import (
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether f is an interactive terminal, so that pipelines
// and CI logs never receive progress lines rewritten in place.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
