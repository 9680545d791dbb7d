package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// Images shaped like Docker Hub's boot with the verbs a user types, with
// no --entry and no --include, and print what `docker run` prints.

func skipUnlessBoot(t *testing.T) {
	t.Helper()
	if len(kernelFlags()) != 0 {
		t.Skip("booting needs a Nanos kernel: set NANOFS_KERNEL and NANOFS_BOOT to kernel.img and boot.img (see `nanofs kernel fetch`)")
	}
	if testing.Short() {
		t.Skip("builds the Debian-node image; skipped with -short")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("needs qemu-system-x86_64 (Debian/Ubuntu: apt-get install qemu-system-x86)")
	}
}

// runConsole runs `nanofs ARGS...` and returns the console output.
func runConsole(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := run(ctx, args, &stdout, &stderr)
	t.Logf("nanofs %q:\nconsole:\n%s\nstderr:\n%s", args, stdout.String(), stderr.String())
	require.Equal(t, 0, code, stderr.String())
	return stdout.String()
}

// TestRunNodeImageDefaultEntrypoint: the official node image's shape
// (ENTRYPOINT ["docker-entrypoint.sh"], CMD ["node"]) runs a local script
// as `docker run IMAGE hi.js` does: the wrapper is evaluated at build time
// and its final exec (node hi.js) is the program. Failed on main with
// "docker-entrypoint.sh: 4: Cannot fork".
func TestRunNodeImageDefaultEntrypoint(t *testing.T) {
	skipUnlessBoot(t)
	spec := testimage.DebianNodeSpec(t)
	reg := testimage.StartDockerRegistry(t)
	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "hi.js"), []byte(`console.log("hi from Nanos!");`+"\n"), 0o644))
	t.Chdir(work)
	for _, enc := range []testimage.Encoding{testimage.Gzip, testimage.Zstd, testimage.EStargz} {
		t.Run(enc.String(), func(t *testing.T) {
			ref := reg.Push(t, "docker/node-"+enc.String(), spec.Image(t, enc)).String()
			out := runConsole(t, "run", "--cache-dir", t.TempDir(), "--memory", "1G", "--accel", "tcg", ref, "--", "hi.js")
			assert.Contains(t, out, "hi from Nanos!")
			assert.NotContains(t, out, "Cannot fork")
		})
	}
}

// TestRunImageWithoutEnv: an image whose config has no Env at all (as
// `crane append` makes) still gets an environment; on main Nanos halted
// ("cannot get from unknown value") as soon as the program read it.
func TestRunImageWithoutEnv(t *testing.T) {
	skipUnlessBoot(t)
	spec := *testimage.DebianNodeSpec(t)
	spec.Config = v1.Config{Cmd: []string{"node", "-e", `console.log("HOME=" + process.env.HOME + " HOSTNAME=" + process.env.HOSTNAME + " PATH=" + process.env.PATH)`}}
	reg := testimage.StartDockerRegistry(t)
	ref := reg.Push(t, "docker/noenv", spec.Image(t, testimage.EStargz)).String()
	out := runConsole(t, "run", "--cache-dir", t.TempDir(), "--memory", "1G", "--accel", "tcg", ref)
	assert.Contains(t, out, "HOME=/root HOSTNAME=nanos PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

// TestRunResolvesThroughDNS: `getent hosts NAME` is answered by a DNS
// server on the host's loopback (QEMU user networking reaches it at
// 10.0.2.2), named with --dns, although the image ships the resolv.conf of
// the machine that built it (which main kept, ignoring --dns). The image's
// default entrypoint (the node wrapper) execs getent as `docker run` would.
func TestRunResolvesThroughDNS(t *testing.T) {
	skipUnlessBoot(t)
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("needs dnsmasq (Debian/Ubuntu: apt-get install dnsmasq-base)")
	}
	spec := testimage.DebianNodeSpec(t)
	reg := testimage.StartDockerRegistry(t)
	encodings := []testimage.Encoding{testimage.Gzip, testimage.Zstd, testimage.EStargz}
	disks := map[testimage.Encoding]string{}
	for _, enc := range encodings {
		ref := reg.Push(t, "docker/dns-"+enc.String(), spec.Image(t, enc)).String()
		disks[enc] = filepath.Join(t.TempDir(), "dns.img")
		runConsole(t, "build", "--cache-dir", t.TempDir(), ref, "--dns", "10.0.2.2", "-o", disks[enc], "-a", "getent", "-a", "hosts", "-a", "nanofs-test.example")
	}

	// Port 53 on the loopback is the only one a guest's resolver can use:
	// take turns with other tests on this machine.
	unlock := lockDNSPort(t)
	defer unlock()
	cmd := exec.Command(dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port=53", "--user=root",
		"--address=/nanofs-test.example/192.0.2.77", "--log-queries", "--log-facility=-")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Logf("dnsmasq:\n%s", logs.String())
	}()
	time.Sleep(300 * time.Millisecond)

	for _, enc := range encodings {
		t.Run(enc.String(), func(t *testing.T) {
			out := runConsole(t, "run", "--accel", "tcg", disks[enc])
			assert.Regexp(t, `192\.0\.2\.77\s+nanofs-test\.example`, out)
		})
	}
}

func lockDNSPort(t *testing.T) func() {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "nanofs-test-locks")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f, err := os.OpenFile(filepath.Join(dir, "dns53.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	require.NoError(t, err)
	return func() { f.Close() }
}

// TestRunRuntimes: language runtimes find the files no ELF header names
// (a Python standard library and its extension modules, Perl's @INC, Ruby's
// load path, PHP's extensions, a JDK's runtime) with no --include; main
// needed --include /usr/lib/python3.11 and the like. The image is Debian
// with Debian's runtimes and curl, no Entrypoint, CMD ["bash"]: the
// arguments replace the CMD.
func TestRunRuntimes(t *testing.T) {
	skipUnlessBoot(t)
	spec := testimage.DebianRuntimesSpec(t)
	reg := testimage.StartDockerRegistry(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{name: "python", args: []string{"python3", "-c", "import json, ssl, sqlite3; print('python ok', json.dumps([ssl.OPENSSL_VERSION[:7], sqlite3.sqlite_version_info[0]]))"},
			want: `python ok ["OpenSSL", 3]`},
		{name: "perl", args: []string{"perl", "-MJSON::PP", "-e", `print "perl ok ", JSON::PP->new->canonical->encode({a => [1, 2]}), "\n"`},
			want: `perl ok {"a":[1,2]}`},
		{name: "ruby", args: []string{"ruby", "-rjson", "-e", `puts "ruby ok " + JSON.generate({"a" => [1, 2]})`},
			want: `ruby ok {"a":[1,2]}`},
		{name: "php", args: []string{"php", "-r", `echo "php ok ", json_encode(["a" => [1, 2]]), PHP_EOL;`},
			want: `php ok {"a":[1,2]}`},
		{name: "java", args: []string{"java", "-version"}, want: "OpenJDK 64-Bit Server VM"},
		{name: "curl", args: []string{"curl", "--version"}, want: "Protocols:"},
	}
	for _, enc := range []testimage.Encoding{testimage.Gzip, testimage.Zstd, testimage.EStargz} {
		t.Run(enc.String(), func(t *testing.T) {
			ref := reg.Push(t, "docker/runtimes-"+enc.String(), spec.Image(t, enc)).String()
			cache := t.TempDir()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					out := runConsole(t, append([]string{"run", "--cache-dir", cache, "--memory", "1G", "--accel", "tcg", ref, "--"}, tc.args...)...)
					assert.Contains(t, out, tc.want)
				})
			}
		})
	}
}

// TestRunDiskWithArguments: `nanofs run DISK -- ARGS` runs the disk's
// program with new arguments, as the README's first lines promise, on a
// copy: the disk itself is untouched. Main refused ("fixed when it was
// built").
func TestRunDiskWithArguments(t *testing.T) {
	skipUnlessBoot(t)
	spec := testimage.DebianNodeSpec(t)
	reg := testimage.StartDockerRegistry(t)
	ref := reg.Push(t, "docker/disk-args", spec.Image(t, testimage.EStargz)).String()
	disk := filepath.Join(t.TempDir(), "node.img")
	runConsole(t, "build", "--cache-dir", t.TempDir(), ref, "-o", disk)
	before, err := os.ReadFile(disk)
	require.NoError(t, err)

	out := runConsole(t, "run", "--memory", "1G", "--accel", "tcg", disk, "--", "-e", `console.log("hi from " + process.argv.length + " args")`)
	assert.Contains(t, out, "hi from 1 args")
	after, err := os.ReadFile(disk)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(before, after), "the disk is unchanged")
}

// TestRunOfficialNodeImage: Docker Hub's node:16.3.0 shape, with Node's
// official build (not Debian's), boots with no --entry and no --include in
// every encoding: `nanofs run IMAGE -- hi.js` prints what `docker run
// IMAGE hi.js` prints, and npm (a #!/usr/bin/env node script inside
// node_modules) runs too.
func TestRunOfficialNodeImage(t *testing.T) {
	skipUnlessBoot(t)
	spec := testimage.OfficialNodeSpec(t)
	reg := testimage.StartDockerRegistry(t)
	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "hi.js"), []byte(`console.log("hi from Nanos!", process.version);`+"\n"), 0o644))
	t.Chdir(work)
	for _, enc := range []testimage.Encoding{testimage.Gzip, testimage.Zstd, testimage.EStargz} {
		t.Run(enc.String(), func(t *testing.T) {
			ref := reg.Push(t, "docker/official-node-"+enc.String(), spec.Image(t, enc)).String()
			cache := t.TempDir()
			out := runConsole(t, "run", "--cache-dir", cache, "--memory", "1G", "--accel", "tcg", ref, "--", "hi.js")
			assert.Contains(t, out, "hi from Nanos! v"+testimage.OfficialNodeVersion)
			if enc == testimage.EStargz {
				out = runConsole(t, "run", "--cache-dir", cache, "--memory", "1G", "--accel", "tcg", ref, "--", "npm", "--version")
				assert.Contains(t, out, "7.15.1")
			}
		})
	}
}
