package demo

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeBlock is a shell block of README.md marked runnable by an HTML
// comment on the line before its fence:
//
//	<!-- runnable -->         run in a fresh empty directory
//	<!-- runnable: repo -->   run in the checkout (install lines)
//
// In a block whose commands start with "$ ", the other lines are output the
// commands must print (each line, in any order).
type readmeBlock struct {
	line    int // of the fence, 1-based
	inRepo  bool
	script  []string
	outputs []string
}

func readmeBlocks(t *testing.T, readme string) []readmeBlock {
	t.Helper()
	f, err := os.Open(readme)
	require.NoError(t, err)
	defer f.Close()
	var blocks []readmeBlock
	var cur *readmeBlock
	marked, inRepo := false, false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur != nil && strings.HasPrefix(trimmed, "```"):
			prompted := false
			for _, l := range cur.script {
				prompted = prompted || strings.HasPrefix(l, "$ ")
			}
			if prompted {
				var cmds []string
				for _, l := range cur.script {
					if c, ok := strings.CutPrefix(l, "$ "); ok {
						cmds = append(cmds, c)
					} else if strings.TrimSpace(l) != "" {
						cur.outputs = append(cur.outputs, strings.TrimSpace(l))
					}
				}
				cur.script = cmds
			}
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.script = append(cur.script, line)
		case strings.HasPrefix(trimmed, "<!-- runnable"):
			marked, inRepo = true, strings.Contains(trimmed, "runnable: repo")
		case marked && strings.HasPrefix(trimmed, "```"):
			cur = &readmeBlock{line: n, inRepo: inRepo}
			marked = false
		case trimmed != "":
			marked = false
		}
	}
	require.NoError(t, sc.Err())
	return blocks
}

// TestReadmeRunnable runs the README's runnable blocks as a new user would
// type them, in order, with the nanofs binary first in PATH.
func TestReadmeRunnable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's commands (builds nanofs); skipped under -short")
	}
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	blocks := readmeBlocks(t, filepath.Join(repo, "README.md"))
	require.NotEmpty(t, blocks, "README.md marks no block runnable")
	bin := nanofsBinary(t)
	binDir := filepath.Join(t.TempDir(), "bin")
	require.NoError(t, os.MkdirAll(binDir, 0o755))
	require.NoError(t, os.Symlink(bin, filepath.Join(binDir, "nanofs")))
	home := t.TempDir()
	work := t.TempDir()
	env := append(os.Environ(),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"XDG_CACHE_HOME="+filepath.Join(home, "cache"),
	)
	for _, b := range blocks {
		dir := work
		if b.inRepo {
			dir = repo
		}
		script := "set -euo pipefail\n" + strings.Join(b.script, "\n") + "\n"
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir, cmd.Env = dir, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		require.NoError(t, err, "README.md:%d:\n%s\noutput:\n%s", b.line, script, out.String())
		for _, want := range b.outputs {
			assert.Contains(t, out.String(), want, "README.md:%d: the block says it prints this", b.line)
		}
		say(t, "README.md:%d ran: %s", b.line, strings.Join(b.script, "; "))
	}
}
