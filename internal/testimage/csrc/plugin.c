/* libplugin.so: the library dlopen loads; it needs libc. */
#include <stdio.h>

int plugin_answer(void) {
	puts("plugin loaded");
	return 7;
}
