/* fprintf_chk.c: the one glibc symbol that Debian's libunwind.a needs and musl lacks.
 *
 * Only the static musl build links this (Makefile.in compiles it with the musl compiler and
 * hands the object to the linker; configure links it once to check the toolchain). Debian's
 * libunwind.a (libunwind-14-dev) was compiled against glibc with _FORTIFY_SOURCE, so its
 * fprintf(stderr, ...) calls became __fprintf_chk. It makes them only on its fatal paths, to
 * print a last line before abort(): _Unwind_Resume returning, the two unwinding phases
 * disagreeing, or an x86_64-unimplemented helper being called (_Unwind_GetDataRelBase,
 * _Unwind_GetTextRelBase). glibc's __fprintf_chk is fprintf with format-string checks
 * (FLAG > 0 refuses %n in a writable format); the formats here are libunwind's own string
 * literals, so plain vfprintf prints exactly what glibc would. Not a copy of anyone's code. */
#include <stdarg.h>
#include <stdio.h>

int __fprintf_chk(FILE *stream, int flag, const char *format, ...);

int __fprintf_chk(FILE *stream, int flag, const char *format, ...)
{
    va_list ap;
    int n;

    (void)flag;
    va_start(ap, format);
    n = vfprintf(stream, format, ap);
    va_end(ap);
    return n;
}
