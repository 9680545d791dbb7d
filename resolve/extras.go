package resolve

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// Runtime extras: what a program reads or loads at run time that no ELF
// header names, and that a unikernel must carry because it has nothing
// else to fall back on.

// etcFiles are read by the C library (glibc's NSS "files" service, musl,
// Go's net and os/user) for name, user, service and protocol lookups.
var etcFiles = []struct{ path, reason string }{
	{"/etc/passwd", "user database"},
	{"/etc/group", "group database"},
	{"/etc/services", "service names and ports"},
	{"/etc/protocols", "protocol names"},
}

// glibcFiles are read by glibc's resolver and loader only.
var glibcFiles = []struct{ path, reason string }{
	{"/etc/nsswitch.conf", "name service switch configuration (glibc NSS)"},
	{"/etc/host.conf", "resolver configuration (glibc)"},
	{"/etc/gai.conf", "getaddrinfo address sorting (glibc)"},
	{"/etc/ld.so.cache", reasonLdCache},
}

// caBundles are where TLS libraries look for the trusted certificates
// (the list Go's crypto/x509 tries on Linux).
var caBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // OpenSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
	"/etc/ssl/cert.pem",                                 // Alpine
}

// openSSLDirs are OPENSSLDIR of the usual builds, whose certs/ holds the
// hashed links OpenSSL's default verify path uses.
var openSSLDirs = []string{"/usr/lib/ssl", "/etc/ssl", "/etc/pki/tls", "/usr/local/ssl"}

var hashedCertName = regexp.MustCompile(`^[0-9a-f]{8}\.[0-9]+$`)

const reasonCA = "CA certificates (TLS)"

// cancelSymbols are the functions whose use makes glibc dlopen libgcc_s
// for unwinding (it aborts when it cannot).
var cancelSymbols = []string{"pthread_cancel", "pthread_exit"}

func (s *session) addExtras() error {
	for _, f := range etcFiles {
		if err := s.addIfPresent(f.path, f.reason); err != nil {
			return err
		}
	}
	gen, err := s.addRuntimeFiles()
	if err != nil {
		return err
	}
	s.generated = gen
	if err := s.addCACerts(); err != nil {
		return err
	}
	if s.flavor == glibc && s.interp != nil {
		for _, f := range glibcFiles {
			if err := s.addIfPresent(f.path, f.reason); err != nil {
				return err
			}
		}
		if err := s.addNSS(); err != nil {
			return err
		}
		if err := s.addLibgcc(); err != nil {
			return err
		}
	}
	// Last: libnode's strings may wait for megabytes of it to arrive, while
	// the loader's files above cost a header or two each.
	return s.addNodeBuiltins()
}

// addIfPresent adds the file at p (through links) when the image has it.
func (s *session) addIfPresent(p, reason string) error {
	loc, err := s.r.root.locate(p)
	if err != nil {
		if absent(err) {
			return nil
		}
		return err
	}
	if !loc.Info.Mode().IsRegular() {
		return nil
	}
	s.b.addLocated(loc, reason, "")
	return nil
}

// ensureDir adds the directory p, creating (in the plan) the elements the
// image lacks, and returns its canonical path.
func (s *session) ensureDir(p, reason string) (string, error) {
	if p == "/" {
		return "/", nil
	}
	loc, err := s.r.root.locate(p)
	if err == nil {
		if !loc.Info.IsDir() {
			return "", fmt.Errorf("%s is not a directory in the image", p)
		}
		s.b.addLocated(loc, reason, "")
		return loc.File, nil
	}
	if !absent(err) {
		return "", err
	}
	parent, err := s.ensureDir(path.Dir(p), reasonDir)
	if err != nil {
		return "", err
	}
	dir := path.Join(parent, path.Base(p))
	if _, err := s.r.root.lstat(dir); err == nil {
		// There, but not a directory we can enter (a dangling link).
		return "", fmt.Errorf("%s: not a directory in the image", p)
	}
	s.b.add(Entry{Path: dir, Kind: KindDir, Mode: 0o755, Reason: reason + " (the image lacks it)"}, "")
	return dir, nil
}

func (s *session) addCACerts() error {
	for _, p := range caBundles {
		if err := s.addIfPresent(p, reasonCA); err != nil {
			return err
		}
	}
	if !s.usesOpenSSL() {
		return nil
	}
	for _, dir := range openSSLDirs {
		loc, err := s.r.root.locate(dir)
		if err != nil {
			if absent(err) {
				continue
			}
			return err
		}
		if !loc.Info.IsDir() {
			continue
		}
		for _, name := range []string{"openssl.cnf", "cert.pem"} {
			if err := s.addIfPresent(dir+"/"+name, "OpenSSL configuration and certificates"); err != nil {
				return err
			}
		}
		certs, err := s.r.root.locate(dir + "/certs")
		if err != nil {
			if absent(err) {
				return nil
			}
			return err
		}
		if !certs.Info.IsDir() {
			return nil
		}
		entries, err := s.r.root.readDir(certs.File)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if hashedCertName.MatchString(e.Name()) {
				if err := s.addIfPresent(dir+"/certs/"+e.Name(), reasonCA+", OpenSSL hashed directory"); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return nil
}

// usesOpenSSL reports whether libcrypto is loaded.
func (s *session) usesOpenSSL() bool {
	for _, o := range s.objects {
		if strings.HasPrefix(path.Base(o.path), "libcrypto.so") {
			return true
		}
	}
	return false
}

// libcObject is the C library object, which dlopens NSS modules and
// libgcc_s: their search runs with it as the loader.
func (s *session) libcObject() *object {
	for _, o := range s.objects {
		if strings.HasPrefix(o.info.Soname, "libc.so.") {
			return o
		}
	}
	return s.program
}

// addNSS adds the NSS modules glibc loads for the databases a unikernel
// uses, and their libraries.
func (s *session) addNSS() error {
	services, users, err := s.nssServices()
	if err != nil {
		return err
	}
	libc := s.libcObject()
	var roots []*object
	for _, svc := range services {
		name := "libnss_" + svc + ".so.2"
		reason := fmt.Sprintf("NSS module %q (%s)", svc, strings.Join(users[svc], ", "))
		o, isNew, miss, err := s.search(name, libc, RoleRuntime, reason)
		if err != nil {
			return err
		}
		if miss != nil {
			if svc == "files" || svc == "dns" {
				continue // built into libc since glibc 2.34
			}
			s.warnf("NSS module %s for %s is not in the image: those lookups will fail", name, strings.Join(users[svc], ", "))
			continue
		}
		if isNew {
			roots = append(roots, o)
		}
	}
	if users["dns"] != nil {
		o, isNew, _, err := s.search("libresolv.so.2", libc, RoleRuntime, "DNS resolver library (NSS service dns)")
		if err != nil {
			return err
		}
		if isNew {
			roots = append(roots, o)
		}
	}
	return s.loadDeps(roots, RoleRuntime, "library of an NSS module", false)
}

// nssServices reads /etc/nsswitch.conf for the services of the databases a
// unikernel uses, in order, and which databases use each (read once a
// session: the read-ahead asks first, addNSS later; a failure, which may
// be passing, is not kept).
func (s *session) nssServices() ([]string, map[string][]string, error) {
	if s.nss == nil {
		services, users, err := s.readNSSServices()
		if err != nil {
			return nil, nil, err
		}
		s.nss = &nssConfig{services, users}
	}
	return s.nss.services, s.nss.users, nil
}

// nssConfig is what nssServices found.
type nssConfig struct {
	services []string
	users    map[string][]string
}

func (s *session) readNSSServices() (services []string, users map[string][]string, err error) {
	conf := map[string][]string{}
	if _, data, err := s.r.root.readFile("/etc/nsswitch.conf", 1<<20); err == nil {
		conf = parseNsswitch(data)
	} else if !absent(err) {
		return nil, nil, err
	}
	users = map[string][]string{}
	for _, db := range nssDatabases {
		list, ok := conf[db]
		if !ok {
			list = defaultNSSServices
		}
		for _, svc := range list {
			if users[svc] == nil {
				services = append(services, svc)
			}
			users[svc] = append(users[svc], db)
		}
	}
	return services, users, nil
}

// nssAhead is a stand-in for what glibc will dlopen for addNSS (its NSS
// modules and the resolver library), loaded by the program, for readAhead
// to read their headers with the program's libraries' rather than after
// them; nil when there is nothing to read.
func (s *session) nssAhead() *object {
	services, users, err := s.nssServices()
	if err != nil {
		return nil // addNSS reports it
	}
	var names []string
	for _, svc := range services {
		names = append(names, "libnss_"+svc+".so.2")
	}
	if users["dns"] != nil {
		names = append(names, "libresolv.so.2")
	}
	if len(names) == 0 {
		return nil
	}
	return &object{path: "(NSS modules)", info: &elfInfo{Needed: names}, loader: s.program}
}

// addLibgcc adds libgcc_s.so.1 when a loaded object uses thread
// cancellation (or the pre-2.34 libpthread that implements it), which
// glibc's unwinder dlopens.
func (s *session) addLibgcc() error {
	const name = "libgcc_s.so.1"
	if s.byName[name] != nil {
		return nil
	}
	why := ""
	for _, o := range s.objects {
		if o.role == RoleRuntime {
			continue
		}
		if strings.HasPrefix(o.info.Soname, "libpthread.so") {
			why = o.path + " (libpthread)"
			break
		}
		info, err := s.r.root.lstat(o.file)
		if err != nil {
			return err
		}
		uses, err := s.r.imports(o.file, info.Size(), o.info, cancelSymbols)
		if err != nil {
			s.warnf("%s: reading its imports: %v", o.path, err)
			continue
		}
		if uses {
			why = o.path + " (imports pthread_cancel or pthread_exit)"
			break
		}
	}
	if why == "" {
		return nil
	}
	o, isNew, miss, err := s.search(name, s.libcObject(), RoleRuntime, "unwinder glibc loads for thread cancellation, used by "+why)
	if err != nil {
		return err
	}
	if miss != nil {
		s.warnf("%s uses thread cancellation but the image has no %s: cancelling a thread will abort", why, name)
		return nil
	}
	if isNew {
		return s.loadDeps([]*object{o}, RoleRuntime, "library of "+name, false)
	}
	return nil
}

// includeFiles adds the files WithInclude names; shared objects among
// them are loaded later by includeObjects.
func (s *session) includeFiles() error {
	for _, pat := range s.o.includes {
		pat = path.Clean(pat)
		if !strings.HasPrefix(pat, "/") {
			return &IncludeError{Pattern: pat, Err: errors.New("not an absolute path in the image")}
		}
		matches, err := s.r.root.glob(pat)
		if err != nil {
			return &IncludeError{Pattern: pat, Err: err}
		}
		if len(matches) == 0 {
			return &IncludeError{Pattern: pat, Err: ErrNoMatch}
		}
		reason := reasonIncludePrefix + pat
		for _, m := range matches {
			loc, err := s.r.root.locate(m)
			if err != nil {
				return err
			}
			if !s.b.addLocated(loc, reason, "") {
				s.warnf("include pattern %s: %s is a %v, left out", pat, m, loc.Info.Mode().Type())
				continue
			}
			if loc.Info.IsDir() {
				if err := s.includeTree(loc.File, reason); err != nil {
					return err
				}
				continue
			}
			s.included = append(s.included, loc)
		}
	}
	return nil
}

// includeAdded adds the entries WithAdded names.
func (s *session) includeAdded() error {
	under := ""
	for _, a := range s.o.added {
		if under != "" && strings.HasPrefix(a.Path, under+"/") {
			continue // in a directory added whole
		}
		if a.Dir && a.Merged {
			continue // its added entries follow one by one
		}
		if a.Dir {
			under = a.Path
		}
		loc, err := s.r.root.locate(a.Path)
		if err != nil {
			if absent(err) {
				s.warnf("left out the added link %s: it leads to nothing in the image", a.Path)
				continue
			}
			return fmt.Errorf("added %s: %w", a.Path, err)
		}
		reason := addedReason(a)
		if !s.b.addLocated(loc, reason, "") {
			s.warnf("added %s is a %v, left out", a.Path, loc.Info.Mode().Type())
			continue
		}
		if loc.Info.IsDir() {
			if err := s.includeTree(loc.File, reason); err != nil {
				return err
			}
			continue
		}
		s.included = append(s.included, loc)
	}
	return nil
}

func addedReason(a Added) string {
	if a.Src == "" {
		return "added"
	}
	return "added from " + a.Src
}

// labelAdded gives every added entry its own reason, whatever else needs it.
func labelAdded(entries []Entry, added []Added) {
	if len(added) == 0 {
		return
	}
	src := map[string]Added{}
	for _, a := range added {
		if a.Src != "" {
			src[a.Path] = a
		}
	}
	for i := range entries {
		if a, ok := src[entries[i].Path]; ok {
			entries[i].Reason = addedReason(a)
		}
	}
}

// includeTree adds the tree under the canonical directory dir, whole.
func (s *session) includeTree(dir, reason string) error {
	if err := s.addTree(dir, reason, nil, nil); err != nil {
		return &IncludeError{Pattern: dir, Err: err}
	}
	return nil
}

// addTree adds the tree under the canonical directory dir, but for what
// skip (nil: nothing) leaves out. Links in it are added with what they
// point to, so that they work in the unikernel. newFile, if not nil, sees
// each regular file that was not in the plan before.
func (s *session) addTree(dir, reason string, skip func(rel string, d fs.DirEntry) bool, newFile func(*located)) error {
	addFile := func(loc *located, linked bool) {
		_, had := s.b.entries[loc.File]
		if s.b.addLocated(loc, reason, "") || !linked {
			s.included = append(s.included, loc)
		}
		if !had && newFile != nil {
			newFile(loc)
		}
	}
	return fs.WalkDir(s.r.root.fsys, fsName(dir), func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		p := "/" + name
		if name == "." {
			p = "/"
		}
		if p == dir {
			return nil
		}
		if skip != nil && skip(strings.TrimPrefix(p, strings.TrimSuffix(dir, "/")+"/"), d) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			s.b.addDir(p, reason)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := s.r.root.readlink(p)
			if err != nil {
				return err
			}
			s.b.add(Entry{Path: p, Kind: KindSymlink, Target: target, Mode: 0o777, Size: int64(len(target)), Reason: reason}, "")
			loc, err := s.r.root.locate(p)
			if err != nil {
				if absent(err) {
					return nil // dangling: kept as the image has it
				}
				return err
			}
			if loc.Info.IsDir() {
				s.b.addLocated(loc, reasonDir, "")
			} else {
				addFile(loc, true)
			}
		case d.Type().IsRegular():
			loc, err := s.r.root.locate(p)
			if err != nil {
				return err
			}
			addFile(loc, false)
		}
		return nil
	})
}

// includeObjects loads the libraries of the shared objects added with
// WithInclude, as dlopen from the program would. Their missing libraries
// are warnings: an included directory often holds optional modules.
func (s *session) includeObjects() error {
	if s.interp == nil {
		return nil
	}
	var roots []*object
	for _, loc := range s.included {
		if !strings.Contains(path.Base(loc.File), ".so") || s.byFile[loc.File] != nil {
			continue
		}
		head, err := s.r.root.readHead(loc.File, 4)
		if err != nil {
			return err
		}
		if !isELF(head) {
			continue
		}
		info, err := s.r.elfInfo(loc.File, loc.Info.Size())
		if err != nil {
			s.warnf("included shared object: %v", err)
			continue
		}
		if info.loadableWith(s.ref) != nil {
			continue
		}
		o := &object{path: tidy(loc.Path), file: loc.File, info: info, loader: s.program, role: RoleIncluded,
			reason: "shared object added by an include pattern"}
		s.register(o, info.Soname)
		roots = append(roots, o)
	}
	return s.loadDeps(roots, RoleIncluded, "library of an included shared object", false)
}

// addWorkingDir adds the working directory, which must exist for the
// program to start in it.
func (s *session) addWorkingDir() error {
	_, err := s.ensureDir(s.cwd, reasonWorkDir)
	return err
}
