/* signwatch: compiler attributes shared by every subsystem. */
#ifndef SW_ATTR_H
#define SW_ATTR_H

/* printf-style checking. GCC's "printf" archetype means the C library's
 * dialect, which on mingw-w64 is msvcrt's (no %zu, %lld as I64); we always
 * build with a C99 printf (__USE_MINGW_ANSI_STDIO there), which is
 * gnu_printf. clang knows only "printf". */
#if defined(__GNUC__) && !defined(__clang__)
#define SW_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__clang__)
#define SW_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SW_PRINTF(f, a)
#endif

#endif
