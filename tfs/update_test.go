package tfs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUpdateRoot appends root updates to a written volume: the reader and
// the verifier see the new values over the old, other keys unchanged, and
// keys already in the log are referenced, not repeated.
func TestUpdateRoot(t *testing.T) {
	tests := []struct {
		name    string
		setArgs bool // the volume has arguments already
		updates []Tuple
		want    Tuple
	}{
		{name: "replace arguments", setArgs: true,
			updates: []Tuple{{"arguments": Strings("node", "hi.js")}},
			want:    Tuple{"arguments": Strings("node", "hi.js"), "program": String("/bin/node")}},
		{name: "new key", setArgs: false,
			updates: []Tuple{{"arguments": Strings("a")}},
			want:    Tuple{"arguments": Strings("a"), "program": String("/bin/node")}},
		{name: "twice, several keys", setArgs: true,
			updates: []Tuple{{"arguments": Strings("x")}, {"arguments": Strings("y", "z"), "cwd": String("/srv")}},
			want:    Tuple{"arguments": Strings("y", "z"), "cwd": String("/srv"), "program": String("/bin/node")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := &image{}
			w, err := NewWriter(img, WithSize(4<<20))
			require.NoError(t, err)
			add(t, w, regular("bin/node", "program"))
			require.NoError(t, w.SetProgram("/bin/node"))
			if tt.setArgs {
				require.NoError(t, w.SetArguments("node"))
			}
			require.NoError(t, w.Close())
			for _, u := range tt.updates {
				require.NoError(t, UpdateRoot(img, img.size(), u))
			}
			require.NoError(t, Verify(img, img.size()))
			f, err := Open(img, img.size())
			require.NoError(t, err)
			assert.Equal(t, tt.want, f.Manifest())
			data, err := f.ReadFile("bin/node")
			require.NoError(t, err)
			assert.Equal(t, "program", string(data))
		})
	}

	img := &image{}
	w, err := NewWriter(img, WithSize(4<<20))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.Error(t, UpdateRoot(img, img.size(), Tuple{"children": Tuple{}}))
	require.Error(t, UpdateRoot(img, img.size(), Tuple{"arguments": Buffer("x")}))
}
