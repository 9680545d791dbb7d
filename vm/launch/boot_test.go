package launch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/tfs"
	vmdisk "github.com/nanofs/nanofs/vm/disk"
	"github.com/nanofs/nanofs/vm/kernel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Boot tests run a real Nanos kernel under QEMU. They need the kernel and
// bootloader named by NANOFS_KERNEL and NANOFS_BOOT.

func nanosKernel(t testing.TB) kernel.Kernel {
	t.Helper()
	if testing.Short() {
		t.Skip("boots Nanos in QEMU; skipped under -short")
	}
	if _, err := exec.LookPath(QEMUBinary); err != nil {
		t.Skipf("needs %s (Debian/Ubuntu: apt-get install qemu-system-x86)", QEMUBinary)
	}
	kp, bp := os.Getenv(kernel.EnvKernel), os.Getenv(kernel.EnvBoot)
	if kp == "" || bp == "" {
		t.Skipf("boot tests need a Nanos kernel: set %s=/path/to/kernel.img and %s=/path/to/boot.img (for example `eval $(nanofs kernel path)` after `nanofs kernel fetch`, or the files of an ops install, ~/.ops/<version>/)", kernel.EnvKernel, kernel.EnvBoot)
	}
	k, err := kernel.FindKernel(kernel.WithKernelFiles(kp, bp))
	require.NoError(t, err)
	return k
}

const bootMarker = "nanofs-static-ok"

// bootProgram is a C program printing its arguments and an environment
// variable, then exiting with status 3.
const bootProgram = `#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	const char *v = getenv("NANOFS_TEST");
	printf("` + bootMarker + ` argc=%d arg1=%s env=%s\n", argc, argc > 1 ? argv[1] : "-", v ? v : "-");
	fflush(stdout);
	return 3;
}
`

// compileC compiles src with gcc and the given flags.
func compileC(t testing.TB, src string, flags ...string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("needs gcc (Debian/Ubuntu: apt-get install gcc libc6-dev)")
	}
	dir := t.TempDir()
	c := filepath.Join(dir, "prog.c")
	require.NoError(t, os.WriteFile(c, []byte(src), 0o644))
	out := filepath.Join(dir, "prog")
	args := append(append([]string{}, flags...), "-O2", "-o", out, c)
	b, err := exec.Command("gcc", args...).CombinedOutput()
	if err != nil {
		t.Skipf("gcc %v failed (static glibc needs libc6-dev): %v\n%s", flags, err, b)
	}
	return out
}

// hostFiles is a RootFiller copying host files to the same paths.
func hostFiles(files map[string]string) vmdisk.RootFiller {
	return func(_ context.Context, w *tfs.Writer) error {
		for name, host := range files {
			if err := vmdisk.AddHostFile(w, name, host); err != nil {
				return err
			}
		}
		return nil
	}
}

// bootDisk builds a disk (bootable, or direct-boot) holding files, runs
// it, and returns the console output and exit code.
func bootDisk(t testing.TB, k kernel.Kernel, files map[string]string, m vmdisk.Manifest, direct bool) (string, int, time.Duration) {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "boot.img")
	opts := []vmdisk.DiskOption{vmdisk.WithManifest(m), vmdisk.WithSeed([]byte(t.Name()))}
	if direct {
		opts = append(opts, vmdisk.WithoutBootloader())
	} else {
		opts = append(opts, vmdisk.WithKernel(k))
	}
	_, err := vmdisk.CreateDisk(context.Background(), disk, hostFiles(files), opts...)
	require.NoError(t, err)
	if !direct {
		b, err := os.ReadFile(disk)
		require.NoError(t, err)
		require.NoError(t, tfs.Verify(bytes.NewReader(b), int64(len(b))))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code, err := Run(ctx, disk, WithMemory(256), WithBootKernel(k), WithConsole(nil, &stdout, &stderr))
	elapsed := time.Since(start)
	require.NoError(t, err, "console:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	return stdout.String(), code, elapsed
}

func TestBootNanosStatic(t *testing.T) {
	k := nanosKernel(t)
	prog := compileC(t, bootProgram, "-static")
	m := vmdisk.Manifest{
		Program:     "/bin/prog",
		Arguments:   []string{"/bin/prog", "first-arg"},
		Environment: map[string]string{"NANOFS_TEST": "from-manifest"},
	}
	for _, direct := range []bool{false, true} {
		name := "bios"
		if direct {
			name = "direct"
		}
		t.Run(name, func(t *testing.T) {
			out, code, elapsed := bootDisk(t, k, map[string]string{"bin/prog": prog}, m, direct)
			assert.Contains(t, out, bootMarker+" argc=2 arg1=first-arg env=from-manifest\n", "console:\n%s", out)
			assert.Equal(t, 3, code, "console:\n%s", out)
			t.Logf("%s boot to exit: %v", name, elapsed)
		})
	}
}

// lddPaths lists the absolute paths of the libraries and interpreter a
// host program loads, as the host's loader reports them (ldd).
func lddPaths(t testing.TB, prog string) []string {
	t.Helper()
	out, err := exec.Command("ldd", prog).Output()
	if err != nil {
		t.Skipf("needs ldd (libc-bin): %v", err)
	}
	re := regexp.MustCompile(`(/\S+) \(0x`)
	var paths []string
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		paths = append(paths, m[1])
	}
	require.NotEmpty(t, paths, "ldd %s:\n%s", prog, out)
	return paths
}

func TestBootNanosDynamic(t *testing.T) {
	k := nanosKernel(t)
	prog := compileC(t, bootProgram)
	files := map[string]string{"bin/prog": prog}
	for _, p := range lddPaths(t, prog) {
		real, err := filepath.EvalSymlinks(p)
		require.NoError(t, err)
		files[strings.TrimPrefix(p, "/")] = real
	}
	m := vmdisk.Manifest{Program: "/bin/prog", Arguments: []string{"/bin/prog", "dyn"}}
	out, code, elapsed := bootDisk(t, k, files, m, false)
	assert.Contains(t, out, bootMarker+" argc=2 arg1=dyn env=-\n", "console:\n%s", out)
	assert.Equal(t, 3, code)
	t.Logf("boot to exit: %v", elapsed)
}

// TestBootNanosPlan is the pipeline without the registry: resolve works
// out what each fixture program needs in an image tree, WriteDisk streams
// exactly that into a disk, and Nanos boots it. Exit codes are the oracle
// for programs that print nothing (rpath, dlopen: 0 only when their
// private library or plugin was loaded).
func TestBootNanosPlan(t *testing.T) {
	k := nanosKernel(t)
	fx := testimage.CFixtures(t)
	tests := []struct {
		name    string
		program string
		opts    []resolve.Option
		output  string
		code    int
	}{
		{"dynamic glibc", fx.Dynamic, []resolve.Option{resolve.WithArgs("x")}, "hello from nanofs fixture: cos(1) = 0.5\n", 0},
		{"static", fx.Static, nil, "hello from nanofs fixture: cos(0) = 1.0\n", 0},
		{"static-pie", fx.StaticPIE, nil, "hello from nanofs fixture: cos(0) = 1.0\n", 0},
		{"rpath $ORIGIN", fx.RpathOrigin, nil, "", 0},
		{"runpath $ORIGIN", fx.RunpathOrigin, nil, "", 0},
		{"dlopen with include", fx.Dlopen, []resolve.Option{resolve.WithInclude(fx.Plugin)}, "", 0},
		// The control: without the plugin the program reports failure.
		{"dlopen without include", fx.Dlopen, nil, "", 1},
		{"#!/bin/sh script", fx.ShebangSh, []resolve.Option{resolve.WithArgs("a", "b")}, "hello from a /bin/sh script: a b\n", 0},
		// musl's stdio writes through writev, whose output this kernel
		// build drops on the console (spec §10): only the exit code counts.
		{"dynamic musl", fx.Musl, nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.program == "" {
				t.Skip("fixture not built (compiler missing)")
			}
			fsys := os.DirFS(fx.Root)
			plan, err := resolve.Resolve(fsys, resolve.Config{Entrypoint: []string{tt.program}}, tt.opts...)
			require.NoError(t, err)
			disk := filepath.Join(t.TempDir(), "plan.img")
			_, err = vmdisk.WriteDisk(context.Background(), disk, fsys, plan, vmdisk.WithKernel(k), vmdisk.WithSeed([]byte(tt.name)))
			require.NoError(t, err)
			b, err := os.ReadFile(disk)
			require.NoError(t, err)
			require.NoError(t, tfs.Verify(bytes.NewReader(b), int64(len(b))))

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code, err := Run(ctx, disk, WithMemory(256), WithConsole(nil, &stdout, &stderr))
			require.NoError(t, err, "stderr:\n%s", stderr.String())
			assert.Equal(t, tt.code, code, "console:\n%s", stdout.String())
			if tt.output != "" {
				assert.Contains(t, stdout.String(), tt.output)
			}
		})
	}
}

// netProgram accepts one TCP connection on port 80, answers it and exits.
const netProgram = `#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons(80);
	if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1)) { perror("listen"); return 1; }
	printf("listening\n");
	fflush(stdout);
	int c = accept(s, 0, 0);
	if (c < 0) { perror("accept"); return 1; }
	const char *msg = "pong from nanos\n";
	write(c, msg, strlen(msg));
	close(c);
	return 0;
}
`

// TestBootNanosNetwork checks user networking and a port forward: the
// host connects to a forwarded port and reads the guest's answer.
func TestBootNanosNetwork(t *testing.T) {
	k := nanosKernel(t)
	prog := compileC(t, netProgram, "-static")
	disk := filepath.Join(t.TempDir(), "net.img")
	_, err := vmdisk.CreateDisk(context.Background(), disk, hostFiles(map[string]string{"bin/srv": prog}),
		vmdisk.WithKernel(k), vmdisk.WithManifest(vmdisk.Manifest{Program: "/bin/srv"}))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var console, stderr syncBuffer
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := Run(ctx, disk, WithMemory(256), WithConsole(nil, &console, &stderr),
			WithPorts(PortForward{HostAddr: "127.0.0.1", Host: uint16(port), Guest: 80}))
		done <- result{code, err}
	}()
	// QEMU accepts on the forwarded port before the guest listens; retry
	// until the guest answers.
	var answer []byte
	for ctx.Err() == nil && len(answer) == 0 {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			answer, _ = io.ReadAll(c)
			c.Close()
		}
		if len(answer) == 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	r := <-done
	require.NoError(t, r.err, "console:\n%s\nstderr:\n%s", console.String(), stderr.String())
	assert.Equal(t, "pong from nanos\n", string(answer), "console:\n%s", console.String())
	assert.Equal(t, 0, r.code)
	assert.Contains(t, console.String(), "listening")
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// BenchmarkBoot measures booting the static program to its exit under
// QEMU, against a baseline measured in the same run: QEMU starting,
// SeaBIOS loading a boot sector that exits at once (the probe disk).
func BenchmarkBoot(b *testing.B) {
	k := nanosKernel(b)
	prog := compileC(b, bootProgram, "-static")
	m := vmdisk.Manifest{Program: "/bin/prog"}
	probe := filepath.Join(b.TempDir(), "probe.img")
	_, err := vmdisk.CreateDisk(context.Background(), probe, hostFiles(map[string]string{"bin/prog": prog}),
		vmdisk.WithManifest(m), vmdisk.WithKernel(kernel.Kernel{Kernel: k.Kernel, Boot: writeBootImage(b, b.TempDir(), probeStage1, 2)}))
	require.NoError(b, err)

	for _, tc := range []struct {
		name   string
		direct bool
	}{{"bios", false}, {"direct", true}} {
		disk := filepath.Join(b.TempDir(), tc.name+".img")
		opts := []vmdisk.DiskOption{vmdisk.WithManifest(m)}
		if tc.direct {
			opts = append(opts, vmdisk.WithoutBootloader())
		} else {
			opts = append(opts, vmdisk.WithKernel(k))
		}
		_, err := vmdisk.CreateDisk(context.Background(), disk, hostFiles(map[string]string{"bin/prog": prog}), opts...)
		require.NoError(b, err)
		b.Run(tc.name, func(b *testing.B) {
			var base, boot time.Duration
			for i := 0; i < b.N; i++ {
				base += timeRun(b, probe, k, 0)
				boot += timeRun(b, disk, k, 3)
			}
			b.ReportMetric(boot.Seconds()/float64(b.N), "s/boot")
			b.ReportMetric(base.Seconds()/float64(b.N), "s/baseline")
			b.ReportMetric(float64(boot)/float64(base), "x-baseline")
		})
	}
}

func timeRun(b *testing.B, disk string, k kernel.Kernel, want int) time.Duration {
	var out bytes.Buffer
	start := time.Now()
	code, err := Run(context.Background(), disk, WithMemory(256), WithBootKernel(k), WithConsole(nil, &out, &out))
	d := time.Since(start)
	require.NoError(b, err, out.String())
	if want != 0 {
		require.Equal(b, want, code, fmt.Sprintf("console:\n%s", out.String()))
	}
	return d
}
