package resolve

import (
	"os"
	"path"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// TestWithAdded: added entries are in the plan with where they came from,
// a merged directory only what is named under it, and an added path that leads nowhere is a warning.
func TestWithAdded(t *testing.T) {
	fx := testimage.CFixtures(t)
	plan, err := Resolve(os.DirFS(fx.Root), Config{}, WithEntry(fx.Dynamic), WithAdded(
		Added{Path: path.Dir(fx.ShebangSh), Dir: true, Merged: true},
		Added{Path: fx.ShebangSh, Src: "/host/script.sh"},
		Added{Path: "/nowhere", Src: "/host/link"},
	))
	require.NoError(t, err)
	e, ok := plan.Lookup(fx.ShebangSh)
	require.True(t, ok)
	assert.Equal(t, "added from /host/script.sh", e.Reason)
	assert.Equal(t, KindFile, e.Kind)
	_, ok = plan.Lookup("/nowhere")
	assert.False(t, ok)
	assert.Contains(t, plan.Warnings, "left out the added link /nowhere: it leads to nothing in the image")
}
