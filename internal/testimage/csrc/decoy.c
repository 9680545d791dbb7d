/* The 32-bit decoy: same soname and file name as libprivate.so, but
 * ELFCLASS32, so the loader of a 64-bit program must pass over it. Built
 * with -nostdlib: it only has to look right, not run. */
int private_answer(const char *who) {
	(void)who;
	return 32;
}
