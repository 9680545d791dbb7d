package resolve

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func link(target string) *fstest.MapFile {
	return &fstest.MapFile{Mode: fs.ModeSymlink | 0o777, Data: []byte(target)}
}

func file(data string, mode fs.FileMode) *fstest.MapFile {
	return &fstest.MapFile{Mode: mode, Data: []byte(data)}
}

func TestLocate(t *testing.T) {
	fsys := fstest.MapFS{
		"usr/lib/libfoo.so.1.2.3": file("x", 0o644),
		"usr/lib/libfoo.so.1":     link("libfoo.so.1.2.3"),
		"usr/lib/libfoo.so":       link("/usr/lib/libfoo.so.1"),
		"lib":                     link("usr/lib"),
		"lib64":                   link("/usr/lib"),
		"etc/passwd":              file("root", 0o644),
		"a/b/escape":              link("../../../../../etc/passwd"),
		"a/b/rootlink":            link("/"),
		"x":                       link("/a/b"),
		"a/c/file":                file("c", 0o644),
		"loop1":                   link("loop2"),
		"loop2":                   link("/loop1"),
		"self":                    link("self"),
		"dangling":                link("/nowhere"),
		"empty":                   link(""),
	}
	for i := range 41 {
		fsys["chain/l"+itoa(i)] = link("l" + itoa(i+1))
	}
	fsys["chain/l41"] = file("end", 0o644)
	r := newRootFS(fsys)
	tests := []struct {
		path   string
		file   string
		links  []string // locations of the links followed
		nlinks int      // or just how many
		err    error
	}{
		{path: "/usr/lib/libfoo.so.1.2.3", file: "/usr/lib/libfoo.so.1.2.3"},
		{path: "/lib/libfoo.so", file: "/usr/lib/libfoo.so.1.2.3", links: []string{"/lib", "/usr/lib/libfoo.so", "/usr/lib/libfoo.so.1"}},
		{path: "/lib64/libfoo.so.1", file: "/usr/lib/libfoo.so.1.2.3", links: []string{"/lib64", "/usr/lib/libfoo.so.1"}},
		{path: "/../../../etc/passwd", file: "/etc/passwd"},
		{path: "/a/b/escape", file: "/etc/passwd", links: []string{"/a/b/escape"}},
		{path: "/a/b/rootlink/etc/passwd", file: "/etc/passwd", links: []string{"/a/b/rootlink"}},
		// ".." after a link is taken from where the link leads.
		{path: "/x/../c/file", file: "/a/c/file", links: []string{"/x"}},
		{path: "/x/", file: "/a/b", links: []string{"/x"}},
		{path: "/", file: "/"},
		{path: "/loop1", err: ErrSymlinkLoop},
		{path: "/self", err: ErrSymlinkLoop},
		{path: "/chain/l0", err: ErrSymlinkLoop},
		{path: "/chain/l1", file: "/chain/l41", nlinks: maxSymlinks},
		{path: "/dangling", err: fs.ErrNotExist},
		{path: "/empty", err: fs.ErrNotExist},
		{path: "/etc/passwd/x", err: errNotDir},
		{path: "/etc/passwd/", err: errNotDir},
		{path: "/etc/nothing", err: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			loc, err := r.locate(tt.path)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.True(t, absent(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.file, loc.File)
			if tt.nlinks > 0 {
				assert.Len(t, loc.Links, tt.nlinks)
				return
			}
			var links []string
			for _, l := range loc.Links {
				links = append(links, l.Path)
			}
			assert.Equal(t, tt.links, links)
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestGlob(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/ld.so.conf.d/a.conf":   file("", 0o644),
		"etc/ld.so.conf.d/b.conf":   file("", 0o644),
		"etc/ld.so.conf.d/c.txt":    file("", 0o644),
		"opt/v1/lib/x.so":           file("", 0o644),
		"opt/v2/lib/x.so":           file("", 0o644),
		"opt/current":               link("v2"),
		"usr/share/misc/file[1].so": file("", 0o644),
	}
	r := newRootFS(fsys)
	tests := []struct {
		pattern string
		want    []string
		err     bool
	}{
		{pattern: "/etc/ld.so.conf.d/*.conf", want: []string{"/etc/ld.so.conf.d/a.conf", "/etc/ld.so.conf.d/b.conf"}},
		{pattern: "/opt/*/lib/x.so", want: []string{"/opt/current/lib/x.so", "/opt/v1/lib/x.so", "/opt/v2/lib/x.so"}},
		{pattern: "/opt/current/lib/*", want: []string{"/opt/current/lib/x.so"}},
		{pattern: "/etc/none/*", want: nil},
		{pattern: "/etc/ld.so.conf.d/a.conf", want: []string{"/etc/ld.so.conf.d/a.conf"}},
		{pattern: `/usr/share/misc/file\[1\].so`, want: []string{"/usr/share/misc/file[1].so"}},
		{pattern: "/etc/[", err: true},
		{pattern: "etc/*", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := r.glob(tt.pattern)
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// entryFS is an image whose programs are copies of a real static
// executable (they need no library), with scripts and links around them.
func entryFS(t *testing.T) fstest.MapFS {
	fx := testimage.CFixtures(t)
	static, err := os.ReadFile(fx.HostPath(fx.Static))
	require.NoError(t, err)
	prog := &fstest.MapFile{Mode: 0o755, Data: static}
	return fstest.MapFS{
		"bin":                                 link("usr/bin"),
		"usr/bin/sh":                          link("dash"),
		"usr/bin/dash":                        prog,
		"usr/bin/app":                         file("not executable", 0o644),
		"usr/local/bin/app":                   prog,
		"usr/local/bin/node":                  prog,
		"usr/local/bin/docker-entrypoint.sh":  file("#!/bin/sh\nset -e\nexec \"$@\"\n", 0o755),
		"usr/local/bin/with-arg.sh":           file("#!/bin/sh -e\n", 0o755),
		"usr/local/bin/env-split.js":          file("#!/usr/bin/env -S NODE_OPTIONS=--x node --harmony\n", 0o755),
		"usr/local/bin/env-plain.js":          file("#!/usr/bin/env node\n", 0o755),
		"usr/local/bin/nested.sh":             file("#!/usr/local/bin/docker-entrypoint.sh\n", 0o755),
		"usr/local/bin/loop.sh":               file("#!/usr/local/bin/loop.sh\n", 0o755),
		"usr/local/bin/dos.sh":                file("#!/bin/sh\r\necho\r\n", 0o755),
		"usr/local/bin/not-exec.sh":           file("#!/bin/sh\n", 0o644),
		"usr/local/bin/text":                  file("hello\n", 0o755),
		"usr/local/bin/missing-interpreter":   file("#!/opt/nothing/python\n", 0o755),
		"srv/tools/run":                       prog,
		"opt/app/bin/app":                     prog,
		"opt/app/dir.d":                       &fstest.MapFile{Mode: fs.ModeDir | 0o755},
		"usr/local/sbin/app":                  &fstest.MapFile{Mode: fs.ModeDir | 0o755},
		"usr/local/bin/docker-entrypoint.d/x": file("", 0o644),
	}
}

func TestEntrypoint(t *testing.T) {
	fsys := entryFS(t)
	r := NewResolver(fsys)
	const nodeEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	tests := []struct {
		name    string
		cfg     Config
		opts    []Option
		program string
		args    []string
		scripts []string
		env     []string
	}{
		{name: "entrypoint and cmd", cfg: Config{Entrypoint: []string{"/opt/app/bin/app", "-x"}, Cmd: []string{"y"}},
			program: "/opt/app/bin/app", args: []string{"/opt/app/bin/app", "-x", "y"}},
		{name: "cmd alone", cfg: Config{Cmd: []string{"app", "serve"}}, program: "/usr/local/bin/app", args: []string{"app", "serve"}},
		{name: "args replace cmd", cfg: Config{Entrypoint: []string{"app"}, Cmd: []string{"serve"}}, opts: []Option{WithArgs("run", "1")},
			program: "/usr/local/bin/app", args: []string{"app", "run", "1"}},
		{name: "entry drops cmd", cfg: Config{Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"node"}, Env: []string{nodeEnv}},
			opts: []Option{WithEntry("node")}, program: "/usr/local/bin/node", args: []string{"node"}},
		{name: "entry with args", cfg: Config{Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"node"}, Env: []string{nodeEnv}},
			opts: []Option{WithEntry("node"), WithArgs("/app/hello.js")}, program: "/usr/local/bin/node", args: []string{"node", "/app/hello.js"}},
		{name: "wrapper script evaluated without --entry", cfg: Config{Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"node"}, Env: []string{nodeEnv}},
			program: "/usr/local/bin/node", args: []string{"node"}},
		{name: "PATH skips non-executables and directories", cfg: Config{Cmd: []string{"app"}, Env: []string{"PATH=/usr/local/sbin:/usr/bin:/usr/local/bin"}},
			program: "/usr/local/bin/app", args: []string{"app"}},
		{name: "relative PATH entry and working dir", cfg: Config{Cmd: []string{"run"}, Env: []string{"PATH=tools"}, WorkingDir: "/srv"},
			program: "/srv/tools/run", args: []string{"run"}},
		{name: "relative path", cfg: Config{Cmd: []string{"./bin/app"}, WorkingDir: "/opt/app"},
			program: "/opt/app/bin/app", args: []string{"./bin/app"}},
		{name: "env override of PATH", cfg: Config{Cmd: []string{"run"}, Env: []string{"PATH=/bin"}}, opts: []Option{WithEnv("PATH=/srv/tools")},
			program: "/srv/tools/run", args: []string{"run"}, env: []string{"PATH=/srv/tools", "HOSTNAME=nanos", "HOME=/root"}},
		{name: "shebang argument", cfg: Config{Cmd: []string{"/usr/local/bin/with-arg.sh", "z"}},
			program: "/bin/sh", args: []string{"/bin/sh", "-e", "/usr/local/bin/with-arg.sh", "z"}, scripts: []string{"/usr/local/bin/with-arg.sh"}},
		{name: "env runs its command directly", cfg: Config{Cmd: []string{"/usr/local/bin/env-plain.js", "a"}},
			program: "/usr/local/bin/node", args: []string{"node", "/usr/local/bin/env-plain.js", "a"}, scripts: []string{"/usr/local/bin/env-plain.js"}},
		{name: "env -S and assignments", cfg: Config{Cmd: []string{"/usr/local/bin/env-split.js"}, Env: []string{"A=1"}},
			program: "/usr/local/bin/node", args: []string{"node", "--harmony", "/usr/local/bin/env-split.js"},
			scripts: []string{"/usr/local/bin/env-split.js"}, env: []string{"A=1", "PATH=" + DefaultPath, "HOSTNAME=nanos", "HOME=/root", "NODE_OPTIONS=--x"}},
		{name: "script run by a script", cfg: Config{Cmd: []string{"/usr/local/bin/nested.sh"}},
			// The wrapper execs nested.sh again: evaluated once, then left to its shell.
			program: "/bin/sh", args: []string{"/bin/sh", "/usr/local/bin/docker-entrypoint.sh", "/usr/local/bin/nested.sh"},
			scripts: []string{"/usr/local/bin/nested.sh", "/usr/local/bin/nested.sh", "/usr/local/bin/docker-entrypoint.sh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := r.Resolve(tt.cfg, append(tt.opts, WithoutExtras())...)
			require.NoError(t, err)
			assert.Equal(t, tt.program, plan.Program)
			assert.Equal(t, tt.args, plan.Args)
			assert.Equal(t, tt.scripts, plan.Scripts)
			if tt.env != nil {
				assert.Equal(t, tt.env, plan.Env)
			}
			assert.Equal(t, Static, plan.Linkage)
			for _, s := range tt.scripts {
				e, ok := plan.Lookup(s)
				require.True(t, ok)
				assert.Equal(t, KindFile, e.Kind)
			}
			_, ok := plan.Lookup(strings.TrimPrefix(plan.Program, ""))
			if !ok { // the program is a link: its target is there
				_, ok = plan.Lookup("/usr/bin/dash")
			}
			assert.True(t, ok)
		})
	}
}

func TestEntrypointErrors(t *testing.T) {
	fsys := entryFS(t)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"not executable", Config{Cmd: []string{"/usr/local/bin/not-exec.sh"}}, "not executable (mode 0644)"},
		{"neither ELF nor script", Config{Cmd: []string{"/usr/local/bin/text"}}, "neither an ELF executable nor a #! script"},
		{"interpreter loop", Config{Cmd: []string{"/usr/local/bin/loop.sh"}}, "more than 4 levels of #! interpreters"},
		{"DOS line endings", Config{Cmd: []string{"/usr/local/bin/dos.sh"}}, "carriage return"},
		{"missing interpreter", Config{Cmd: []string{"/usr/local/bin/missing-interpreter"}}, "#! interpreter /opt/nothing/python is not in the image"},
		{"a directory", Config{Cmd: []string{"/opt/app/dir.d"}}, "not a regular file"},
		{"bad env", Config{Cmd: []string{"app"}, Env: []string{"PATH=/bin"}}, "no executable named app in PATH /bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(fsys, tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			var pe *ProgramError
			assert.True(t, errors.As(err, &pe), "%T", err)
		})
	}
	_, err := Resolve(fsys, Config{Cmd: []string{"app"}}, WithEnv("NOEQUALS"))
	assert.ErrorContains(t, err, "want NAME=VALUE")
}

func TestWrongArchProgram(t *testing.T) {
	fx := testimage.CFixtures(t)
	decoy, err := os.ReadFile(fx.HostPath(fx.Decoy)) // a 32-bit i386 shared object
	require.NoError(t, err)
	fsys := fstest.MapFS{"bin/app": &fstest.MapFile{Mode: 0o755, Data: decoy}}
	_, err = Resolve(fsys, Config{Cmd: []string{"/bin/app"}}, WithMachine(elf.EM_X86_64))
	var arch *ArchError
	require.ErrorAs(t, err, &arch)
	assert.Equal(t, elf.EM_386, arch.Machine)
	assert.Equal(t, "/bin/app is a 32-bit i386 program, but the target is x86-64 (amd64): the image is for another architecture (choose its linux/amd64 variant)", err.Error())
}

func TestParseLdSoConf(t *testing.T) {
	got := parseLdSoConf([]byte("# comment\ninclude /etc/ld.so.conf.d/*.conf other/*.conf\n  /usr/local/lib/  # trailing\n" +
		"hwcap 0 nosegneg\nrelative/dir\n\n/opt/lib\r\ninclude\n/opt/x#y\n/\n"))
	assert.Equal(t, []ldsoConfLine{
		{Include: []string{"/etc/ld.so.conf.d/*.conf", "other/*.conf"}},
		{Dir: "/usr/local/lib"},
		{Dir: "/opt/lib"},
		{Dir: "/opt/x"},
		{Dir: "/"},
	}, got)
}

func TestParseNsswitch(t *testing.T) {
	got := parseNsswitch([]byte("# c\npasswd:         files systemd\nhosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n" +
		"group: [ !UNAVAIL = return ] files\nhosts: nis\nnetgroup:nis\nbad name: x\nshadow: ../../x files\nnoservices:\n"))
	assert.Equal(t, map[string][]string{
		"passwd":     {"files", "systemd"},
		"hosts":      {"files", "mdns4_minimal", "dns", "myhostname"},
		"group":      {"files"},
		"netgroup":   {"nis"},
		"shadow":     {"files"},
		"noservices": {},
	}, got)
}

func TestParseShebang(t *testing.T) {
	tests := []struct {
		head, interp, arg string
		ok                bool
	}{
		{"#!/bin/sh\necho", "/bin/sh", "", true},
		{"#! /bin/sh -e -x \n", "/bin/sh", "-e -x", true},
		{"#!/usr/bin/env\tnode\n", "/usr/bin/env", "node", true},
		{"#!\n", "", "", false},
		{"echo\n", "", "", false},
		{"#!/bin/sh", "/bin/sh", "", true},
		{"#!/" + strings.Repeat("x", 300), "", "", false},
		{"#!/bin/sh " + strings.Repeat("x", 300), "/bin/sh", strings.Repeat("x", shebangMax-len("#!/bin/sh ")), true},
	}
	for _, tt := range tests {
		head := []byte(tt.head)
		if len(head) > shebangMax {
			head = head[:shebangMax]
		}
		interp, arg, ok := parseShebang(head)
		assert.Equal(t, tt.ok, ok, "%q", tt.head)
		assert.Equal(t, tt.interp, interp, "%q", tt.head)
		assert.Equal(t, tt.arg, arg, "%q", tt.head)
	}
}

func TestExpandDST(t *testing.T) {
	s := &session{cwd: "/work", libDST: "lib/x86_64-linux-gnu", platform: "x86_64"}
	prog := &object{path: "/usr/bin/app", file: "/opt/real/bin/app"}
	lib := &object{path: "/usr/lib/../lib/libx.so", file: "/usr/lib/libx.so"}
	s.program = prog
	tests := []struct {
		in   string
		o    *object
		want string
		ok   bool
	}{
		{"$ORIGIN/../lib", prog, "/opt/real/bin/../lib", true},
		{"${ORIGIN}/x", lib, "/usr/lib/../lib/x", true},
		{"/opt/$LIB/$PLATFORM", lib, "/opt/lib/x86_64-linux-gnu/x86_64", true},
		{"$ORIGINAL/x", prog, "$ORIGINAL/x", true},
		{"$HOME/x", prog, "$HOME/x", true},
		{"${ORIGIN", prog, "${ORIGIN", true},
		{"", prog, "/work", true},
		{"trailing$", prog, "trailing$", true},
	}
	for _, tt := range tests {
		got, ok := s.expandDST(tt.in, tt.o)
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	s.platform = ""
	_, ok := s.expandDST("/opt/$PLATFORM", prog)
	assert.False(t, ok, "a token without a value drops the element")
}

func TestMuslReserved(t *testing.T) {
	for _, n := range []string{"libc.so", "libc.so.6", "libm.so.6", "libpthread.so.0", "librt.so.1", "libdl.so.2", "libutil.so.1", "libxnet.so"} {
		assert.True(t, muslReserved(n), n)
	}
	for _, n := range []string{"libcrypto.so.3", "libmagic.so.1", "libz.so.1", "c.so", "libc"} {
		assert.False(t, muslReserved(n), n)
	}
}

func TestMergeEnv(t *testing.T) {
	got, err := mergeEnv([]string{"PATH=/bin", "A=1", "B=2"}, []string{"A=3", "C=4", "PATH=/usr/bin"})
	require.NoError(t, err)
	assert.Equal(t, []string{"PATH=/usr/bin", "A=3", "B=2", "C=4"}, got)
}

func TestReaderFallbacks(t *testing.T) {
	fx := testimage.CFixtures(t)
	data, err := os.ReadFile(fx.HostPath(fx.Dynamic))
	require.NoError(t, err)
	want, err := readELF(strings.NewReader(string(data)), int64(len(data)))
	require.NoError(t, err)
	for _, mode := range []string{"readerat", "seeker", "stream"} {
		t.Run(mode, func(t *testing.T) {
			r := newRootFS(limitedFS{fsys: fstest.MapFS{"prog": &fstest.MapFile{Data: data, Mode: 0o755}}, mode: mode})
			f, err := r.open("/prog", int64(len(data)))
			require.NoError(t, err)
			defer f.Close()
			got, err := readELF(f, f.size)
			require.NoError(t, err)
			assert.Equal(t, want.Needed, got.Needed)
			assert.Equal(t, want.Interp, got.Interp)
		})
	}
}

// limitedFS hides what its files can do beyond fs.File.
type limitedFS struct {
	fsys fs.FS
	mode string
}

func (l limitedFS) Open(name string) (fs.File, error) {
	f, err := l.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	switch l.mode {
	case "seeker":
		return struct {
			fs.File
			seeker
		}{f, f.(seeker)}, nil
	case "stream":
		return struct{ fs.File }{f}, nil
	}
	return f, nil
}

type seeker interface {
	Seek(int64, int) (int64, error)
}

func TestMissingInterpreter(t *testing.T) {
	fx := testimage.CFixtures(t)
	dyn, err := os.ReadFile(fx.HostPath(fx.Dynamic))
	require.NoError(t, err)
	fsys := fstest.MapFS{"bin/app": &fstest.MapFile{Mode: 0o755, Data: dyn}}
	_, err = Resolve(fsys, Config{Cmd: []string{"/bin/app"}})
	require.EqualError(t, err, "program /bin/app: its ELF interpreter /lib64/ld-linux-x86-64.so.2 is not in the image")

	// A loader of the wrong class is no loader for it.
	decoy, err := os.ReadFile(fx.HostPath(fx.Decoy))
	require.NoError(t, err)
	fsys["lib64/ld-linux-x86-64.so.2"] = &fstest.MapFile{Mode: 0o755, Data: decoy}
	_, err = Resolve(fsys, Config{Cmd: []string{"/bin/app"}})
	require.ErrorContains(t, err, "ELF interpreter /lib64/ld-linux-x86-64.so.2: 32-bit ELF, want 64-bit")

	// Not an ELF file at all.
	fsys["lib64/ld-linux-x86-64.so.2"] = &fstest.MapFile{Mode: 0o755, Data: []byte("\x7fELF\x02\x01\x01 truncated")}
	_, err = Resolve(fsys, Config{Cmd: []string{"/bin/app"}})
	var fe *FormatError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "/lib64/ld-linux-x86-64.so.2", fe.Path)
}

func TestPlanCheckTarget(t *testing.T) {
	tests := []struct {
		name    string
		plan    Plan
		target  elf.Machine
		wantErr string
	}{
		{"same machine", Plan{Program: "/app", Machine: elf.EM_X86_64, Class: elf.ELFCLASS64}, elf.EM_X86_64, ""},
		{"unknown machine (plan from JSON)", Plan{Program: "/app"}, elf.EM_X86_64, ""},
		{"i386 on x86-64", Plan{Program: "/app", Machine: elf.EM_386, Class: elf.ELFCLASS32}, elf.EM_X86_64,
			"/app is a 32-bit i386 program, but the target is x86-64 (amd64)"},
		{"aarch64 on x86-64", Plan{Program: "/app", Machine: elf.EM_AARCH64, Class: elf.ELFCLASS64}, elf.EM_X86_64,
			"/app is a 64-bit aarch64 (arm64) program, but the target is x86-64 (amd64)"},
		{"x32 on x86-64", Plan{Program: "/app", Machine: elf.EM_X86_64, Class: elf.ELFCLASS32}, elf.EM_X86_64,
			"/app is a 32-bit x86-64 (amd64) program, but the target runs only 64-bit programs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.plan.CheckTarget(tt.target)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			var arch *ArchError
			require.ErrorAs(t, err, &arch)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// TestHostileConfigs: odd but legal image configs resolve as Docker would
// run them, and a broken one gives a message of sensible size.
func TestHostileConfigs(t *testing.T) {
	fx := testimage.CFixtures(t)
	fsys := os.DirFS(fx.Root)

	t.Run("WorkingDir climbing out is cleaned", func(t *testing.T) {
		plan, err := Resolve(fsys, Config{Entrypoint: []string{fx.Dynamic}, WorkingDir: "../../etc"})
		require.NoError(t, err)
		assert.Equal(t, "/etc", plan.WorkingDir)
	})
	t.Run(`Entrypoint [""] clears the entrypoint`, func(t *testing.T) {
		plan, err := Resolve(fsys, Config{Entrypoint: []string{""}, Cmd: []string{fx.Dynamic, "x"}})
		require.NoError(t, err)
		assert.Equal(t, fx.Dynamic, plan.Program)
		assert.Equal(t, []string{fx.Dynamic, "x"}, plan.Args)
	})
	t.Run("many missing libraries: the first 20 and a count", func(t *testing.T) {
		const n = 25
		app := programNeeding(t, n)
		root := t.TempDir()
		out, err := exec.Command("cp", "-a", fx.Root+"/.", root).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.NoError(t, os.WriteFile(filepath.Join(root, "app"), app, 0o755))
		_, err = Resolve(os.DirFS(root), Config{Entrypoint: []string{"/app"}})
		require.Error(t, err)
		var missing *MissingLibraryError
		require.ErrorAs(t, err, &missing)
		msg := err.Error()
		assert.Equal(t, maxListed+1, strings.Count(msg, "\n")+1, "20 libraries and the count: %s", msg)
		assert.Contains(t, msg, fmt.Sprintf("... and %d more missing libraries (%d in all)", n-maxListed, n))
	})
}

// programNeeding links a real x86-64 program whose DT_NEEDED names n
// libraries, libmissing0.so..., that exist only where it was linked.
func programNeeding(t *testing.T, n int) []byte {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is needed to link a test program: apt-get install gcc")
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.c"), []byte("int nothing;\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.c"), []byte("int main(void) { return 0; }\n"), 0o644))
	args := []string{"-o", filepath.Join(dir, "app"), filepath.Join(dir, "main.c"), "-L" + dir, "-Wl,--no-as-needed"}
	for i := range n {
		lib := fmt.Sprintf("libmissing%d.so", i)
		out, err := exec.Command(gcc, "-shared", "-o", filepath.Join(dir, lib), "-Wl,-soname,"+lib, filepath.Join(dir, "empty.c")).CombinedOutput()
		require.NoError(t, err, "%s", out)
		args = append(args, fmt.Sprintf("-lmissing%d", i))
	}
	out, err := exec.Command(gcc, args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	data, err := os.ReadFile(filepath.Join(dir, "app"))
	require.NoError(t, err)
	return data
}
