package vm_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm"
)

// Build a bootable disk from a host directory and boot it.
func Example() {
	ctx := context.Background()
	k, err := vm.FindKernel() // --kernel/--boot, NANOFS_KERNEL/NANOFS_BOOT, cache, ~/.ops
	if err != nil {
		fmt.Println(err)
		return
	}
	fill := func(ctx context.Context, w *tfs.Writer) error {
		// Stream entries in any way: AddFile, Symlink, Mkdir, AddFS...
		return w.AddFS(ctx, os.DirFS("rootfs"), nil)
	}
	_, err = vm.CreateDisk(ctx, "app.img", fill,
		vm.WithKernel(k),
		vm.WithManifest(vm.Manifest{Program: "/bin/app", Arguments: []string{"/bin/app", "--serve"}}),
		vm.WithSeed([]byte("app v1")))
	if err != nil {
		fmt.Println(err)
		return
	}
	code, err := vm.Run(ctx, "app.img", vm.WithPorts(vm.PortForward{Host: 8080, Guest: 80}))
	fmt.Println(code, err)
}
