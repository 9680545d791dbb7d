/* rpath: linked against libprivate.so, found through an $ORIGIN search
 * path (DT_RPATH or DT_RUNPATH, decided at link time). */
int private_answer(const char *who);

int main(void) {
	return private_answer("rpath") == 42 ? 0 : 1;
}
