/* signwatch: Sentinel hunting rules from YAML. See rules.h.
 *
 * libyaml's event API is used rather than its document loader because the
 * loader recurses per nesting level and keeps every node: a hostile file of
 * nested brackets would exhaust the stack. Events let us walk the few keys
 * we read and skip the rest with a depth cap. */
#include "rules.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "builtin_rule.h"
#include "text.h"

/* Let the compiler check our printf-style message helpers. */
#if defined(__GNUC__) || defined(__clang__)
#include "sw_attr.h"
#else
#define SW_PRINTF(f, a)
#endif

#define MAX_SKIP_DEPTH 64 /* nesting of keys we do not read (metadata, entityMappings) */
#define MAX_LIST 256      /* tactics / techniques */
#define MAX_ID 128
#define MAX_NAME 1024

typedef struct strlist {
	char **v;
	size_t n;
} strlist;

typedef struct rule {
	char *id, *name, *description, *query, *file;
	long id_line, id_col;
	strlist tactics, techniques;
	sw_kql *kql;
} rule;

struct sw_rules {
	rule *v;
	size_t n, cap;
	char **errs;
	size_t n_errs, cap_errs;
};

static void strlist_free(strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void rule_free(rule *r)
{
	free(r->id);
	free(r->name);
	free(r->description);
	free(r->query);
	free(r->file);
	strlist_free(&r->tactics);
	strlist_free(&r->techniques);
	sw_kql_free(r->kql);
	memset(r, 0, sizeof *r);
}

sw_rules *sw_rules_new(void) { return calloc(1, sizeof(sw_rules)); }

void sw_rules_free(sw_rules *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		rule_free(&rs->v[i]);
	free(rs->v);
	for (size_t i = 0; i < rs->n_errs; i++)
		free(rs->errs[i]);
	free(rs->errs);
	free(rs);
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static char *dups(const char *s) { return dupn(s, strlen(s)); }

/* Record "FILE:LINE:COL: message" (line 0: msg carries its own "LINE:COL: ";
 * file NULL: msg is complete). Returns e so callers can return it. */
static SW_PRINTF(6, 7) sw_err
        add_error(sw_rules *rs, sw_err e, const char *file, long line, long col, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (rs->n_errs >= SW_RULES_MAX_ERRORS)
		return e;
	if (rs->n_errs == rs->cap_errs) {
		size_t cap = rs->cap_errs ? rs->cap_errs * 2 : 8;
		char **v = realloc(rs->errs, cap * sizeof *v);
		if (!v)
			return e;
		rs->errs = v;
		rs->cap_errs = cap;
	}
	size_t need = strlen(file) + strlen(msg) + 48;
	char *s = malloc(need);
	if (!s)
		return e;
	if (!file)
		snprintf(s, need, "%s", msg);
	else if (line > 0)
		snprintf(s, need, "%s:%ld:%ld: %s", file, line, col, msg);
	else /* msg already starts with "LINE:COL: " */
		snprintf(s, need, "%s:%s", file, msg);
	rs->errs[rs->n_errs++] = s;
	return e;
}

size_t sw_rules_error_count(const sw_rules *rs) { return rs->n_errs; }
const char *sw_rules_error(const sw_rules *rs, size_t i) { return i < rs->n_errs ? rs->errs[i] : NULL; }

/* ---------- positions ---------- */

/* Length of the line break at b[i] by libyaml's rules (CR LF, CR, LF, NEL,
 * LS, PS), 0 if none, so our line numbers agree with its marks. */
static size_t break_len(const char *b, size_t n, size_t i)
{
	unsigned char c = (unsigned char)b[i];
	if (c == '\r')
		return (i + 1 < n && b[i + 1] == '\n') ? 2 : 1;
	if (c == '\n')
		return 1;
	if (c == 0xC2 && i + 1 < n && (unsigned char)b[i + 1] == 0x85)
		return 2;
	if (c == 0xE2 && i + 2 < n && (unsigned char)b[i + 1] == 0x80 &&
	    ((unsigned char)b[i + 2] == 0xA8 || (unsigned char)b[i + 2] == 0xA9))
		return 3;
	return 0;
}

/* Offset of the start of 0-based line L, or n when there is no such line. */
static size_t line_offset(const char *b, size_t n, size_t L)
{
	size_t i = 0, line = 0;
	while (line < L && i < n) {
		size_t k = break_len(b, n, i);
		if (k) {
			i += k;
			line++;
		} else {
			i++;
		}
	}
	return line == L ? i : n;
}

/* 1-based line and column (in code points) of byte offset off. */
static void pos_of(const char *b, size_t n, size_t off, long *line, long *col)
{
	long l = 1, c = 1;
	size_t i = 0;
	if (n >= 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0 && off >= 3)
		i = 3; /* the BOM takes no column */
	while (i < off && i < n) {
		size_t k = break_len(b, n, i);
		if (k && i + k <= off) {
			i += k;
			l++;
			c = 1;
			continue;
		}
		if (((unsigned char)b[i] & 0xC0) != 0x80)
			c++;
		i++;
	}
	*line = l;
	*col = c;
}

/* ---------- YAML walking ---------- */

typedef struct yp {
	yaml_parser_t y;
	yaml_event_t ev;
	bool have;
	sw_rules *rs;
	const char *file;
	const char *buf;
	size_t len;
	sw_err err;
} yp;

static SW_PRINTF(3, 4) sw_err yfail(yp *p, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!p->err)
		p->err = add_error(p->rs, SW_ERR_RULE, p->file, (long)m->line + 1, (long)m->column + 1, "%s",
		                   msg);
	return p->err;
}

static void syntax_error(yp *p)
{
	const yaml_parser_t *y = &p->y;
	const yaml_mark_t *m = &y->problem_mark;
	const char *problem = y->problem ? y->problem : "malformed YAML";
	char ctx[160] = "";
	if (y->context)
		snprintf(ctx, sizeof ctx, " (%s at line %ld)", y->context, (long)y->context_mark.line + 1);
	const char *hint = "";
	if (strstr(problem, "cannot start any token") || strstr(problem, "tab")) {
		hint = "; YAML indents with spaces, not tabs (a tab is fine inside a '|' block, after the "
		       "indentation)";
	} else if (strstr(problem, "expected key") || strstr(problem, "expected <block end>") ||
	           strstr(problem, "expected '-'") || strstr(problem, "not allowed in this context")) {
		hint = "; check the indentation: keys of one mapping must line up, and in a list item the "
		       "keys "
		       "after '- ' line up with the first one (requiredDataConnectors: 'dataTypes:' goes two "
		       "spaces "
		       "right of '-', under 'connectorId:')";
	}
	if (y->error == YAML_MEMORY_ERROR)
		p->err = add_error(p->rs, SW_ERR_NOMEM, p->file, 1, 1, "out of memory");
	else
		yfail(p, m, "YAML syntax error: %s%s%s", problem, ctx, hint);
}

/* Advance to the next event. */
static bool ynext(yp *p)
{
	if (p->err)
		return false;
	if (p->have) {
		yaml_event_delete(&p->ev);
		p->have = false;
	}
	if (!yaml_parser_parse(&p->y, &p->ev)) {
		syntax_error(p);
		return false;
	}
	p->have = true;
	return true;
}

/* Skip the value whose first event is current. */
static bool skip_value(yp *p)
{
	yaml_event_type_t t = p->ev.type;
	if (t != YAML_SEQUENCE_START_EVENT && t != YAML_MAPPING_START_EVENT)
		return true;
	int depth = 1;
	while (depth > 0) {
		if (!ynext(p))
			return false;
		t = p->ev.type;
		if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
			if (++depth > MAX_SKIP_DEPTH) {
				yfail(p, &p->ev.start_mark, "nesting deeper than %d levels", MAX_SKIP_DEPTH);
				return false;
			}
		} else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
			depth--;
		} else if (t == YAML_STREAM_END_EVENT) {
			return false;
		}
	}
	return true;
}

typedef struct scalar {
	char *s;
	size_t len;
	yaml_mark_t mark;
	yaml_scalar_style_t style;
	bool set;
} scalar;

/* The current event as a text value for key. */
static bool take_scalar(yp *p, const char *key, scalar *out)
{
	if (p->ev.type == YAML_ALIAS_EVENT) {
		yfail(p, &p->ev.start_mark, "'%s' is a YAML alias; write the value out", key);
		return false;
	}
	if (p->ev.type != YAML_SCALAR_EVENT) {
		yfail(p, &p->ev.start_mark, "'%s' must be a single text value, not a list or mapping", key);
		return false;
	}
	out->len = p->ev.data.scalar.length;
	out->s = dupn((const char *)p->ev.data.scalar.value, out->len);
	if (!out->s) {
		p->err = add_error(p->rs, SW_ERR_NOMEM, p->file, 1, 1, "out of memory");
		return false;
	}
	out->mark = p->ev.start_mark;
	out->style = p->ev.data.scalar.style;
	out->set = true;
	return true;
}

static bool list_add(yp *p, strlist *l, const char *s, size_t n, const yaml_mark_t *m)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return true;
	if (l->n >= MAX_LIST) {
		yfail(p, m, "more than %d items", MAX_LIST);
		return false;
	}
	char **v = realloc(l->v, (l->n + 1) * sizeof *v);
	if (!v) {
		p->err = add_error(p->rs, SW_ERR_NOMEM, p->file, 1, 1, "out of memory");
		return false;
	}
	l->v = v;
	if (!(l->v[l->n] = dupn(s, n))) {
		p->err = add_error(p->rs, SW_ERR_NOMEM, p->file, 1, 1, "out of memory");
		return false;
	}
	l->n++;
	return true;
}

/* tactics / relevantTechniques: a list of text, or one text (upstream
 * writes both; "A, B" in one text is split at the commas). */
static bool take_list(yp *p, const char *key, strlist *out)
{
	if (p->ev.type == YAML_SCALAR_EVENT) {
		const char *s = (const char *)p->ev.data.scalar.value;
		size_t n = p->ev.data.scalar.length;
		yaml_mark_t m = p->ev.start_mark;
		size_t start = 0;
		for (size_t i = 0; i <= n; i++)
			if (i == n || s[i] == ',') {
				if (!list_add(p, out, s + start, i - start, &m))
					return false;
				start = i + 1;
			}
		return true;
	}
	if (p->ev.type != YAML_SEQUENCE_START_EVENT) {
		yfail(p, &p->ev.start_mark, "'%s' must be a list of text values", key);
		return false;
	}
	for (;;) {
		if (!ynext(p))
			return false;
		if (p->ev.type == YAML_SEQUENCE_END_EVENT)
			return true;
		if (p->ev.type != YAML_SCALAR_EVENT) {
			yfail(p, &p->ev.start_mark, "items of '%s' must be text values", key);
			return false;
		}
		yaml_mark_t m = p->ev.start_mark;
		if (!list_add(p, out, (const char *)p->ev.data.scalar.value, p->ev.data.scalar.length, &m))
			return false;
	}
}

static bool has_control(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
			return true;
	return false;
}

/* Where the query text starts in the file, so KQL messages point there:
 * a '|' or '>' block starts on the line after the indicator, indented by
 * the block's indentation; a flow scalar starts at its mark (after the
 * quote). Lines inside a folded or multi-line flow scalar are approximate. */
static void query_origin(const yp *p, const scalar *q, int *line_base, int *col_base)
{
	if (q->style == YAML_LITERAL_SCALAR_STYLE || q->style == YAML_FOLDED_SCALAR_STYLE) {
		size_t L = q->mark.line + 1;
		*line_base = (int)L + 1;
		*col_base = 1;
		/* The indentation is that of the first non-blank content line. */
		for (size_t k = 0; k < 64; k++) {
			size_t off = line_offset(p->buf, p->len, L + k);
			if (off >= p->len)
				break;
			size_t i = off;
			while (i < p->len && p->buf[i] == ' ')
				i++;
			if (i < p->len && !break_len(p->buf, p->len, i)) {
				*col_base = (int)(i - off) + 1;
				break;
			}
		}
		return;
	}
	*line_base = (int)q->mark.line + 1;
	*col_base =
	        (int)q->mark.column + 1 +
	        (q->style == YAML_SINGLE_QUOTED_SCALAR_STYLE || q->style == YAML_DOUBLE_QUOTED_SCALAR_STYLE);
}

/* Parse one rule document into r (p->rs collects errors). */
static bool parse_rule(yp *p, rule *r)
{
	scalar id = { 0 }, name = { 0 }, desc = { 0 }, query = { 0 };
	bool ok = false, seen_tac = false, seen_tech = false;
	yaml_mark_t top = { 0, 0, 0 };

	if (!ynext(p) || p->ev.type != YAML_STREAM_START_EVENT)
		goto out;
	if (!ynext(p))
		goto out;
	if (p->ev.type == YAML_STREAM_END_EVENT) {
		yfail(p, &p->ev.start_mark, "empty rule file; a Sentinel rule needs id, name and query");
		goto out;
	}
	if (!ynext(p))
		goto out;
	top = p->ev.start_mark;
	if (p->ev.type != YAML_MAPPING_START_EVENT) {
		yfail(p, &p->ev.start_mark,
		      "expected the rule's keys (id:, name:, query:, ...) at the top level");
		goto out;
	}
	for (;;) {
		if (!ynext(p))
			goto out;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			break;
		if (p->ev.type != YAML_SCALAR_EVENT) {
			yfail(p, &p->ev.start_mark, "keys must be plain names");
			goto out;
		}
		char key[64];
		size_t kn = p->ev.data.scalar.length;
		yaml_mark_t km = p->ev.start_mark;
		if (kn >= sizeof key)
			kn = sizeof key - 1;
		memcpy(key, p->ev.data.scalar.value, kn);
		key[kn] = '\0';
		if (!ynext(p))
			goto out;
		scalar *dst = strcmp(key, "id") == 0            ? &id
		              : strcmp(key, "name") == 0        ? &name
		              : strcmp(key, "description") == 0 ? &desc
		              : strcmp(key, "query") == 0       ? &query
		                                                : NULL;
		if (dst) {
			if (dst->set) {
				yfail(p, &km, "key '%s' appears twice; keep one", key);
				goto out;
			}
			if (!take_scalar(p, key, dst))
				goto out;
		} else if (strcmp(key, "tactics") == 0 || strcmp(key, "relevantTechniques") == 0) {
			bool tac = key[0] == 't';
			if (tac ? seen_tac : seen_tech) {
				yfail(p, &km, "key '%s' appears twice; keep one", key);
				goto out;
			}
			*(tac ? &seen_tac : &seen_tech) = true;
			if (!take_list(p, key, tac ? &r->tactics : &r->techniques))
				goto out;
		} else if (!skip_value(p)) {
			/* Other Sentinel keys (version, kind, tags, metadata,
			 * requiredDataConnectors, entityMappings, ...) are tolerated. */
			goto out;
		}
	}
	if (!ynext(p) || p->ev.type != YAML_DOCUMENT_END_EVENT)
		goto out;
	if (!ynext(p))
		goto out;
	if (p->ev.type != YAML_STREAM_END_EVENT) {
		yfail(p, &p->ev.start_mark, "a second YAML document; put one rule per file");
		goto out;
	}

	const char *missing = !id.set ? "id" : !name.set ? "name" : !query.set ? "query" : NULL;
	if (missing) {
		yfail(p, &top, "missing '%s:'; a Sentinel rule needs id, name and query", missing);
		goto out;
	}
	if (id.len == 0 || id.len > MAX_ID) {
		yfail(p, &id.mark, "'id' must be 1 to %d characters (Sentinel uses a UUID)", MAX_ID);
		goto out;
	}
	for (size_t i = 0; i < id.len; i++) {
		unsigned char c = (unsigned char)id.s[i];
		if (c <= 0x20 || c >= 0x7F) {
			yfail(p, &id.mark,
			      "'id' must be printable ASCII without spaces (Sentinel uses a UUID)");
			goto out;
		}
	}
	if (name.len == 0 || name.len > MAX_NAME || has_control(name.s, name.len)) {
		yfail(p, &name.mark, "'name' must be one line of 1 to %d bytes", MAX_NAME);
		goto out;
	}
	if (query.len == 0) {
		yfail(p, &query.mark, "'query' is empty");
		goto out;
	}
	int lb, cb;
	query_origin(p, &query, &lb, &cb);
	char kerr[512];
	sw_err ke = sw_kql_compile(query.s, query.len, lb, cb, &r->kql, kerr, sizeof kerr);
	if (ke != SW_OK) {
		p->err = add_error(p->rs, ke, p->file, 0, 0, "%s", kerr);
		goto out;
	}
	r->id = id.s;
	r->name = name.s;
	r->description = desc.s ? desc.s : dups("");
	r->query = query.s;
	r->id_line = (long)id.mark.line + 1;
	r->id_col = (long)id.mark.column + 1;
	id.s = name.s = desc.s = query.s = NULL;
	if (!r->description) {
		p->err = add_error(p->rs, SW_ERR_NOMEM, p->file, 1, 1, "out of memory");
		goto out;
	}
	ok = true;
out:
	if (!ok && !p->err)
		yfail(p, p->have ? &p->ev.start_mark : &top, "unexpected YAML structure for a Sentinel rule");
	free(id.s);
	free(name.s);
	free(desc.s);
	free(query.s);
	return ok;
}

sw_err sw_rules_load_buffer(sw_rules *rs, const char *file, const char *buf, size_t len)
{
	if (len > SW_RULES_MAX_FILE)
		return add_error(rs, SW_ERR_TOO_LARGE, file, 1, 1,
		                 "rule file is larger than %u KiB; is it really a Sentinel rule?",
		                 SW_RULES_MAX_FILE / 1024);
	size_t bad;
	if (!sw_text_utf8_valid(buf, len, &bad)) {
		long l, c;
		pos_of(buf, len, bad, &l, &c);
		return add_error(rs, SW_ERR_RULE, file, l, c,
		                 "not UTF-8 text (byte 0x%02X); save the rule file as UTF-8",
		                 (unsigned char)buf[bad]);
	}
	if (rs->n >= SW_RULES_MAX_RULES)
		return add_error(rs, SW_ERR_LIMIT, file, 1, 1, "more than %d rules", SW_RULES_MAX_RULES);

	yp P;
	memset(&P, 0, sizeof P);
	P.rs = rs;
	P.file = file;
	P.buf = buf;
	P.len = len;
	if (!yaml_parser_initialize(&P.y))
		return add_error(rs, SW_ERR_NOMEM, file, 1, 1, "out of memory");
	/* No yaml_parser_set_encoding(): with it libyaml would not skip a BOM.
	 * The buffer is known to be UTF-8 by now, so detection finds UTF-8. */
	yaml_parser_set_input_string(&P.y, (const unsigned char *)buf, len);
	rule r;
	memset(&r, 0, sizeof r);
	bool ok = parse_rule(&P, &r);
	if (P.have)
		yaml_event_delete(&P.ev);
	yaml_parser_delete(&P.y);
	if (!ok) {
		rule_free(&r);
		return P.err;
	}
	long dup = sw_rules_find(rs, r.id);
	if (dup >= 0) {
		sw_err e = add_error(
		        rs, SW_ERR_RULE, file, r.id_line, r.id_col,
		        "duplicate rule id '%s' (already loaded from %s:%ld); give each rule its own id",
		        r.id, rs->v[dup].file, rs->v[dup].id_line);
		rule_free(&r);
		return e;
	}
	if (!(r.file = dups(file))) {
		rule_free(&r);
		return add_error(rs, SW_ERR_NOMEM, file, 1, 1, "out of memory");
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 8;
		rule *v = realloc(rs->v, cap * sizeof *v);
		if (!v) {
			rule_free(&r);
			return add_error(rs, SW_ERR_NOMEM, file, 1, 1, "out of memory");
		}
		rs->v = v;
		rs->cap = cap;
	}
	rs->v[rs->n++] = r;
	return SW_OK;
}

sw_err sw_rules_load_file(sw_rules *rs, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return add_error(rs, SW_ERR_IO, path, 1, 1, "cannot open rule file: %s", strerror(errno));
	/* Read at most one byte past the cap: a huge file is refused, not read. */
	char *buf = malloc(SW_RULES_MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		return add_error(rs, SW_ERR_NOMEM, path, 1, 1, "out of memory");
	}
	size_t n = 0;
	while (n <= SW_RULES_MAX_FILE) {
		size_t k = fread(buf + n, 1, SW_RULES_MAX_FILE + 1 - n, f);
		if (k == 0)
			break;
		n += k;
	}
	int rd_err = ferror(f) ? errno : 0;
	bool failed = ferror(f) != 0;
	fclose(f);
	sw_err e;
	if (failed)
		e = add_error(rs, SW_ERR_IO, path, 1, 1, "cannot read rule file: %s",
		              rd_err ? strerror(rd_err) : "read error");
	else if (n > SW_RULES_MAX_FILE)
		e = add_error(rs, SW_ERR_TOO_LARGE, path, 1, 1,
		              "rule file is larger than %u KiB; is it really a Sentinel rule?",
		              SW_RULES_MAX_FILE / 1024);
	else
		e = sw_rules_load_buffer(rs, path, buf, n);
	free(buf);
	return e;
}

static bool rule_ext(const char *name)
{
	size_t n = strlen(name);
	if (name[0] == '.') /* editor droppings such as .#x.yaml */
		return false;
	const char *exts[] = { ".yaml", ".yml" };
	for (size_t i = 0; i < 2; i++) {
		size_t k = strlen(exts[i]);
		if (n > k) {
			bool eq = true;
			for (size_t j = 0; j < k; j++) {
				char c = name[n - k + j];
				if (c >= 'A' && c <= 'Z')
					c = (char)(c + 32);
				eq = eq && c == exts[i][j];
			}
			if (eq)
				return true;
		}
	}
	return false;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

sw_err sw_rules_load_path(sw_rules *rs, const char *path, const sw_rules_dir_ops *ops)
{
	int d = ops && ops->is_dir ? ops->is_dir(ops->ud, path) : 0;
	if (d < 0)
		return add_error(rs, SW_ERR_IO, path, 1, 1, "cannot access rule path: %s", strerror(errno));
	if (d == 0)
		return sw_rules_load_file(rs, path);
	char **names = NULL;
	size_t n = 0;
	sw_err e = ops->list(ops->ud, path, &names, &n);
	if (e != SW_OK)
		return add_error(rs, e, path, 1, 1, "cannot list rule folder: %s", sw_err_str(e));
	qsort(names, n, sizeof *names, cmp_names);
	sw_err first = SW_OK;
	size_t plen = strlen(path);
	bool sep = plen > 0 && (path[plen - 1] == '/' || path[plen - 1] == '\\');
	for (size_t i = 0; i < n; i++) {
		if (rule_ext(names[i])) {
			size_t need = plen + strlen(names[i]) + 2;
			char *full = malloc(need);
			if (!full) {
				e = add_error(rs, SW_ERR_NOMEM, path, 1, 1, "out of memory");
			} else {
				snprintf(full, need, "%s%s%s", path, sep ? "" : "/", names[i]);
				e = sw_rules_load_file(rs, full);
				free(full);
			}
			if (e != SW_OK && first == SW_OK)
				first = e;
		}
		free(names[i]);
	}
	free(names);
	return first;
}

sw_err sw_rules_add_builtin(sw_rules *rs, bool *added)
{
	if (added)
		*added = false;
	/* Load into a set of its own first, to learn its id. */
	sw_rules *tmp = sw_rules_new();
	if (!tmp)
		return SW_ERR_NOMEM;
	sw_err e =
	        sw_rules_load_buffer(tmp, "<builtin>", sw_builtin_rule_yaml, sizeof sw_builtin_rule_yaml - 1);
	if (e != SW_OK || tmp->n != 1) {
		for (size_t i = 0; i < tmp->n_errs; i++)
			add_error(rs, e ? e : SW_ERR_RULE, NULL, 0, 0, "%s", tmp->errs[i]);
		sw_rules_free(tmp);
		return e ? e : SW_ERR_RULE;
	}
	if (sw_rules_find(rs, tmp->v[0].id) >= 0) {
		sw_rules_free(tmp);
		return SW_OK;
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 8;
		rule *v = realloc(rs->v, cap * sizeof *v);
		if (!v) {
			sw_rules_free(tmp);
			return SW_ERR_NOMEM;
		}
		rs->v = v;
		rs->cap = cap;
	}
	rs->v[rs->n++] = tmp->v[0];
	tmp->n = 0;
	sw_rules_free(tmp);
	if (added)
		*added = true;
	return SW_OK;
}

size_t sw_rules_count(const sw_rules *rs) { return rs->n; }

#define RULE_OR(i, expr, dflt) ((i) < rs->n ? (expr) : (dflt))

const char *sw_rule_id(const sw_rules *rs, size_t i) { return RULE_OR(i, rs->v[i].id, ""); }
const char *sw_rule_name(const sw_rules *rs, size_t i) { return RULE_OR(i, rs->v[i].name, ""); }
const char *sw_rule_description(const sw_rules *rs, size_t i) { return RULE_OR(i, rs->v[i].description, ""); }
const char *sw_rule_query(const sw_rules *rs, size_t i) { return RULE_OR(i, rs->v[i].query, ""); }
const char *sw_rule_file(const sw_rules *rs, size_t i) { return RULE_OR(i, rs->v[i].file, ""); }
size_t sw_rule_tactic_count(const sw_rules *rs, size_t i) { return RULE_OR(i, rs->v[i].tactics.n, 0); }
size_t sw_rule_technique_count(const sw_rules *rs, size_t i) { return RULE_OR(i, rs->v[i].techniques.n, 0); }
const sw_kql *sw_rule_kql(const sw_rules *rs, size_t i) { return RULE_OR(i, rs->v[i].kql, NULL); }

const char *sw_rule_tactic(const sw_rules *rs, size_t i, size_t j)
{
	return i < rs->n && j < rs->v[i].tactics.n ? rs->v[i].tactics.v[j] : "";
}

const char *sw_rule_technique(const sw_rules *rs, size_t i, size_t j)
{
	return i < rs->n && j < rs->v[i].techniques.n ? rs->v[i].techniques.v[j] : "";
}

long sw_rules_find(const sw_rules *rs, const char *id)
{
	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->v[i].id, id) == 0)
			return (long)i;
	return -1;
}
