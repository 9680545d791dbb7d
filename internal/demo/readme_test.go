package demo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// readmeBlock is a shell block of README.md marked runnable by an HTML
// comment on the line before its fence:
//
//	<!-- runnable -->         run in a fresh empty directory
//	<!-- runnable: repo -->   run in the checkout (install lines)
//	<!-- runnable: hub -->    in a fresh directory, with Docker Hub's
//	                          node:16.3.0 served by a local mirror (an image of
//	                          its shape built here) and a Nanos kernel
//
// In a block whose commands start with "$ ", the other lines are output the
// commands must print (each line, in any order).
type readmeBlock struct {
	line    int    // of the fence, 1-based
	kind    string // "", "repo" or "hub"
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
	marked, kind := false, ""
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
			marked = true
			kind = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(trimmed, "<!-- runnable"), ":"), "-->"))
		case marked && strings.HasPrefix(trimmed, "```"):
			cur = &readmeBlock{line: n, kind: kind}
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
	bootable := os.Getenv("NANOFS_KERNEL") != "" && os.Getenv("NANOFS_BOOT") != ""
	var hubMirror string
	for _, b := range blocks {
		if b.kind == "hub" && bootable && hubMirror == "" {
			hubMirror = officialNodeMirror(t)
		}
	}
	for _, b := range blocks {
		t.Run(fmt.Sprintf("README.md:%d", b.line), func(t *testing.T) {
			dir, env := work, env
			switch b.kind {
			case "repo":
				dir = repo
			case "hub":
				if !bootable {
					t.Skip("this block boots: set NANOFS_KERNEL and NANOFS_BOOT (see `nanofs kernel fetch`)")
				}
				dir = t.TempDir()
				env = append(env, "NANOFS_REGISTRY_MIRROR="+hubMirror)
			case "":
			default:
				t.Fatalf("README.md:%d: unknown runnable kind %q", b.line, b.kind)
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
		})
	}
}

// officialNodeMirror serves an image shaped like Docker Hub's node:16.3.0
// (Node's official build, the official docker-entrypoint.sh) as
// library/node:16.3.0 from a local registry, and returns that registry's
// host for NANOFS_REGISTRY_MIRROR: `nanofs run node:16.3.0` then runs
// as written, without the internet.
func officialNodeMirror(t *testing.T) string {
	t.Helper()
	spec := testimage.OfficialNodeSpec(t) // skips under -short
	reg := registry(t)
	reg.Push(t, "library/node:16.3.0", spec.Image(t, testimage.EStargz))
	return reg.Host
}
