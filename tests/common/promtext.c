// SPDX-License-Identifier: MIT
/* A strict Prometheus text format (0.0.4) checker; see promtext.h. */
#include "promtext.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct state {
	struct prom_result *res;
	char **series;
	size_t nseries, cap;
	int line;
	char closed[512][128]; /* families whose samples are over */
	size_t nclosed;
	long current; /* index of the family of the last sample, -1 = none */
};

static int fail(struct state *st, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(st->res->error, sizeof(st->res->error), "line %d: ", st->line);

	va_start(ap, fmt);
	vsnprintf(st->res->error + n, sizeof(st->res->error) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static bool name_ok(const char *s, size_t n, bool colon)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      (colon && c == ':') || (i && c >= '0' && c <= '9')))
			return false;
	}
	return n > 0;
}

static struct prom_family *family(struct prom_result *r, const char *name, size_t n)
{
	for (size_t i = 0; i < r->nfamilies; i++)
		if (strlen(r->families[i].name) == n && !strncmp(r->families[i].name, name, n))
			return &r->families[i];
	return NULL;
}

static struct prom_family *add_family(struct prom_result *r, const char *name, size_t n)
{
	struct prom_family *f;

	r->families = realloc(r->families, (r->nfamilies + 1) * sizeof(*r->families));
	f = &r->families[r->nfamilies++];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%.*s", (int)n, name);
	snprintf(f->type, sizeof(f->type), "untyped");
	return f;
}

/* The family a sample name belongs to: histogram/summary suffixes map to their base. */
static struct prom_family *family_of(struct prom_result *r, const char *name, size_t n)
{
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	struct prom_family *f = family(r, name, n);

	if (f)
		return f;
	for (size_t i = 0; i < 3; i++) {
		size_t k = strlen(sfx[i]);

		if (n > k && !strncmp(name + n - k, sfx[i], k)) {
			f = family(r, name, n - k);
			if (f && (!strncmp(f->type, "histogram", 9) ||
				  (!strncmp(f->type, "summary", 7) && i)))
				return f;
		}
	}
	return NULL;
}

/* A Go ParseFloat value as Prometheus writes and reads it. */
static bool value_ok(const char *s, size_t n, double *v)
{
	char buf[64], *end;

	if (!n || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!strcmp(buf, "NaN") || !strcmp(buf, "+Inf") || !strcmp(buf, "-Inf")) {
		*v = buf[0] == '-' ? -INFINITY : buf[0] == '+' ? INFINITY : NAN;
		return true;
	}
	/* strtod takes "inf", "nan", hex and leading spaces; Prometheus does not. */
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789+-.eE", buf[i]))
			return false;
	*v = strtod(buf, &end);
	return *end == '\0';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int sample(struct state *st, const char *line, const char *eol)
{
	const char *p = line, *name_end;
	char *labels[64], key[2048];
	size_t nl = 0, klen;
	struct prom_family *f;
	double v;
	int ret = 0;

	while (p < eol && *p != '{' && *p != ' ')
		p++;
	name_end = p;
	if (!name_ok(line, (size_t)(name_end - line), true))
		return fail(st, "bad metric name");
	f = family_of(st->res, line, (size_t)(name_end - line));
	if (!f || !strncmp(f->type, "untyped", 7))
		return fail(st, "sample of %.*s without a TYPE line before it",
			    (int)(name_end - line), line);
	if (!strncmp(f->type, "counter", 7) && (size_t)(name_end - line) != strlen(f->name))
		return fail(st, "counter sample with a suffix");
	if (*p == '{') {
		p++;
		while (p < eol && *p != '}') {
			const char *k = p, *vstart;
			size_t kn;

			while (p < eol && *p != '=')
				p++;
			kn = (size_t)(p - k);
			if (p >= eol || !name_ok(k, kn, false) || p[1] != '"') {
				ret = fail(st, "bad label");
				goto out;
			}
			if (kn >= 2 && k[0] == '_' && k[1] == '_') {
				ret = fail(st, "label name %.*s is reserved", (int)kn, k);
				goto out;
			}
			p += 2;
			vstart = p;
			while (p < eol && *p != '"') {
				if (*p == '\\') {
					if (p[1] != '"' && p[1] != '\\' && p[1] != 'n') {
						ret = fail(st, "bad escape in a label value");
						goto out;
					}
					p++;
				}
				p++;
			}
			if (p >= eol) {
				ret = fail(st, "unterminated label value");
				goto out;
			}
			if (nl == 64) {
				ret = fail(st, "too many labels");
				goto out;
			}
			if (asprintf(&labels[nl], "%.*s=\"%.*s\"", (int)kn, k, (int)(p - vstart),
				     vstart) < 0)
				abort();
			for (size_t i = 0; i < nl; i++)
				if (!strncmp(labels[i], labels[nl], kn + 1)) {
					nl++;
					ret = fail(st, "label %.*s twice", (int)kn, k);
					goto out;
				}
			nl++;
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}') {
				ret = fail(st, "bad label list");
				goto out;
			}
		}
		if (p >= eol) {
			ret = fail(st, "unterminated label list");
			goto out;
		}
		p++;
	}
	if (*p != ' ') {
		ret = fail(st, "no space before the value");
		goto out;
	}
	p++;
	{
		const char *vs = p, *sp = memchr(p, ' ', (size_t)(eol - p));
		const char *ve = sp ? sp : eol;

		if (!value_ok(vs, (size_t)(ve - vs), &v)) {
			ret = fail(st, "bad value '%.*s'", (int)(ve - vs), vs);
			goto out;
		}
		if (sp) {
			const char *t = sp + 1;

			if (t < eol && *t == '-')
				t++;
			if (t == eol) {
				ret = fail(st, "empty timestamp");
				goto out;
			}
			for (; t < eol; t++)
				if (*t < '0' || *t > '9') {
					ret = fail(st, "bad timestamp");
					goto out;
				}
		}
	}
	if (!strncmp(f->type, "counter", 7) && v < 0) {
		ret = fail(st, "negative counter");
		goto out;
	}
	/* Contiguous families. */
	if (st->current != f - st->res->families) {
		for (size_t i = 0; i < st->nclosed; i++)
			if (!strcmp(st->closed[i], f->name)) {
				ret = fail(st, "samples of %s are not together", f->name);
				goto out;
			}
		if (st->current >= 0 && st->nclosed < 512)
			snprintf(st->closed[st->nclosed++], sizeof(st->closed[0]), "%s",
				 st->res->families[st->current].name);
		st->current = f - st->res->families;
	}
	/* No series twice. */
	qsort(labels, nl, sizeof(*labels), cmp_str);
	klen = (size_t)snprintf(key, sizeof(key), "%.*s{", (int)(name_end - line), line);
	for (size_t i = 0; i < nl && klen < sizeof(key); i++)
		klen += (size_t)snprintf(key + klen, sizeof(key) - klen, "%s,", labels[i]);
	for (size_t i = 0; i < st->nseries; i++)
		if (!strcmp(st->series[i], key)) {
			ret = fail(st, "series %s twice", key);
			goto out;
		}
	if (st->nseries == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 64;
		st->series = realloc(st->series, st->cap * sizeof(*st->series));
	}
	st->series[st->nseries++] = strdup(key);
	f->samples++;
	st->res->samples++;
out:
	for (size_t i = 0; i < nl; i++)
		free(labels[i]);
	return ret;
}

static int comment(struct state *st, const char *line, const char *eol)
{
	bool help = !strncmp(line, "# HELP ", 7), type = !strncmp(line, "# TYPE ", 7);
	const char *name = line + 7, *p = name;
	struct prom_family *f;

	if (!help && !type)
		return 0; /* other comments are allowed */
	while (p < eol && *p != ' ')
		p++;
	if (!name_ok(name, (size_t)(p - name), true))
		return fail(st, "bad metric name in %s", help ? "HELP" : "TYPE");
	f = family(st->res, name, (size_t)(p - name));
	if (f && f->samples && type)
		return fail(st, "TYPE of %s after its samples", f->name);
	if (!f)
		f = add_family(st->res, name, (size_t)(p - name));
	if (help) {
		/* HELP text: only \\ and \n escapes. */
		for (p = p < eol ? p + 1 : p; p < eol; p++)
			if (*p == '\\' && (++p >= eol || (*p != '\\' && *p != 'n')))
				return fail(st, "bad escape in HELP of %s", f->name);
		if (strchr(f->type, '!'))
			return fail(st, "HELP twice for %s", f->name);
		/* Marks HELP seen without a field of its own: "type!" is never a type. */
		strncat(f->type, "!", sizeof(f->type) - strlen(f->type) - 1);
		return 0;
	}
	{
		static const char *const types[] = {"counter", "gauge", "histogram", "summary",
						    "untyped"};
		const char *t = p + 1;
		size_t tn = (size_t)(eol - t), i;
		bool had_help = strchr(f->type, '!') != NULL;

		if (p >= eol || *p != ' ')
			return fail(st, "TYPE without a type");
		if (f->type[0] && strcmp(f->type, "untyped") && strcmp(f->type, "untyped!"))
			return fail(st, "TYPE twice for %s", f->name);
		for (i = 0; i < 5; i++)
			if (strlen(types[i]) == tn && !strncmp(types[i], t, tn))
				break;
		if (i == 5)
			return fail(st, "unknown type '%.*s'", (int)tn, t);
		if (i == 0 &&
		    (strlen(f->name) < 6 || strcmp(f->name + strlen(f->name) - 6, "_total")))
			return fail(st, "counter %s does not end in _total", f->name);
		snprintf(f->type, sizeof(f->type), "%s%s", types[i], had_help ? "!" : "");
		return 0;
	}
}

int prom_check(const char *text, struct prom_result *res)
{
	struct state st = {.res = res, .current = -1};
	const char *p = text;
	int ret = 0;

	memset(res, 0, sizeof(*res));
	while (*p && !ret) {
		const char *eol = strchr(p, '\n');

		st.line++;
		if (!eol) {
			ret = fail(&st, "no newline at the end");
			break;
		}
		if (eol == p)
			; /* empty lines are ignored */
		else if (*p == '#')
			ret = comment(&st, p, eol);
		else
			ret = sample(&st, p, eol);
		p = eol + 1;
	}
	/* The "!" HELP markers are internal. */
	for (size_t i = 0; i < res->nfamilies; i++) {
		char *bang = strchr(res->families[i].type, '!');

		if (bang)
			*bang = '\0';
	}
	for (size_t i = 0; i < st.nseries; i++)
		free(st.series[i]);
	free(st.series);
	return ret;
}

void prom_result__free(struct prom_result *res)
{
	free(res->families);
	res->families = NULL;
	res->nfamilies = 0;
}

const struct prom_family *prom_find(const struct prom_result *res, const char *name)
{
	for (size_t i = 0; i < res->nfamilies; i++)
		if (!strcmp(res->families[i].name, name))
			return &res->families[i];
	return NULL;
}
