#include "text_escape.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

static int is_bidi(uint32_t cp)
{
	return cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0x061c;
}

char *sw_escape_terminal(const char *in)
{
	char *s = sw_utf8_sanitize(in, strlen(in));
	if (!s)
		return NULL;
	size_t len = strlen(s);
	char *out = malloc(len * 8 + 1); /* worst case: \u{XXXX} per 3-byte char */
	if (!out) {
		free(s);
		return NULL;
	}
	size_t o = 0;
	const uint8_t *p = (const uint8_t *)s;
	for (size_t i = 0; i < len;) {
		uint8_t c = p[i];
		if (c < 0x20 || c == 0x7f) {
			o += (size_t)sprintf(out + o, "\\x%02x", c);
			i++;
		} else if (c == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
			i++;
		} else if (c < 0x80) {
			out[o++] = (char)c;
			i++;
		} else {
			/* Sanitized: a valid sequence of 2..4 bytes. */
			size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			uint32_t cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
			for (size_t k = 1; k < n; k++)
				cp = cp << 6 | (p[i + k] & 0x3f);
			if ((cp >= 0x80 && cp < 0xa0) || is_bidi(cp))
				o += (size_t)sprintf(out + o, "\\u{%04x}", cp);
			else {
				memcpy(out + o, p + i, n);
				o += n;
			}
			i += n;
		}
	}
	out[o] = 0;
	free(s);
	return out;
}
