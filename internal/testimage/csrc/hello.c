/* hello: the plain program, built dynamic (glibc, musl), static and
 * static-pie. It calls into libm with a value known only at run time so
 * that the dynamic build really needs libm.so.6. */
#include <math.h>
#include <stdio.h>

int main(int argc, char **argv) {
	(void)argv;
	printf("hello from nanofs fixture: cos(%d) = %.1f\n", argc - 1, cos((double)(argc - 1)));
	return 0;
}
