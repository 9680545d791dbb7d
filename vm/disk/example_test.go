package disk_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/disk"
	"github.com/nanofs/nanofs/vm/kernel"
	"github.com/nanofs/nanofs/vm/launch"
)

// Build a bootable disk from a host directory and boot it.
func Example() {
	ctx := context.Background()
	k, err := kernel.FindKernel() // --kernel/--boot, NANOFS_KERNEL/NANOFS_BOOT, cache, ~/.ops
	if err != nil {
		fmt.Println(err)
		return
	}
	fill := func(ctx context.Context, w *tfs.Writer) error {
		// Stream entries in any way: AddFile, Symlink, Mkdir, AddFS...
		return w.AddFS(ctx, os.DirFS("rootfs"), nil)
	}
	_, err = disk.CreateDisk(ctx, "app.img", fill,
		disk.WithKernel(k),
		disk.WithManifest(disk.Manifest{Program: "/bin/app", Arguments: []string{"/bin/app", "--serve"}}),
		disk.WithSeed([]byte("app v1")))
	if err != nil {
		fmt.Println(err)
		return
	}
	code, err := launch.Run(ctx, "app.img", launch.WithPorts(launch.PortForward{Host: 8080, Guest: 80}))
	fmt.Println(code, err)
}
