/* dlopen: loads libplugin.so by soname at run time; nothing in its ELF
 * headers names the plugin. */
#include <dlfcn.h>
#include <stdio.h>

int main(void) {
	void *h = dlopen("libplugin.so", RTLD_NOW);
	if (h == NULL) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	int (*answer)(void) = (int (*)(void))dlsym(h, "plugin_answer");
	if (answer == NULL) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		return 1;
	}
	return answer() == 7 ? 0 : 1;
}
