// SPDX-License-Identifier: MIT
/*
 * tests/common/pprof_read.c — decoding and checking pprof files in tests.
 */
#include "pprof_read.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define GUNZIP_MAX (1UL << 30)

int pprof_gunzip(const void *data, size_t len, struct strbuf *out)
{
	z_stream zs = {0};
	size_t start = out->len;
	int ret;

	/* 15 + 32: accept a gzip or a zlib header, whichever is there. */
	if (inflateInit2(&zs, 15 + 32) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)data;
	zs.avail_in = len;
	do {
		if (out->len - start > GUNZIP_MAX) {
			inflateEnd(&zs);
			out->len = start;
			return -EFBIG;
		}
		strbuf_grow(out, 65536);
		zs.next_out = (Bytef *)out->buf + out->len;
		zs.avail_out = out->cap - out->len - 1;
		ret = inflate(&zs, Z_NO_FLUSH);
		out->len = (char *)zs.next_out - out->buf;
		out->buf[out->len] = '\0';
		/* Z_BUF_ERROR with input left means "more room"; with none, a truncated stream. */
		if (ret == Z_BUF_ERROR && !zs.avail_in)
			break;
	} while (ret == Z_OK || ret == Z_BUF_ERROR);
	inflateEnd(&zs);
	if (ret != Z_STREAM_END) {
		out->len = start;
		if (out->buf)
			out->buf[out->len] = '\0';
		return -EINVAL;
	}
	return 0;
}

Perftools__Profiles__Profile *pprof_read(const void *data, size_t len)
{
	const unsigned char *d = data;
	struct strbuf raw = STRBUF_INIT;
	Perftools__Profiles__Profile *pb;

	if (len >= 2 && d[0] == 0x1f && d[1] == 0x8b) {
		int err = pprof_gunzip(data, len, &raw);

		if (err) {
			fprintf(stderr, "pprof_read: gunzip: %s\n", strerror(-err));
			strbuf_release(&raw);
			return NULL;
		}
		data = raw.buf;
		len = raw.len;
	}
	pb = perftools__profiles__profile__unpack(NULL, len, data);
	if (!pb)
		fprintf(stderr, "pprof_read: not a profile.proto message (%zu bytes)\n", len);
	strbuf_release(&raw);
	return pb;
}

Perftools__Profiles__Profile *pprof_read_file(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	Perftools__Profiles__Profile *pb = NULL;
	int err;

	err = read_file(path, &sb, 0);
	if (err)
		fprintf(stderr, "pprof_read: %s: %s\n", path, strerror(-err));
	else
		pb = pprof_read(sb.buf, sb.len);
	strbuf_release(&sb);
	return pb;
}

void pprof_free(Perftools__Profiles__Profile *pb)
{
	if (pb)
		perftools__profiles__profile__free_unpacked(pb, NULL);
}

/* ---- validation ----------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
						      ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool str_ok(const Perftools__Profiles__Profile *pb, int64_t idx)
{
	return idx >= 0 && (uint64_t)idx < pb->n_string_table;
}

#define CHECK_STR(idx, what, ...)                                                              \
	do {                                                                                   \
		if (!str_ok(pb, (idx)))                                                        \
			return fail(err, errlen, what " string index %lld out of range (%zu)", \
				    ##__VA_ARGS__, (long long)(idx), pb->n_string_table);      \
	} while (0)

int pprof_check_ids(const Perftools__Profiles__Profile *pb, char *err, size_t errlen)
{
	size_t i, j;

	if (!pb->n_string_table || strcmp(pb->string_table[0], "") != 0)
		return fail(err, errlen, "string_table[0] is not \"\"");
	for (i = 0; i < pb->n_sample_type; i++) {
		CHECK_STR(pb->sample_type[i]->type, "sample_type[%zu].type", i);
		CHECK_STR(pb->sample_type[i]->unit, "sample_type[%zu].unit", i);
	}
	if (pb->period_type) {
		CHECK_STR(pb->period_type->type, "period_type.type");
		CHECK_STR(pb->period_type->unit, "period_type.unit");
	}
	CHECK_STR(pb->default_sample_type, "default_sample_type");
	CHECK_STR(pb->drop_frames, "drop_frames");
	CHECK_STR(pb->keep_frames, "keep_frames");
	CHECK_STR(pb->doc_url, "doc_url");
	for (i = 0; i < pb->n_comment; i++)
		CHECK_STR(pb->comment[i], "comment[%zu]", i);

	for (i = 0; i < pb->n_mapping; i++) {
		const Perftools__Profiles__Mapping *m = pb->mapping[i];

		if (m->id != i + 1)
			return fail(err, errlen, "mapping[%zu] has id %llu, want %zu", i,
				    (unsigned long long)m->id, i + 1);
		CHECK_STR(m->filename, "mapping %llu filename", (unsigned long long)m->id);
		CHECK_STR(m->build_id, "mapping %llu build_id", (unsigned long long)m->id);
	}
	for (i = 0; i < pb->n_function; i++) {
		const Perftools__Profiles__Function *f = pb->function[i];

		if (f->id != i + 1)
			return fail(err, errlen, "function[%zu] has id %llu, want %zu", i,
				    (unsigned long long)f->id, i + 1);
		CHECK_STR(f->name, "function %llu name", (unsigned long long)f->id);
		CHECK_STR(f->system_name, "function %llu system_name", (unsigned long long)f->id);
		CHECK_STR(f->filename, "function %llu filename", (unsigned long long)f->id);
	}
	for (i = 0; i < pb->n_location; i++) {
		const Perftools__Profiles__Location *l = pb->location[i];

		if (l->id != i + 1)
			return fail(err, errlen, "location[%zu] has id %llu, want %zu", i,
				    (unsigned long long)l->id, i + 1);
		if (l->mapping_id > pb->n_mapping)
			return fail(err, errlen, "location %llu: mapping %llu does not exist",
				    (unsigned long long)l->id, (unsigned long long)l->mapping_id);
		for (j = 0; j < l->n_line; j++) {
			uint64_t fid = l->line[j]->function_id;

			if (!fid || fid > pb->n_function)
				return fail(err, errlen,
					    "location %llu line %zu: function %llu does not exist",
					    (unsigned long long)l->id, j, (unsigned long long)fid);
		}
	}
	for (i = 0; i < pb->n_sample; i++) {
		const Perftools__Profiles__Sample *s = pb->sample[i];

		if (s->n_value != pb->n_sample_type)
			return fail(err, errlen, "sample %zu has %zu values for %zu sample types",
				    i, s->n_value, pb->n_sample_type);
		for (j = 0; j < s->n_location_id; j++) {
			uint64_t lid = s->location_id[j];

			if (!lid || lid > pb->n_location)
				return fail(err, errlen, "sample %zu: location %llu does not exist",
					    i, (unsigned long long)lid);
		}
		for (j = 0; j < s->n_label; j++) {
			CHECK_STR(s->label[j]->key, "sample %zu label %zu key", i, j);
			CHECK_STR(s->label[j]->str, "sample %zu label %zu str", i, j);
			CHECK_STR(s->label[j]->num_unit, "sample %zu label %zu num_unit", i, j);
		}
	}
	return 0;
}

/* ---- lookups -------------------------------------------------------------- */

const char *pprof_str(const Perftools__Profiles__Profile *pb, int64_t idx)
{
	return str_ok(pb, idx) ? pb->string_table[idx] : NULL;
}

/* Element @id - 1 when ids are in order, else the one whose id matches. */
#define FIND_BY_ID(arr, n, id)                                        \
	do {                                                          \
		size_t i_;                                            \
		if ((id) && (id) <= (n) && (arr)[(id)-1]->id == (id)) \
			return (arr)[(id)-1];                         \
		for (i_ = 0; i_ < (n); i_++) {                        \
			if ((arr)[i_]->id == (id))                    \
				return (arr)[i_];                     \
		}                                                     \
		return NULL;                                          \
	} while (0)

const Perftools__Profiles__Mapping *pprof_mapping(const Perftools__Profiles__Profile *pb,
						  uint64_t id)
{
	FIND_BY_ID(pb->mapping, pb->n_mapping, id);
}

const Perftools__Profiles__Location *pprof_location(const Perftools__Profiles__Profile *pb,
						    uint64_t id)
{
	FIND_BY_ID(pb->location, pb->n_location, id);
}

const Perftools__Profiles__Function *pprof_function(const Perftools__Profiles__Profile *pb,
						    uint64_t id)
{
	FIND_BY_ID(pb->function, pb->n_function, id);
}

static bool str_is(const Perftools__Profiles__Profile *pb, int64_t idx, const char *s)
{
	const char *t = pprof_str(pb, idx);

	return t && strcmp(t, s) == 0;
}

int pprof_value_index(const Perftools__Profiles__Profile *pb, const char *type, const char *unit)
{
	size_t i;

	for (i = 0; i < pb->n_sample_type; i++) {
		if (str_is(pb, pb->sample_type[i]->type, type) &&
		    str_is(pb, pb->sample_type[i]->unit, unit))
			return (int)i;
	}
	return -1;
}

const char *pprof_label_str(const Perftools__Profiles__Profile *pb,
			    const Perftools__Profiles__Sample *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n_label; i++) {
		if (str_is(pb, s->label[i]->key, key) && s->label[i]->str)
			return pprof_str(pb, s->label[i]->str);
	}
	return NULL;
}

bool pprof_label_num(const Perftools__Profiles__Profile *pb, const Perftools__Profiles__Sample *s,
		     const char *key, int64_t *val)
{
	size_t i;

	/* A numeric label has str == 0; proto3 cannot tell "num 0" from "no num". */
	for (i = 0; i < s->n_label; i++) {
		if (str_is(pb, s->label[i]->key, key) && !s->label[i]->str) {
			*val = s->label[i]->num;
			return true;
		}
	}
	return false;
}

int pprof_sample_stack(const Perftools__Profiles__Profile *pb, const Perftools__Profiles__Sample *s,
		       struct strbuf *out)
{
	bool first = true;
	int err = 0;
	size_t i, j;

	for (i = s->n_location_id; i-- > 0;) {
		const Perftools__Profiles__Location *l = pprof_location(pb, s->location_id[i]);

		if (!l || !l->n_line) {
			strbuf_adds(out, first ? "" : ";");
			strbuf_adds(out, l ? "[unknown]" : "[bad id]");
			if (!l)
				err = -EINVAL;
			first = false;
			continue;
		}
		for (j = l->n_line; j-- > 0;) {
			const Perftools__Profiles__Function *f =
				pprof_function(pb, l->line[j]->function_id);
			const char *name = f ? pprof_str(pb, f->name) : NULL;

			strbuf_adds(out, first ? "" : ";");
			strbuf_adds(out, name ? name : "[bad id]");
			if (!name)
				err = -EINVAL;
			first = false;
		}
	}
	return err;
}

/* ---- the known profile ------------------------------------------------------ */

struct prof_profile *pprof_test_profile(void)
{
	static const struct prof_mapping_in app = {
		.start = 0x400000,
		.limit = 0x500000,
		.offset = 0,
		.file = "/usr/bin/app",
		.build_id = "aabbccdd00112233aabbccdd00112233aabbccdd",
		.has_functions = true,
		.has_filenames = true,
		.has_line_numbers = true,
		.has_inline_frames = true,
	};
	static const struct prof_mapping_in libc = {
		.start = 0x7f0000000000,
		.limit = 0x7f0000200000,
		.offset = 0x28000,
		.file = "/usr/lib/x86_64-linux-gnu/libc.so.6",
		.build_id = "0123456789abcdef0123456789abcdef01234567",
		.has_functions = true,
	};
	static const struct prof_mapping_in kernel = {
		.start = 0xffffffff81000000,
		.limit = 0xffffffff83000000,
		.file = "[kernel.kallsyms]",
		.has_functions = true,
	};
	static const struct prof_mapping_in vdso = {
		.start = 0x7ffd00000000,
		.limit = 0x7ffd00002000,
		.file = "[vdso]",
	};
	static const struct prof_line_in l_main[] = {{"main", NULL, "app.c", 10}};
	static const struct prof_line_in l_work[] = {
		{"inner_inlined", NULL, "app.c", 42}, /* innermost first */
		{"work", NULL, "app.c", 30},
	};
	static const struct prof_line_in l_odd[] = {
		{"std::vector<int&>::push;back", "_ZNSt6vectorIRiE4pushEv", "app.cc", 7},
	};
	static const struct prof_line_in l_memcpy[] = {{"memcpy", NULL, NULL, 0}};
	static const struct prof_line_in l_syscall[] = {{"entry_SYSCALL_64", NULL, NULL, 0}};
	static const struct prof_line_in l_write[] = {{"ksys_write", NULL, NULL, 0}};
	static const struct prof_line_in l_idle[] = {{"do_idle", NULL, NULL, 0}};
	static const struct prof_loc_in main_loc = {0x401000, &app, l_main, 1};
	static const struct prof_loc_in work_loc = {0x401234, &app, l_work, 2};
	static const struct prof_loc_in odd_loc = {0x401500, &app, l_odd, 1};
	static const struct prof_loc_in memcpy_loc = {0x7f0000012345, &libc, l_memcpy, 1};
	static const struct prof_loc_in syscall_loc = {0xffffffff81001000, &kernel, l_syscall, 1};
	static const struct prof_loc_in write_loc = {0xffffffff81002000, &kernel, l_write, 1};
	static const struct prof_loc_in idle_loc = {0xffffffff81003000, &kernel, l_idle, 1};
	static const struct prof_loc_in vdso_loc = {0x7ffd00000900, &vdso, NULL, 0};
	/* leaf first */
	const struct prof_loc_in s1[] = {work_loc, main_loc};
	const struct prof_loc_in s2[] = {memcpy_loc, odd_loc, main_loc};
	const struct prof_loc_in s3[] = {write_loc, syscall_loc, memcpy_loc, main_loc};
	const struct prof_loc_in s5[] = {vdso_loc, memcpy_loc};
	const struct prof_loc_in s6[] = {idle_loc};
	const struct prof_sample_in samples[] = {
		{100, 100, "app", "app", s1, ARRAY_SIZE(s1), 5},
		{100, 101, "app", "worker", s2, ARRAY_SIZE(s2), 3},
		{100, 101, "app", "worker", s3, ARRAY_SIZE(s3), 2},
		{200, 200, "app", "app", s1, ARRAY_SIZE(s1), 4},
		{300, 300, "db", "db-io", s5, ARRAY_SIZE(s5), 1},
		{0, 0, "swapper/0", "swapper/0", s6, ARRAY_SIZE(s6), 6},
	};
	struct prof_profile *p = prof_profile__new(10101010);
	size_t i;

	p->time_nanos = 1700000000000000000LL;
	p->duration_nanos = 10000000000LL;
	for (i = 0; i < ARRAY_SIZE(samples); i++)
		prof_profile__add_sample(p, &samples[i]);
	return p;
}
