// SPDX-License-Identifier: MIT
/*
 * profiler/pprof_decode.c — profile.proto -> struct prof_profile.
 *
 * protobuf-c unpacks the message; then one validation pass resolves every
 * id and string index into per-table input structs (prof_mapping_in,
 * prof_line_in, prof_loc_in) that point into the unpacked message, and a
 * second pass feeds the samples to prof_profile__add_sample(). Nothing is
 * added before the whole message checked out, so a bad message leaves the
 * destination untouched.
 */
#include "pprof_decode.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../common/util.h"
#include "pprof.pb-c.h"

/* A decoded interval is a few MiB at most; refuse to inflate bombs. */
#define GUNZIP_MAX (256UL << 20)

typedef Perftools__Profiles__Profile pb_profile;

static int gunzip(const void *data, size_t len, struct strbuf *out)
{
	z_stream zs = {0};
	int ret;

	if (len > UINT_MAX)
		return -EINVAL;
	/* 15 + 32: gzip or zlib header, whichever is there. */
	if (inflateInit2(&zs, 15 + 32) != Z_OK)
		return -EINVAL;
	zs.next_in = (Bytef *)data;
	zs.avail_in = (uInt)len;
	do {
		if (out->len > GUNZIP_MAX) {
			ret = Z_DATA_ERROR;
			break;
		}
		strbuf_grow(out, 65536);
		zs.next_out = (Bytef *)out->buf + out->len;
		zs.avail_out = (uInt)(out->cap - out->len - 1);
		ret = inflate(&zs, Z_NO_FLUSH);
		out->len = (char *)zs.next_out - out->buf;
		/* Z_BUF_ERROR with no input left: the stream is truncated. */
		if (ret == Z_BUF_ERROR && !zs.avail_in)
			break;
	} while (ret == Z_OK || ret == Z_BUF_ERROR);
	inflateEnd(&zs);
	return ret == Z_STREAM_END ? 0 : -EINVAL;
}

/*
 * pprof ids are arbitrary non-zero numbers; ours (and Go's) are 1..N in
 * array order, which idmap resolves in O(1). Anything else goes through a
 * sorted copy and a binary search.
 */
struct idmap {
	bool dense;
	size_t n;
	struct idpair {
		uint64_t id;
		size_t idx;
	} * sorted;
};

static int idpair_cmp(const void *a, const void *b)
{
	const struct idpair *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

#define IDMAP_BUILD(m, arr, n_)                                                     \
	do {                                                                        \
		size_t i_;                                                          \
		(m)->n = (n_);                                                      \
		(m)->dense = true;                                                  \
		for (i_ = 0; i_ < (n_); i_++)                                       \
			if ((arr)[i_]->id != i_ + 1)                                \
				(m)->dense = false;                                 \
		if (!(m)->dense) {                                                  \
			(m)->sorted = xcalloc((n_) + 1, sizeof(*(m)->sorted));      \
			for (i_ = 0; i_ < (n_); i_++) {                             \
				(m)->sorted[i_].id = (arr)[i_]->id;                 \
				(m)->sorted[i_].idx = i_;                           \
			}                                                           \
			qsort((m)->sorted, (n_), sizeof(*(m)->sorted), idpair_cmp); \
		}                                                                   \
	} while (0)

/* The array index of @id, or -1. Id 0 never resolves (it means "none"). */
static long idmap_find(const struct idmap *m, uint64_t id)
{
	struct idpair key = {.id = id}, *hit;

	if (!id)
		return -1;
	if (m->dense)
		return id <= m->n ? (long)(id - 1) : -1;
	hit = bsearch(&key, m->sorted, m->n, sizeof(*m->sorted), idpair_cmp);
	return hit ? (long)hit->idx : -1;
}

/* Everything the second pass needs, resolved and checked by the first. */
struct decoded {
	const pb_profile *pb;
	struct prof_mapping_in *maps;
	struct prof_line_in *funcs; /* one per pb function; .line set per use */
	struct prof_line_in *lines; /* all lines of all locations */
	struct prof_loc_in *locs;
	struct idmap map_ids, func_ids, loc_ids;
	int count_idx; /* index in Sample.value of samples/count, -1 = value[0] */
	/* string indexes, 0 = absent */
	uint32_t comm_key, thread_key, pid_key, tid_key, container_key;
};

static void decoded_release(struct decoded *d)
{
	free(d->maps);
	free(d->funcs);
	free(d->lines);
	free(d->locs);
	free(d->map_ids.sorted);
	free(d->func_ids.sorted);
	free(d->loc_ids.sorted);
}

static const char *str_at(const pb_profile *pb, int64_t idx, bool *ok)
{
	if (idx < 0 || (uint64_t)idx >= pb->n_string_table || !pb->string_table[idx]) {
		*ok = false;
		return "";
	}
	return pb->string_table[idx];
}

static uint32_t find_key(const pb_profile *pb, const char *s)
{
	size_t i;

	for (i = 1; i < pb->n_string_table; i++) {
		if (pb->string_table[i] && strcmp(pb->string_table[i], s) == 0)
			return (uint32_t)i;
	}
	return 0;
}

static int resolve(const pb_profile *pb, struct decoded *d)
{
	size_t i, j, nlines = 0;
	bool ok = true;

	d->pb = pb;
	if (!pb->n_string_table || !pb->string_table[0] || pb->string_table[0][0])
		return -EINVAL; /* string_table[0] must be "" (profile.proto) */

	d->count_idx = -1;
	for (i = 0; i < pb->n_sample_type; i++) {
		const Perftools__Profiles__ValueType *vt = pb->sample_type[i];

		if (!strcmp(str_at(pb, vt->type, &ok), "samples") &&
		    !strcmp(str_at(pb, vt->unit, &ok), "count")) {
			d->count_idx = (int)i;
			break;
		}
	}
	d->comm_key = find_key(pb, "comm");
	d->thread_key = find_key(pb, "thread");
	d->pid_key = find_key(pb, "pid");
	d->tid_key = find_key(pb, "tid");
	d->container_key = find_key(pb, "container_id");

	IDMAP_BUILD(&d->map_ids, pb->mapping, pb->n_mapping);
	IDMAP_BUILD(&d->func_ids, pb->function, pb->n_function);
	IDMAP_BUILD(&d->loc_ids, pb->location, pb->n_location);

	d->maps = xcalloc(pb->n_mapping + 1, sizeof(*d->maps));
	for (i = 0; i < pb->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = pb->mapping[i];
		struct prof_mapping_in *o = &d->maps[i];

		o->start = m->memory_start;
		o->limit = m->memory_limit;
		o->offset = m->file_offset;
		o->file = str_at(pb, m->filename, &ok);
		o->build_id = str_at(pb, m->build_id, &ok);
		o->has_functions = m->has_functions;
		o->has_filenames = m->has_filenames;
		o->has_line_numbers = m->has_line_numbers;
		o->has_inline_frames = m->has_inline_frames;
	}
	d->funcs = xcalloc(pb->n_function + 1, sizeof(*d->funcs));
	for (i = 0; i < pb->n_function; i++) {
		const Perftools__Profiles__Function *f = pb->function[i];

		/* Strings as they are: "" interns to index 0 again, so ids round-trip. */
		d->funcs[i].name = str_at(pb, f->name, &ok);
		d->funcs[i].system_name = str_at(pb, f->system_name, &ok);
		d->funcs[i].file = str_at(pb, f->filename, &ok);
	}
	if (!ok)
		return -EINVAL;

	for (i = 0; i < pb->n_location; i++) {
		if (pb->location[i]->n_line > UINT32_MAX - nlines)
			return -EINVAL;
		nlines += pb->location[i]->n_line;
	}
	d->lines = xcalloc(nlines + 1, sizeof(*d->lines));
	d->locs = xcalloc(pb->n_location + 1, sizeof(*d->locs));
	nlines = 0;
	for (i = 0; i < pb->n_location; i++) {
		const Perftools__Profiles__Location *l = pb->location[i];
		struct prof_loc_in *o = &d->locs[i];
		long mi = -1;

		if (l->mapping_id) {
			mi = idmap_find(&d->map_ids, l->mapping_id);
			if (mi < 0)
				return -EINVAL;
		}
		o->address = l->address;
		o->mapping = mi >= 0 ? &d->maps[mi] : NULL;
		o->lines = &d->lines[nlines];
		o->nlines = (uint32_t)l->n_line;
		for (j = 0; j < l->n_line; j++) {
			long fi = idmap_find(&d->func_ids, l->line[j]->function_id);

			if (fi < 0)
				return -EINVAL;
			d->lines[nlines] = d->funcs[fi];
			d->lines[nlines].line = l->line[j]->line;
			nlines++;
		}
	}

	for (i = 0; i < pb->n_sample; i++) {
		const Perftools__Profiles__Sample *s = pb->sample[i];

		if (s->n_location_id > UINT32_MAX)
			return -EINVAL;
		for (j = 0; j < s->n_location_id; j++) {
			if (idmap_find(&d->loc_ids, s->location_id[j]) < 0)
				return -EINVAL;
		}
		if (d->count_idx >= 0 ? s->n_value <= (size_t)d->count_idx : !s->n_value)
			return -EINVAL;
		if (s->value[d->count_idx >= 0 ? d->count_idx : 0] < 0)
			return -EINVAL;
		for (j = 0; j < s->n_label; j++) {
			str_at(pb, s->label[j]->key, &ok);
			str_at(pb, s->label[j]->str, &ok);
		}
	}
	return ok ? 0 : -EINVAL;
}

struct sample_labels {
	uint32_t pid, tid;
	const char *comm, *thread, *container;
};

static void sample_labels(const struct decoded *d, const Perftools__Profiles__Sample *s,
			  struct sample_labels *out)
{
	const pb_profile *pb = d->pb;
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < s->n_label; i++) {
		const Perftools__Profiles__Label *l = s->label[i];
		uint32_t key = (uint32_t)l->key;

		if (!key)
			continue;
		if (key == d->comm_key && l->str)
			out->comm = pb->string_table[l->str];
		else if (key == d->thread_key && l->str)
			out->thread = pb->string_table[l->str];
		else if (key == d->pid_key && !l->str)
			out->pid = (uint32_t)l->num;
		else if (key == d->tid_key && !l->str)
			out->tid = (uint32_t)l->num;
		else if (key == d->container_key && l->str)
			out->container = pb->string_table[l->str];
	}
}

static bool filter_match(const struct pprof_decode_filter *f, const struct sample_labels *sl)
{
	const struct prof_filter pf = {.pid = f ? f->pid : 0,
				       .comm = f ? f->comm : NULL,
				       .container = f ? f->container : NULL};

	return !f || prof_filter__match(&pf, sl->pid, sl->comm, sl->container);
}

static void add_samples(const struct decoded *d, const struct pprof_decode_filter *f,
			struct prof_profile *dst)
{
	const pb_profile *pb = d->pb;
	struct prof_loc_in *stack = NULL;
	size_t cap = 0, i, j;

	for (i = 0; i < pb->n_sample; i++) {
		const Perftools__Profiles__Sample *s = pb->sample[i];
		struct prof_sample_in in;
		struct sample_labels sl;

		/* A zero count says nothing about CPU time (the store writes such samples). */
		if (!s->value[d->count_idx >= 0 ? d->count_idx : 0])
			continue;
		sample_labels(d, s, &sl);
		if (!filter_match(f, &sl))
			continue;
		xgrow((void **)&stack, &cap, s->n_location_id, sizeof(*stack));
		for (j = 0; j < s->n_location_id; j++)
			stack[j] = d->locs[idmap_find(&d->loc_ids, s->location_id[j])];
		in.pid = sl.pid;
		in.tid = sl.tid;
		in.comm = sl.comm;
		in.thread = sl.thread;
		in.container = sl.container;
		in.locs = stack;
		in.nlocs = (uint32_t)s->n_location_id;
		in.count = (uint64_t)s->value[d->count_idx >= 0 ? d->count_idx : 0];
		prof_profile__add_sample(dst, &in);
	}
	free(stack);
}

/* prof_profile__merge()'s rules for the header fields (profile.h). */
static void merge_header(struct prof_profile *dst, const pb_profile *pb)
{
	int64_t end, src_end;

	if (!dst->period_ns)
		dst->period_ns = pb->period;
	if (!dst->time_nanos) {
		dst->time_nanos = pb->time_nanos;
		if (pb->duration_nanos > dst->duration_nanos)
			dst->duration_nanos = pb->duration_nanos;
		return;
	}
	if (!pb->time_nanos) {
		if (pb->duration_nanos > dst->duration_nanos)
			dst->duration_nanos = pb->duration_nanos;
		return;
	}
	end = dst->time_nanos + dst->duration_nanos;
	src_end = pb->time_nanos + pb->duration_nanos;
	if (src_end > end)
		dst->duration_nanos = src_end - dst->time_nanos;
}

int pprof_decode_into(const void *data, size_t len, const struct pprof_decode_filter *f,
		      struct prof_profile *dst)
{
	const unsigned char *b = data;
	struct strbuf raw = STRBUF_INIT;
	struct decoded d = {0};
	pb_profile *pb;
	int err;

	if (!data && len)
		return -EINVAL;
	if (len >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
		err = gunzip(data, len, &raw);
		if (err) {
			strbuf_release(&raw);
			return err;
		}
		data = raw.buf;
		len = raw.len;
	}
	pb = perftools__profiles__profile__unpack(NULL, len, data);
	strbuf_release(&raw);
	if (!pb)
		return -EINVAL;
	err = resolve(pb, &d);
	if (!err) {
		add_samples(&d, f, dst);
		merge_header(dst, pb);
	}
	decoded_release(&d);
	perftools__profiles__profile__free_unpacked(pb, NULL);
	return err;
}

int pprof_decode(const void *data, size_t len, struct prof_profile **out)
{
	struct prof_profile *p = prof_profile__new(0);
	int err;

	*out = NULL;
	err = pprof_decode_into(data, len, NULL, p);
	if (err) {
		prof_profile__free(p);
		return err;
	}
	*out = p;
	return 0;
}
