package resolve_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/resolve"
)

// TestNodeSharedBuiltins: Debian's node reads some JavaScript builtins from
// /usr/share/nodejs at start. The plan must carry exactly the ones libnode
// names, which binutils' strings finds independently.
func TestNodeSharedBuiltins(t *testing.T) {
	if _, err := exec.LookPath("strings"); err != nil {
		t.Skip("needs strings (apt-get install binutils)")
	}
	root := testimage.DebianRootfsWith(t, "nodejs", "python3", "redis-server")
	plan, err := resolve.Resolve(os.DirFS(root), resolve.Config{}, resolve.WithEntry("/usr/bin/node"))
	require.NoError(t, err)

	var libnode string
	for _, o := range plan.Objects {
		if strings.HasPrefix(o.Soname, "libnode.so") {
			libnode = o.File
		}
	}
	require.NotEmpty(t, libnode, "node loads libnode")
	out, err := exec.Command("strings", "-n", "8", filepath.Join(root, libnode)).Output()
	require.NoError(t, err)
	var want []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "/usr/share/nodejs/") {
			want = append(want, line)
		}
	}
	require.NotEmpty(t, want, "Debian's libnode names its shared builtins")

	var got []string
	for _, e := range plan.Entries {
		if strings.HasPrefix(e.Path, "/usr/share/nodejs/") && e.Kind == resolve.KindFile {
			got = append(got, e.Path)
			assert.Contains(t, e.Reason, "libnode")
		}
	}
	assert.ElementsMatch(t, want, got)
}
