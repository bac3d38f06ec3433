/* signwatch: helpers shared by the Windows platform files, implemented
 * once in platform_windows.c. Not part of platform.h: nothing outside
 * platform/windows/ includes this. */
#ifndef SW_WIN_INTERNAL_H
#define SW_WIN_INTERNAL_H

#include <stddef.h>
#include <wchar.h>

#include "sw_error.h"

/* UTF-16 (wlen units, or NUL-terminated when wlen < 0) to malloc'd UTF-8,
 * sanitized (sw_utf8_sanitize: unpaired surrogates become U+FFFD). NULL
 * when out of memory. */
char *sw_win_wide_to_utf8(const wchar_t *w, int wlen);
/* The same into out (n bytes), cut at a character boundary when it does
 * not fit; "" on failure. */
void sw_win_wide_to_utf8_buf(const wchar_t *w, char *out, size_t n);
/* UTF-8 to malloc'd UTF-16 (NUL-terminated); invalid sequences become
 * U+FFFD. NULL when out of memory. For text; paths go through the strict
 * conversion with the \\?\ prefix inside platform_windows.c. */
wchar_t *sw_win_utf8_to_wide(const char *s);

/* FormatMessage's text for a Windows error code (English when available),
 * UTF-8, without the trailing newline and full stop; "Windows error N"
 * when there is none. */
void sw_win_strerror(unsigned long err, char *out, size_t n);

/* %ProgramData%\signwatch gets a protected DACL (SYSTEM and Administrators
 * full control, inherited), made first when missing. why gets a message
 * on failure. */
sw_err sw_win_protect_data_dir(char *why, size_t n);

/* service_windows.c: sw_plat_notify's systemd words (READY=1,
 * STOPPING=1) as service states, when running as the service. */
void sw_win_service_notify(const char *state);

#endif
