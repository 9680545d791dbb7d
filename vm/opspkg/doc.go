// Package opspkg makes ops packages from a resolve.Plan: package.manifest
// (Program, Args, Env, Version) and sysroot/ laid out as ops expects
// (absolute links made relative, top-level directory links spread), written
// as a .tar.gz archive or installed into an ops home's local_packages.
package opspkg
