/* signwatch: making hostile strings safe to print on a terminal or in a
 * log line: control characters, bidi overrides and invalid UTF-8 never
 * reach the reader raw. */
#ifndef SW_TEXT_ESCAPE_H
#define SW_TEXT_ESCAPE_H

/* C0/C1 controls and DEL as \xNN, backslash doubled, bidi controls
 * (U+200E/F, U+202A-202E, U+2066-2069) as \u{XXXX}, invalid UTF-8 as
 * U+FFFD. malloc'd. */
char *sw_escape_terminal(const char *s);

#endif
