package resolve

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/nanofs/nanofs/internal/testimage"
)

// elfSeeds adds the small C fixtures (real compiler output) and their
// truncations as seeds.
func elfSeeds(f *testing.F) [][]byte {
	fx := testimage.CFixtures(f)
	var seeds [][]byte
	for _, p := range []string{fx.Dynamic, fx.RpathOrigin, fx.RunpathOrigin, fx.PrivateLib, fx.Plugin, fx.Decoy, fx.DecoyUser, fx.Dlopen, fx.Musl} {
		if p == "" {
			continue
		}
		data, err := os.ReadFile(fx.HostPath(p))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:64])
		f.Add(s[:1024])
	}
	f.Add([]byte("\x7fELF"))
	f.Add([]byte("#!/bin/sh\n"))
	return seeds
}

// FuzzELF feeds malformed ELF files to the header reader and to the whole
// resolver, as program, interpreter and library: an error, never a panic
// or a runaway allocation.
func FuzzELF(f *testing.F) {
	elfSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := readELF(bytes.NewReader(data), int64(len(data)))
		if err == nil {
			for _, s := range append([]string{info.Interp, info.Soname, info.RPath, info.RunPath}, info.Needed...) {
				if len(s) > maxStringSize || strings.IndexByte(s, 0) >= 0 {
					t.Fatalf("bad string %q", s)
				}
			}
			_, _ = info.importsAny(io.NewSectionReader(bytes.NewReader(data), 0, int64(len(data))), cancelSymbols)
		}
		elfFile := &fstest.MapFile{Data: data, Mode: 0o755}
		fsys := fstest.MapFS{
			"bin/prog":                       elfFile,
			"lib64/ld-linux-x86-64.so.2":     elfFile,
			"lib/ld-musl-x86_64.so.1":        elfFile,
			"lib/x86_64-linux-gnu/libc.so.6": elfFile,
			"opt/app/lib/libprivate.so":      elfFile,
			"opt/app/lib32/libprivate.so":    elfFile,
		}
		r := NewResolver(fsys)
		if plan, err := r.Resolve(Config{Cmd: []string{"/bin/prog"}}); err == nil {
			checkPlan(t, plan)
		}
		if plan, err := r.Closure("/lib/x86_64-linux-gnu/libc.so.6", WithAllowMissing()); err == nil {
			checkPlan(t, plan)
		}
	})
}

// checkPlan checks what every plan promises: sorted unique canonical
// paths, parents first.
func checkPlan(t *testing.T, p *Plan) {
	seen := map[string]bool{}
	for i, e := range p.Entries {
		if i > 0 && p.Entries[i-1].Path >= e.Path {
			t.Fatalf("entries out of order: %s then %s", p.Entries[i-1].Path, e.Path)
		}
		if !strings.HasPrefix(e.Path, "/") || strings.Contains(e.Path, "/../") || strings.HasSuffix(e.Path, "/..") {
			t.Fatalf("bad entry path %q", e.Path)
		}
		if d := e.Path[:strings.LastIndex(e.Path, "/")]; d != "" && !seen[d] {
			t.Fatalf("%s before its parent", e.Path)
		}
		seen[e.Path] = true
	}
}

// FuzzLdSoConf parses ld.so.conf, and reads it through the resolver with
// includes of itself and of a second fuzzed file.
func FuzzLdSoConf(f *testing.F) {
	f.Add([]byte("include /etc/ld.so.conf.d/*.conf\n"), []byte("/usr/local/lib\n# c\n/usr/lib/x86_64-linux-gnu/\n"))
	f.Add([]byte("include ld.so.conf\ninclude /etc/*\n/lib\n"), []byte("hwcap 1 x\n"))
	f.Add([]byte("include /etc/[\n"), []byte("include"))
	f.Fuzz(func(t *testing.T, conf, included []byte) {
		for _, l := range parseLdSoConf(conf) {
			if l.Dir != "" {
				if !strings.HasPrefix(l.Dir, "/") || (len(l.Dir) > 1 && strings.HasSuffix(l.Dir, "/")) || strings.ContainsAny(l.Dir, "#\n") {
					t.Fatalf("bad dir %q", l.Dir)
				}
			} else if len(l.Include) == 0 {
				t.Fatal("include without patterns")
			}
		}
		fsys := fstest.MapFS{
			"etc/ld.so.cache":         &fstest.MapFile{},
			"etc/ld.so.conf":          &fstest.MapFile{Data: conf},
			"etc/ld.so.conf.d/a.conf": &fstest.MapFile{Data: included},
			"etc/ld.so.conf.d/b.conf": &fstest.MapFile{Data: conf},
		}
		s := NewResolver(fsys).newSession(nil)
		res := s.readLdconf()
		for _, d := range res.dirs {
			if !strings.HasPrefix(d, "/") {
				t.Fatalf("bad dir %q", d)
			}
		}
	})
}

// FuzzNsswitch parses nsswitch.conf and musl's path file.
func FuzzNsswitch(f *testing.F) {
	f.Add([]byte("passwd: files systemd\nhosts: files [NOTFOUND=return] dns\n"))
	f.Add([]byte("hosts:[\nx: a[b]c ../d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for db, services := range parseNsswitch(data) {
			if db == "" || strings.ContainsAny(db, " \t\n:") {
				t.Fatalf("bad database %q", db)
			}
			for _, s := range services {
				if !validServiceName(s) {
					t.Fatalf("bad service %q", s)
				}
			}
		}
		for _, d := range parseMuslPath(data) {
			if d == "" || strings.ContainsAny(d, ":\n") {
				t.Fatalf("bad musl dir %q", d)
			}
		}
	})
}

// FuzzShebang parses #! lines, and env's arguments when the interpreter
// is env.
func FuzzShebang(f *testing.F) {
	f.Add([]byte("#!/bin/sh -e\n"))
	f.Add([]byte("#!/usr/bin/env -S A=1 node --x\n"))
	f.Add([]byte("#! /usr/bin/env -u X -- python3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > shebangMax {
			data = data[:shebangMax]
		}
		interp, arg, ok := parseShebang(data)
		if !ok {
			return
		}
		if interp == "" || strings.ContainsAny(interp, " \t\n\x00") || strings.ContainsAny(arg, "\n\x00") ||
			strings.TrimSpace(arg) != strings.Trim(arg, "\r\v\f") && strings.Trim(arg, " \t") != arg {
			t.Fatalf("bad parse %q %q of %q", interp, arg, data)
		}
		s := &session{env: []string{"PATH=/bin"}}
		args := []string{}
		if arg != "" {
			args = append(args, arg)
		}
		if cmd, err := s.envCommand(append(args, "/script")); err == nil && (len(cmd) == 0 || cmd[0] == "") {
			t.Fatalf("env command %q from %q", cmd, arg)
		}
	})
}

// FuzzPasswdHome: any passwd text gives a home or none, never a panic,
// and a home is always absolute.
func FuzzPasswdHome(f *testing.F) {
	f.Add([]byte("root:x:0:0:root:/root:/bin/sh\n"), "root")
	f.Add([]byte("a:b\n::::::\n#c:x:1:1::/h:/s\n"), "1")
	f.Add([]byte(strings.Repeat(":", 5000)), "")
	f.Fuzz(func(t *testing.T, data []byte, user string) {
		if home, ok := passwdHome(data, user); ok && !strings.HasPrefix(home, "/") {
			t.Fatalf("home %q is not absolute", home)
		}
	})
}

// FuzzWrapper evaluates arbitrary shell scripts as entrypoint wrappers
// over an image: a plan or an error, never a panic, and nothing run on the
// host.
func FuzzWrapper(f *testing.F) {
	for _, s := range []string{nodeWrapper, redisWrapper, nginxWrapper, hooksWrapper, httpdWrapper, daemonWrapper, substWrapper, writeWrapper,
		"#!/bin/sh\nexec\n", "#!/bin/sh\nexec -a x y\n", "#!/bin/sh\nexit 3\n", "#!/bin/sh\n(exec node) &\n", "#!/bin/sh\n$(\n", "#!/bin/sh\nwhich node; exec \"$(which node)\"\n"} {
		f.Add(s)
	}
	fsys := wrapperFS(f)
	f.Fuzz(func(t *testing.T, script string) {
		m := fstest.MapFS{}
		for k, v := range fsys {
			m[k] = v
		}
		m["usr/local/bin/fuzz.sh"] = &fstest.MapFile{Mode: 0o755, Data: []byte("#!/bin/sh\n" + script)}
		plan, err := Resolve(m, Config{Entrypoint: []string{"/usr/local/bin/fuzz.sh"}, Cmd: []string{"node"}}, WithoutExtras())
		if err == nil && plan.Program == "" {
			t.Fatal("a plan without a program")
		}
	})
}
