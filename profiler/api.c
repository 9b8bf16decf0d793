// SPDX-License-Identifier: MIT
/*
 * profiler/api.c — JSON for /api/... (api.h), built with jansson.
 */
#include "api.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

void api_series__add(void *ctx, int64_t time_ns, int64_t duration_ns, uint64_t samples,
		     int64_t period_ns)
{
	struct api_series *s = ctx;

	xgrow((void **)&s->points, &s->cap, s->n + 1, sizeof(*s->points));
	s->points[s->n++] = (struct api_point){time_ns, duration_ns, samples};
	if (!s->period_ns)
		s->period_ns = period_ns;
}

void api_series__release(struct api_series *s)
{
	free(s->points);
	memset(s, 0, sizeof(*s));
}

/* ---- jansson helpers ------------------------------------------------------- */

/*
 * A JSON string of @s. jansson refuses invalid UTF-8 (a symbol name is just
 * bytes in an ELF file), so such a name is sent with its non-ASCII bytes
 * replaced by '?' rather than not at all.
 */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s ? s : "");
	char *copy;

	if (j)
		return j;
	copy = xstrdup(s);
	for (char *c = copy; *c; c++)
		if ((unsigned char)*c >= 0x80)
			*c = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static json_t *jsecs(int64_t ns)
{
	return json_real((double)ns / 1e9);
}

static int dump_cb(const char *buf, size_t size, void *data)
{
	strbuf_add(data, buf, size);
	return 0;
}

/* Appends @root (which it takes) to @out, compact, and a newline; frees @root. */
static int dump(json_t *root, struct strbuf *out)
{
	int err = 0;

	if (!root)
		return -ENOMEM;
	/* Key order as built: the answers are read by people too. */
	if (json_dump_callback(root, dump_cb, out, JSON_COMPACT | JSON_PRESERVE_ORDER))
		err = -EIO;
	else
		strbuf_addc(out, '\n');
	json_decref(root);
	return err;
}

/* The object every answer starts with: the time range and the sample total. */
static json_t *head(int64_t start_ns, int64_t end_ns)
{
	json_t *o = json_object();

	json_object_set_new(o, "start", jsecs(start_ns));
	json_object_set_new(o, "end", jsecs(end_ns));
	return o;
}

static double fraction(uint64_t n, uint64_t total)
{
	return total ? (double)n / (double)total : 0.0;
}

/* ---- /api/timeseries --------------------------------------------------------- */

int api_timeseries_json(const struct api_series *s, int64_t start_ns, int64_t end_ns,
			struct strbuf *out)
{
	json_t *root = head(start_ns, end_ns), *pts = json_array();
	double period_s = (double)s->period_ns / 1e9;

	json_object_set_new(root, "period_seconds", json_real(period_s));
	for (size_t i = 0; i < s->n; i++) {
		const struct api_point *p = &s->points[i];
		double cpu = (double)p->samples * period_s;
		json_t *o = json_object();

		json_object_set_new(o, "time", jsecs(p->time_ns));
		json_object_set_new(o, "duration", jsecs(p->duration_ns));
		json_object_set_new(o, "samples", json_integer((json_int_t)p->samples));
		json_object_set_new(o, "cpu_seconds", json_real(cpu));
		json_object_set_new(
			o, "cores",
			json_real(p->duration_ns > 0 ? cpu / ((double)p->duration_ns / 1e9) : 0.0));
		json_array_append_new(pts, o);
	}
	json_object_set_new(root, "points", pts);
	return dump(root, out);
}

/* ---- /api/top ------------------------------------------------------------------ */

struct fn_count {
	uint32_t fn; /* function id */
	uint64_t self, total;
	const struct prof_profile *p; /* for the tie-break by name */
};

static int by_self(const void *a, const void *b)
{
	const struct fn_count *x = a, *y = b;

	if (x->self != y->self)
		return x->self > y->self ? -1 : 1;
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return strcmp(prof_str(x->p, x->p->functions[x->fn - 1].name),
		      prof_str(y->p, y->p->functions[y->fn - 1].name));
}

static int by_total(const void *a, const void *b)
{
	const struct fn_count *x = a, *y = b;

	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return by_self(a, b);
}

int api_top_json(const struct prof_profile *p, unsigned int limit, enum api_sort sort,
		 struct strbuf *out)
{
	struct fn_count *c = xcalloc((size_t)p->nfunctions + 1, sizeof(*c));
	/* seen[f] = sample index + 1: counts a function once per sample for total. */
	uint32_t *seen = xcalloc((size_t)p->nfunctions + 1, sizeof(*seen));
	json_t *root = head(p->time_nanos, p->time_nanos + p->duration_nanos), *arr;
	size_t n = 0;

	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		bool leaf = true;

		for (uint32_t k = 0; k < s->nlocs; k++) {
			const struct prof_location *l =
				&p->locations[p->sample_locs[s->loc_start + k] - 1];

			for (uint32_t j = 0; j < l->nlines; j++) {
				uint32_t f = p->lines[l->line_start + j].function;

				if (!f || f > p->nfunctions)
					continue;
				if (leaf)
					c[f].self += s->count;
				leaf = false;
				if (seen[f] != i + 1) {
					seen[f] = i + 1;
					c[f].total += s->count;
				}
			}
			/* A frame without a name still is the leaf: nobody else gets its self. */
			leaf = false;
		}
	}
	/* Compact to the functions that were seen. */
	for (uint32_t f = 1; f <= p->nfunctions; f++)
		if (c[f].total)
			c[n++] = (struct fn_count){f, c[f].self, c[f].total, p};
	qsort(c, n, sizeof(*c), sort == API_SORT_TOTAL ? by_total : by_self);
	if (limit && n > limit)
		n = limit;

	json_object_set_new(root, "total_samples", json_integer((json_int_t)p->total_count));
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct prof_function *fn = &p->functions[c[i].fn - 1];
		json_t *o = json_object();

		json_object_set_new(o, "name", jstr(prof_str(p, fn->name)));
		if (fn->filename)
			json_object_set_new(o, "file", jstr(prof_str(p, fn->filename)));
		json_object_set_new(o, "self", json_integer((json_int_t)c[i].self));
		json_object_set_new(o, "self_fraction",
				    json_real(fraction(c[i].self, p->total_count)));
		json_object_set_new(o, "total", json_integer((json_int_t)c[i].total));
		json_object_set_new(o, "total_fraction",
				    json_real(fraction(c[i].total, p->total_count)));
		json_array_append_new(arr, o);
	}
	json_object_set_new(root, "functions", arr);
	free(seen);
	free(c);
	return dump(root, out);
}

/* ---- /api/processes ---------------------------------------------------------- */

struct proc_row {
	uint32_t pid, comm, container; /* string indexes of @p */
	uint64_t samples;
	const struct prof_profile *p;
};

static int by_identity(const void *a, const void *b)
{
	const struct proc_row *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->comm != y->comm)
		return x->comm < y->comm ? -1 : 1;
	return x->container < y->container ? -1 : x->container > y->container;
}

static int by_samples(const void *a, const void *b)
{
	const struct proc_row *x = a, *y = b;
	int c;

	if (x->samples != y->samples)
		return x->samples > y->samples ? -1 : 1;
	c = strcmp(prof_str(x->p, x->comm), prof_str(y->p, y->comm));
	return c ? c : (x->pid < y->pid ? -1 : x->pid > y->pid);
}

int api_processes_json(const struct prof_profile *p, unsigned int limit, struct strbuf *out)
{
	struct proc_row *r = xcalloc((size_t)p->nsamples + 1, sizeof(*r));
	json_t *root = head(p->time_nanos, p->time_nanos + p->duration_nanos), *arr;
	double period_s = (double)p->period_ns / 1e9;
	size_t n = 0;

	/* Strings are interned, so equal names have equal indexes. */
	for (uint32_t i = 0; i < p->nsamples; i++)
		r[i] = (struct proc_row){p->samples[i].pid, p->samples[i].comm,
					 p->samples[i].container, p->samples[i].count, p};
	qsort(r, p->nsamples, sizeof(*r), by_identity);
	for (uint32_t i = 0; i < p->nsamples; i++) {
		if (n && !by_identity(&r[n - 1], &r[i]))
			r[n - 1].samples += r[i].samples;
		else
			r[n++] = r[i];
	}
	qsort(r, n, sizeof(*r), by_samples);
	if (limit && n > limit)
		n = limit;

	json_object_set_new(root, "total_samples", json_integer((json_int_t)p->total_count));
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		json_object_set_new(o, "pid", json_integer(r[i].pid));
		json_object_set_new(o, "comm", jstr(prof_str(p, r[i].comm)));
		if (r[i].container)
			json_object_set_new(o, "container_id", jstr(prof_str(p, r[i].container)));
		json_object_set_new(o, "samples", json_integer((json_int_t)r[i].samples));
		json_object_set_new(o, "cpu_seconds", json_real((double)r[i].samples * period_s));
		json_object_set_new(o, "share", json_real(fraction(r[i].samples, p->total_count)));
		json_array_append_new(arr, o);
	}
	json_object_set_new(root, "processes", arr);
	free(r);
	return dump(root, out);
}
