package resolve

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOracleDebian compares, for every ELF executable and shared library
// (of this machine) under /usr/bin, /usr/sbin and /usr/lib of a Debian
// rootfs with nodejs, python3 and redis-server, the libraries Closure
// finds with what ldd prints in a chroot of that rootfs. Both sides'
// paths are canonicalised inside the root (ldd's by readlink -f in the
// chroot); the vDSO is not a file and is left out.
func TestOracleDebian(t *testing.T) {
	root := testimage.DebianRootfsWith(t, "nodejs", "python3", "redis-server")
	machine, err := MachineForArch(runtime.GOARCH)
	require.NoError(t, err)

	files, counts := dynamicELFFiles(t, root, machine)
	t.Logf("under /usr/bin, /usr/sbin, /usr/lib: %d regular files, %d not ELF, %d ELF of another class or machine; compared: %d dynamically linked, %d without interpreter or libraries",
		counts.regular, counts.notELF, counts.foreign, len(files)-counts.static, counts.static)
	require.NotEmpty(t, files)

	start := time.Now()
	ldd := lddBatch(t, root, files)
	t.Logf("ldd in a chroot: %v", time.Since(start).Round(time.Millisecond))
	var all []string
	for _, res := range ldd {
		all = append(all, res.Found...)
	}
	canon := readlinkBatch(t, root, all)

	start = time.Now()
	r := NewResolver(os.DirFS(root))
	var differ []string
	for _, file := range files {
		want, ok := ldd[file]
		require.True(t, ok, "ldd printed nothing for %s", file)
		if len(want.Errors) > 0 {
			differ = append(differ, fmt.Sprintf("%s: ldd failed: %s", file, strings.Join(want.Errors, "; ")))
			continue
		}
		wantFiles := []string{}
		for _, p := range want.Found {
			wantFiles = append(wantFiles, canon[p])
		}
		wantFiles = uniqueSorted(wantFiles)
		plan, err := r.Closure(file, WithoutExtras(), WithAllowMissing())
		if err != nil {
			differ = append(differ, fmt.Sprintf("%s: %v", file, err))
			continue
		}
		got := uniqueSorted(libraryFiles(plan))
		if want.Static {
			wantFiles = []string{}
		}
		if gotPaths := uniqueSorted(libraryPaths(plan)); !want.Static && !assert.ObjectsAreEqual(want.Found, gotPaths) {
			differ = append(differ, fmt.Sprintf("%s: paths as opened:\n  ldd:     %v\n  resolve: %v", file, want.Found, gotPaths))
		}
		if !assert.ObjectsAreEqual(wantFiles, got) || !assert.ObjectsAreEqual(nilIfEmpty(want.Missing), nilIfEmpty(missingNames(plan))) {
			differ = append(differ, fmt.Sprintf("%s:\n  ldd:     %v missing %v\n  resolve: %v missing %v",
				file, wantFiles, want.Missing, got, missingNames(plan)))
		}
	}
	t.Logf("resolve: %v; compared %d binaries with ldd: %d differ", time.Since(start).Round(time.Millisecond), len(files), len(differ))
	for _, d := range differ {
		t.Error(d)
	}
}

type elfCounts struct{ regular, notELF, foreign, static int }

// dynamicELFFiles lists the image paths of the ELF files of the machine
// under the usual dirs, counting those linked statically (no PT_INTERP, no
// DT_NEEDED) and what is left out.
func dynamicELFFiles(t *testing.T, root string, machine elf.Machine) ([]string, elfCounts) {
	var files []string
	var c elfCounts
	for _, dir := range []string{"usr/bin", "usr/sbin", "usr/lib"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			c.regular++
			f, err := elf.Open(p)
			if err != nil {
				c.notELF++
				return nil
			}
			defer f.Close()
			if f.Class != elf.ELFCLASS64 || f.Machine != machine {
				c.foreign++
				return nil
			}
			interp := false
			for _, prog := range f.Progs {
				interp = interp || prog.Type == elf.PT_INTERP
			}
			libs, _ := f.ImportedLibraries()
			if !interp && len(libs) == 0 {
				c.static++ // compared too: ldd must say "statically linked"
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, "/"+filepath.ToSlash(rel))
			return nil
		})
		require.NoError(t, err)
	}
	sort.Strings(files)
	return files, c
}

// inChroot runs argv inside a chroot of root (made by the child itself),
// feeding it stdin, and returns its output.
func inChroot(root, stdin string, argv ...string) (string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%v: %w: %s", argv, err, stderr.String())
	}
	return string(out), nil
}

// lddBatch runs the rootfs's own ldd on every file: one shell loop per
// CPU, each over its share of the files.
func lddBatch(t *testing.T, root string, files []string) map[string]lddResult {
	const script = `while IFS= read -r f; do printf '=== %s\n' "$f"; /usr/bin/ldd "$f" 2>&1; done`
	shells := max(1, min(runtime.NumCPU(), 4))
	outs := make([]string, shells)
	errs := make([]error, shells)
	var wg sync.WaitGroup
	for i := range shells {
		var share []string
		for j := i; j < len(files); j += shells {
			share = append(share, files[j])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = inChroot(root, strings.Join(share, "\n")+"\n", "/bin/sh", "-c", script)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	res := map[string]lddResult{}
	var cur string
	var buf strings.Builder
	flush := func() {
		if cur != "" {
			res[cur] = parseLdd(buf.String())
		}
		buf.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(strings.Join(outs, "")))
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "=== "); ok {
			flush()
			cur = f
			continue
		}
		buf.WriteString(line + "\n")
	}
	flush()
	return res
}

// readlinkBatch canonicalises paths with readlink -f inside the chroot.
func readlinkBatch(t *testing.T, root string, paths []string) map[string]string {
	paths = uniqueSorted(append([]string(nil), paths...))
	out := map[string]string{}
	for start := 0; start < len(paths); start += 256 {
		chunk := paths[start:min(start+256, len(paths))]
		printed, err := inChroot(root, "", append([]string{"/usr/bin/readlink", "-f", "--"}, chunk...)...)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSuffix(printed, "\n"), "\n")
		require.Len(t, lines, len(chunk))
		for i, p := range chunk {
			out[p] = lines[i]
		}
	}
	return out
}
