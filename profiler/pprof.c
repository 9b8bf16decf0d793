// SPDX-License-Identifier: MIT
/*
 * profiler/pprof.c — struct prof_profile -> profile.proto (protobuf-c), then
 * gzip (zlib). The profile already has pprof's shape (profile.h), so this is
 * one pass per table that fills protobuf-c's messages, allocated one array
 * per table; strings are pointed at, not copied.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <zlib.h>

#include "encode.h"
#include "pprof.pb-c.h"

/*
 * Strings the encoder needs that the profile may not hold. They are appended
 * after p->strings in the output string table, so the profile's own indexes
 * stay valid unchanged and the const input is never interned into.
 */
enum {
	XS_SAMPLES,
	XS_COUNT,
	XS_CPU,
	XS_NANOSECONDS,
	XS_COMM,
	XS_THREAD,
	XS_PID,
	XS_TID,
	XS_CONTAINER_ID,
	XS_NR,
};

static const char *const extra_strings[XS_NR] = {
	[XS_SAMPLES] = "samples",
	[XS_COUNT] = "count",
	[XS_CPU] = "cpu",
	[XS_NANOSECONDS] = "nanoseconds",
	[XS_COMM] = "comm",
	[XS_THREAD] = "thread",
	[XS_PID] = "pid",
	[XS_TID] = "tid",
	[XS_CONTAINER_ID] = "container_id",
};

/* Every protobuf-c object of one encoding, allocated per table, not per message. */
struct pb_arena {
	char **strings;
	Perftools__Profiles__Mapping *maps, **map_ptrs;
	Perftools__Profiles__Function *funcs, **func_ptrs;
	Perftools__Profiles__Location *locs, **loc_ptrs;
	Perftools__Profiles__Line *lines, **line_ptrs;
	Perftools__Profiles__Sample *samples, **sample_ptrs;
	Perftools__Profiles__Label *labels, **label_ptrs;
	uint64_t *loc_ids;
	int64_t *values;
};

static void arena_release(struct pb_arena *a)
{
	free(a->strings);
	free(a->maps);
	free(a->map_ptrs);
	free(a->funcs);
	free(a->func_ptrs);
	free(a->locs);
	free(a->loc_ptrs);
	free(a->lines);
	free(a->line_ptrs);
	free(a->samples);
	free(a->sample_ptrs);
	free(a->labels);
	free(a->label_ptrs);
	free(a->loc_ids);
	free(a->values);
}

/* comm, thread, pid, tid, and container_id when the process is in a container. */
#define LABELS_PER_SAMPLE 5

/*
 * String table layout: [0] "", [1 .. XS_NR] the fixed strings above, then
 * the profile's strings 1.. shifted by XS_NR. The fixed strings come first
 * so that their ids never change between profiles: the history store
 * compresses intervals against each other, and label keys whose ids moved
 * with every new function name broke every match.
 */
#define XS(k) ((int64_t)(k) + 1)
static inline int64_t pstr(uint32_t i)
{
	return i ? (int64_t)i + XS_NR : 0;
}

/* Fills the labels of @s and returns how many it has. */
static size_t fill_labels(Perftools__Profiles__Label *l, const struct prof_sample *s)
{
	static const Perftools__Profiles__Label init = PERFTOOLS__PROFILES__LABEL__INIT;
	size_t i;

	for (i = 0; i < LABELS_PER_SAMPLE; i++)
		l[i] = init;
	l[0].key = XS(XS_COMM);
	l[0].str = pstr(s->comm);
	l[1].key = XS(XS_THREAD);
	l[1].str = pstr(s->thread);
	l[2].key = XS(XS_PID);
	l[2].num = s->pid;
	l[3].key = XS(XS_TID);
	l[3].num = s->tid;
	if (!s->container)
		return 4;
	l[4].key = XS(XS_CONTAINER_ID);
	l[4].str = pstr(s->container);
	return 5;
}

int pprof_encode_raw(const struct prof_profile *p, struct strbuf *out)
{
	Perftools__Profiles__Profile pb = PERFTOOLS__PROFILES__PROFILE__INIT;
	Perftools__Profiles__ValueType vt[3] = {
		PERFTOOLS__PROFILES__VALUE_TYPE__INIT,
		PERFTOOLS__PROFILES__VALUE_TYPE__INIT,
		PERFTOOLS__PROFILES__VALUE_TYPE__INIT,
	};
	Perftools__Profiles__ValueType *sample_types[2] = {&vt[0], &vt[1]};
	struct pb_arena a = {0};
	size_t i, ns, size;

	/* The profile always has strings[0] == ""; a zeroed struct would not, so guard. */
	ns = p->nstrings ? p->nstrings : 1;
	a.strings = xmalloc((ns + XS_NR) * sizeof(*a.strings));
	a.strings[0] = (char *)"";
	for (i = 0; i < XS_NR; i++)
		a.strings[XS(i)] = (char *)extra_strings[i];
	for (i = 1; i < p->nstrings; i++)
		a.strings[pstr(i)] = p->strings[i];
	pb.n_string_table = ns + XS_NR;
	pb.string_table = a.strings;

	vt[0].type = XS(XS_SAMPLES);
	vt[0].unit = XS(XS_COUNT);
	vt[1].type = XS(XS_CPU);
	vt[1].unit = XS(XS_NANOSECONDS);
	vt[2] = vt[1];
	pb.n_sample_type = 2;
	pb.sample_type = sample_types;
	pb.period_type = &vt[2];
	pb.period = p->period_ns;
	pb.time_nanos = p->time_nanos;
	pb.duration_nanos = p->duration_nanos;
	/* `go tool pprof` shows this one unless told otherwise. */
	pb.default_sample_type = XS(XS_CPU);

	a.maps = xcalloc(p->nmappings, sizeof(*a.maps));
	a.map_ptrs = xcalloc(p->nmappings, sizeof(*a.map_ptrs));
	for (i = 0; i < p->nmappings; i++) {
		const struct prof_mapping *m = &p->mappings[i];
		Perftools__Profiles__Mapping *o = &a.maps[i];

		perftools__profiles__mapping__init(o);
		o->id = i + 1;
		o->memory_start = m->start;
		o->memory_limit = m->limit;
		o->file_offset = m->offset;
		o->filename = pstr(m->filename);
		o->build_id = pstr(m->build_id);
		o->has_functions = m->has_functions;
		o->has_filenames = m->has_filenames;
		o->has_line_numbers = m->has_line_numbers;
		o->has_inline_frames = m->has_inline_frames;
		a.map_ptrs[i] = o;
	}
	pb.n_mapping = p->nmappings;
	pb.mapping = a.map_ptrs;

	a.funcs = xcalloc(p->nfunctions, sizeof(*a.funcs));
	a.func_ptrs = xcalloc(p->nfunctions, sizeof(*a.func_ptrs));
	for (i = 0; i < p->nfunctions; i++) {
		const struct prof_function *f = &p->functions[i];
		Perftools__Profiles__Function *o = &a.funcs[i];

		perftools__profiles__function__init(o);
		o->id = i + 1;
		o->name = pstr(f->name);
		o->system_name = pstr(f->system_name);
		o->filename = pstr(f->filename);
		o->start_line = f->start_line;
		a.func_ptrs[i] = o;
	}
	pb.n_function = p->nfunctions;
	pb.function = a.func_ptrs;

	a.lines = xcalloc(p->nlines, sizeof(*a.lines));
	a.line_ptrs = xcalloc(p->nlines, sizeof(*a.line_ptrs));
	for (i = 0; i < p->nlines; i++) {
		perftools__profiles__line__init(&a.lines[i]);
		a.lines[i].function_id = p->lines[i].function;
		a.lines[i].line = p->lines[i].line;
		a.line_ptrs[i] = &a.lines[i];
	}
	a.locs = xcalloc(p->nlocations, sizeof(*a.locs));
	a.loc_ptrs = xcalloc(p->nlocations, sizeof(*a.loc_ptrs));
	for (i = 0; i < p->nlocations; i++) {
		const struct prof_location *l = &p->locations[i];
		Perftools__Profiles__Location *o = &a.locs[i];

		perftools__profiles__location__init(o);
		o->id = i + 1;
		o->mapping_id = l->mapping;
		o->address = l->address;
		o->n_line = l->nlines;
		o->line = l->nlines ? &a.line_ptrs[l->line_start] : NULL;
		a.loc_ptrs[i] = o;
	}
	pb.n_location = p->nlocations;
	pb.location = a.loc_ptrs;

	a.loc_ids = xcalloc(p->nsample_locs, sizeof(*a.loc_ids));
	for (i = 0; i < p->nsample_locs; i++)
		a.loc_ids[i] = p->sample_locs[i];
	a.values = xcalloc((size_t)p->nsamples * 2, sizeof(*a.values));
	a.labels = xcalloc((size_t)p->nsamples * LABELS_PER_SAMPLE, sizeof(*a.labels));
	a.label_ptrs = xcalloc((size_t)p->nsamples * LABELS_PER_SAMPLE, sizeof(*a.label_ptrs));
	a.samples = xcalloc(p->nsamples, sizeof(*a.samples));
	a.sample_ptrs = xcalloc(p->nsamples, sizeof(*a.sample_ptrs));
	for (i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		Perftools__Profiles__Sample *o = &a.samples[i];
		size_t j;

		perftools__profiles__sample__init(o);
		o->n_location_id = s->nlocs;
		o->location_id = s->nlocs ? &a.loc_ids[s->loc_start] : NULL;
		a.values[2 * i] = (int64_t)s->count;
		a.values[2 * i + 1] = (int64_t)s->count * p->period_ns;
		o->n_value = 2;
		o->value = &a.values[2 * i];
		o->n_label = fill_labels(&a.labels[LABELS_PER_SAMPLE * i], s);
		for (j = 0; j < o->n_label; j++)
			a.label_ptrs[LABELS_PER_SAMPLE * i + j] =
				&a.labels[LABELS_PER_SAMPLE * i + j];
		o->label = &a.label_ptrs[LABELS_PER_SAMPLE * i];
		a.sample_ptrs[i] = o;
	}
	pb.n_sample = p->nsamples;
	pb.sample = a.sample_ptrs;

	size = perftools__profiles__profile__get_packed_size(&pb);
	strbuf_grow(out, size);
	out->len += perftools__profiles__profile__pack(&pb, (uint8_t *)out->buf + out->len);
	out->buf[out->len] = '\0';
	arena_release(&a);
	return 0;
}

/* gzip (RFC 1952) of @len bytes at @data, appended to @out. 0 or -EIO; @out unchanged on error. */
static int gzip_append(const void *data, size_t len, struct strbuf *out)
{
	size_t start = out->len, left = len;
	z_stream zs = {0};
	int ret;

	/* windowBits 15 + 16 asks zlib for a gzip header and trailer instead of zlib's. */
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -EIO;
	strbuf_grow(out, deflateBound(&zs, len > UINT_MAX ? UINT_MAX : len));
	zs.next_in = (Bytef *)data;
	do {
		/* avail_in and avail_out are uInt: feed inputs over 4 GiB in pieces. */
		if (!zs.avail_in && left) {
			zs.avail_in = left > UINT_MAX ? UINT_MAX : left;
			left -= zs.avail_in;
		}
		if (out->cap - out->len < 2)
			strbuf_grow(out, 65536);
		zs.next_out = (Bytef *)out->buf + out->len;
		zs.avail_out =
			out->cap - out->len - 1 > UINT_MAX ? UINT_MAX : out->cap - out->len - 1;
		ret = deflate(&zs, left ? Z_NO_FLUSH : Z_FINISH);
		out->len = (char *)zs.next_out - out->buf;
		if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
			deflateEnd(&zs);
			out->len = start;
			out->buf[out->len] = '\0';
			return -EIO;
		}
	} while (ret != Z_STREAM_END);
	deflateEnd(&zs);
	out->buf[out->len] = '\0';
	return 0;
}

int pprof_encode(const struct prof_profile *p, struct strbuf *out)
{
	struct strbuf raw = STRBUF_INIT;
	int err;

	err = pprof_encode_raw(p, &raw);
	if (!err)
		err = gzip_append(raw.buf, raw.len, out);
	strbuf_release(&raw);
	return err;
}
