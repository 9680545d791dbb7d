// Command testsummary reads the event stream of `go test -json` on stdin and
// prints what a person wants from a long test run: a line per finished test,
// the full output of each failure, a line per package, and at the end one
// screen with the counts, every skip with its reason and every failure.
//
// In CI (the CI environment variable set, or -strict) a skipped test is a
// failure unless the allow-list names it: CI installs every component the
// tests need, so a skip there means a test silently stopped running.
//
//	go test -json ./... 2>&1 | go run ./internal/testsummary -allow .ci/allowed-skips -log test.log
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	allowPath := flag.String("allow", "", "file listing the tests allowed to skip in CI (PACKAGE TEST  # why)")
	strict := flag.Bool("strict", os.Getenv("CI") != "", "fail when a test not on the allow-list skips (default: when CI is set)")
	verbose := flag.Bool("v", false, "print every test's output as it comes, as go test -v does")
	logPath := flag.String("log", "", "also write the whole verbose output (as go test -v prints it) to this file")
	flag.Parse()

	var allow allowList
	if *allowPath != "" {
		var err error
		if allow, err = readAllowList(*allowPath); err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			os.Exit(2)
		}
	}
	var log io.Writer = io.Discard
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testsummary:", err)
			os.Exit(2)
		}
		defer f.Close()
		log = f
	}
	s := newSummary(os.Stdout, log, allow, *strict)
	s.verbose = *verbose
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	if !s.report() {
		os.Exit(1)
	}
}
