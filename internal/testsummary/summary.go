package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action     string
	Package    string
	Test       string
	Elapsed    float64
	Output     string
	ImportPath string // build-output and build-fail
}

// result is a finished test.
type result struct {
	pkg, test, action string
	elapsed           float64
	output            []string
}

type summary struct {
	out, log io.Writer
	allow    allowList
	strict   bool
	verbose  bool // echo all output as it comes (go test -v), not a line per test

	buffers  map[string][]string // output so far, by package+test (test "" for the package itself)
	results  []result
	pkgs     map[string]string // package -> pass/fail
	failures []string          // packages that failed outside any test (build, panic, timeout)
	module   string
}

func newSummary(out, log io.Writer, allow allowList, strict bool) *summary {
	return &summary{out: out, log: log, allow: allow, strict: strict,
		buffers: map[string][]string{}, pkgs: map[string]string{}}
}

func key(pkg, test string) string { return pkg + "\x00" + test }

// read consumes the stream, printing as tests finish.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not an event: go's own messages (a vet or setup error) pass through.
			fmt.Fprintln(s.out, string(line))
			fmt.Fprintln(s.log, string(line))
			continue
		}
		s.handle(e)
	}
	return sc.Err()
}

func (s *summary) handle(e event) {
	switch e.Action {
	case "build-output":
		s.buffers[key(e.ImportPath, "build")] = append(s.buffers[key(e.ImportPath, "build")], e.Output)
		fmt.Fprint(s.log, e.Output)
	case "build-fail":
		s.failures = append(s.failures, e.ImportPath+": build failed")
		fmt.Fprintf(s.out, "BUILD FAIL %s\n%s", e.ImportPath, strings.Join(s.buffers[key(e.ImportPath, "build")], ""))
	case "output":
		k := key(e.Package, e.Test)
		s.buffers[k] = append(s.buffers[k], e.Output)
		fmt.Fprint(s.log, e.Output)
		if s.verbose {
			fmt.Fprint(s.out, e.Output)
		}
	case "pass", "fail", "skip":
		k := key(e.Package, e.Test)
		out := s.buffers[k]
		delete(s.buffers, k)
		if e.Test == "" {
			s.finishPackage(e, out)
			return
		}
		res := result{pkg: e.Package, test: e.Test, action: e.Action, elapsed: e.Elapsed, output: out}
		s.results = append(s.results, res)
		if s.verbose {
			return
		}
		fmt.Fprintf(s.out, "%-4s %7.2fs  %s  %s\n", strings.ToUpper(e.Action), e.Elapsed, s.short(e.Package), e.Test)
		if e.Action == "fail" && !strings.Contains(e.Test, "/") {
			// A failed subtest's output is part of its parent's; print once, at the top.
			s.printFailure(e.Package, e.Test)
		}
	}
}

// printFailure prints the output of a failed top-level test and its subtests.
func (s *summary) printFailure(pkg, test string) {
	for _, r := range s.results {
		if r.pkg == pkg && (r.test == test || strings.HasPrefix(r.test, test+"/")) && r.action == "fail" {
			fmt.Fprint(s.out, indent(r.output))
		}
	}
}

func (s *summary) finishPackage(e event, out []string) {
	if e.Action == "skip" { // no test files
		return
	}
	s.pkgs[e.Package] = e.Action
	if s.module == "" {
		s.module = e.Package
	}
	if e.Action == "fail" {
		// Output outside any test (a panic, a timeout, a failed TestMain)
		// fails the package even when every test passed.
		var own []string
		for _, l := range out {
			t := strings.TrimSpace(l)
			if t != "" && t != "FAIL" && t != "PASS" && !strings.HasPrefix(t, "FAIL\t") && !strings.HasPrefix(t, "ok ") {
				own = append(own, l)
			}
		}
		if len(own) > 0 {
			if !s.verbose {
				fmt.Fprint(s.out, indent(own))
			}
			s.failures = append(s.failures, s.short(e.Package)+": "+strings.TrimSpace(own[len(own)-1]))
		}
	}
	fmt.Fprintf(s.out, "%s %s %.1fs\n", map[string]string{"pass": "ok  ", "fail": "FAIL"}[e.Action], s.short(e.Package), e.Elapsed)
}

func indent(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		if strings.HasPrefix(l, "=== ") {
			continue
		}
		b.WriteString("    " + l)
		if !strings.HasSuffix(l, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// short drops the module path common to every package.
func (s *summary) short(pkg string) string {
	if i := strings.Index(pkg, "/nanofs/nanofs/"); i >= 0 {
		return pkg[i+len("/nanofs/nanofs/"):]
	}
	return pkg
}

// skipReason is what the test said before skipping: its own output lines
// without the framework's RUN/SKIP lines.
func skipReason(out []string) string {
	var parts []string
	for _, l := range out {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	r := strings.Join(parts, " / ")
	if len(r) > 300 {
		r = r[:297] + "..."
	}
	if r == "" {
		r = "(no reason given)"
	}
	return r
}

// report prints the closing screen and says whether the run is a success.
func (s *summary) report() bool {
	var passed, failed, skipped int
	var skips, fails, badSkips []string
	for _, r := range s.results {
		name := s.short(r.pkg) + " " + r.test
		switch r.action {
		case "pass":
			passed++
		case "fail":
			failed++
			fails = append(fails, fmt.Sprintf("%s (%.1fs)", name, r.elapsed))
		case "skip":
			skipped++
			why := s.allow.reason(s.short(r.pkg), r.test)
			line := name + ": " + skipReason(r.output)
			if why != "" {
				line += "  [allowed: " + why + "]"
			} else if s.strict {
				line += "  [NOT ALLOWED in CI: install what it needs, or add it to the allow-list with a reason]"
				badSkips = append(badSkips, name)
			}
			skips = append(skips, line)
		}
	}
	sort.Strings(skips)
	fmt.Fprintln(s.out)
	fmt.Fprintln(s.out, "==================== test summary ====================")
	okPkgs, failPkgs := 0, 0
	for _, v := range s.pkgs {
		if v == "pass" {
			okPkgs++
		} else {
			failPkgs++
		}
	}
	fmt.Fprintf(s.out, "packages: %d ok, %d failed\n", okPkgs, failPkgs)
	if len(skips) > 0 {
		fmt.Fprintf(s.out, "skipped (%d):\n", len(skips))
		for _, l := range skips {
			fmt.Fprintln(s.out, "  "+l)
		}
	}
	for _, f := range s.failures {
		fails = append(fails, f)
	}
	if len(fails) > 0 {
		fmt.Fprintf(s.out, "failed (%d):\n", len(fails))
		for _, l := range fails {
			fmt.Fprintln(s.out, "  "+l)
		}
	}
	if len(badSkips) > 0 {
		fmt.Fprintf(s.out, "%d skip(s) not on the allow-list fail this run (CI)\n", len(badSkips))
	}
	if passed+failed+skipped == 0 {
		fmt.Fprintln(s.out, "no test ran")
	}
	fmt.Fprintf(s.out, "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return failed == 0 && len(s.failures) == 0 && len(badSkips) == 0 && passed > 0
}

// allowList maps "package test-pattern" to why that test may skip.
type allowList []allowed

type allowed struct{ pkg, test, why string }

func readAllowList(p string) (allowList, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("allow-list: %w", err)
	}
	defer f.Close()
	return parseAllowList(f, p)
}

func parseAllowList(r io.Reader, name string) (allowList, error) {
	var l allowList
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, why, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 || strings.TrimSpace(why) == "" {
			return nil, fmt.Errorf("%s:%d: want PACKAGE TEST  # why it may skip in CI", name, n)
		}
		if _, err := path.Match(fields[1], ""); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		l = append(l, allowed{fields[0], fields[1], strings.TrimSpace(why)})
	}
	return l, sc.Err()
}

// reason returns why the test may skip, "" when it may not. A subtest is
// allowed with its parent.
func (l allowList) reason(pkg, test string) string {
	for _, a := range l {
		if a.pkg != pkg {
			continue
		}
		for t := test; t != ""; {
			if ok, _ := path.Match(a.test, t); ok {
				return a.why
			}
			i := strings.LastIndex(t, "/")
			if i < 0 {
				break
			}
			t = t[:i]
		}
	}
	return ""
}
