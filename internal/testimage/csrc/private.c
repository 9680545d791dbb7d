/* libprivate.so: a private library found through $ORIGIN; it needs libc. */
#include <stdio.h>
#include <string.h>

int private_answer(const char *who) {
	return printf("private library answers %s (%zu)\n", who, strlen(who)) > 0 ? 42 : -1;
}
