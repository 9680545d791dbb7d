package tfs_test

import (
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/nanofs/nanofs/tfs"
)

func Example() {
	dir, err := os.MkdirTemp("", "tfs-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "root.img"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	w, err := tfs.NewWriter(f, tfs.WithSeed([]byte("example")), tfs.WithLabel("demo"))
	if err != nil {
		log.Fatal(err)
	}
	hello := "hello from a unikernel\n"
	for _, err := range []error{
		w.AddFile("bin/hello", int64(len(hello)), strings.NewReader(hello)),
		w.Symlink("hello", "bin/hi"),
		w.Link("bin/hello", "usr/bin/hello"),
		w.SetProgram("/bin/hi"),
		w.SetArguments("/bin/hi", "--loud"),
		w.Close(),
	} {
		if err != nil {
			log.Fatal(err)
		}
	}

	img, err := tfs.Open(f, w.Size())
	if err != nil {
		log.Fatal(err)
	}
	_ = fs.WalkDir(img, ".", func(p string, d fs.DirEntry, err error) error {
		info, _ := d.Info()
		fmt.Println(info.Mode(), info.Sys().(*tfs.FileStat).Nlink, p)
		return err
	})
	data, _ := fs.ReadFile(img, "usr/bin/hello")
	fmt.Print(string(data))
	fmt.Println(img.Manifest()["arguments"], img.Label())
	fmt.Println(tfs.Verify(f, w.Size()))
	// Output:
	// drwxrwxrwx 1 .
	// drwxrwxrwx 1 bin
	// -rwxrwxrwx 2 bin/hello
	// Lrwxrwxrwx 1 bin/hi
	// drwxrwxrwx 1 usr
	// drwxrwxrwx 1 usr/bin
	// -rwxrwxrwx 2 usr/bin/hello
	// hello from a unikernel
	// [/bin/hi --loud] demo
	// <nil>
}

// A volume written strictly sequentially, for example into a pipe: the
// data size is declared first.
func ExampleNewStreamWriter() {
	files := map[string]string{"a": "first", "b/c": "second"}
	var dataSize int64
	for _, content := range files {
		dataSize += tfs.DataSize(int64(len(content)))
	}
	var out strings.Builder
	w, err := tfs.NewStreamWriter(&out, dataSize, tfs.WithFreeSpace(0))
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{"a", "b/c"} {
		if err := w.AddFile(name, int64(len(files[name])), strings.NewReader(files[name])); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.Size(), out.Len())
	// Output: 525824 525824
}
