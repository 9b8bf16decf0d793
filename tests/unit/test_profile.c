// SPDX-License-Identifier: MIT
/*
 * Unit tests for profiler/profile.c: the dedup tables, their ids, and merge.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiler/encode.h"
#include "profiler/profile.h"
#include "tests/common/pprof_read.h"

static const struct prof_mapping_in libc = {
	.start = 0x7f0000000000,
	.limit = 0x7f0000200000,
	.offset = 0x28000,
	.file = "/usr/lib/x86_64-linux-gnu/libc.so.6",
	.build_id = "0123456789abcdef",
	.has_functions = true,
	.has_filenames = true,
	.has_line_numbers = true,
	.has_inline_frames = true,
};

Test(profile, new_is_empty_with_empty_string_zero)
{
	struct prof_profile *p = prof_profile__new(10101010);

	cr_assert_eq(p->nstrings, 1);
	cr_assert_str_eq(p->strings[0], "");
	cr_assert_eq(p->period_ns, 10101010);
	cr_assert_eq(p->nsamples + p->nmappings + p->nfunctions + p->nlocations + p->nlines, 0);
	cr_assert_eq(p->total_count, 0);
	cr_assert_str_eq(prof_str(p, 0), "");
	cr_assert_str_eq(prof_str(p, 12345), "");
	prof_profile__free(p);
	prof_profile__free(NULL);
}

Test(profile, intern_dedups_and_survives_growth)
{
	struct prof_profile *p = prof_profile__new(1);
	char name[32];
	uint32_t ids[5000], i;

	cr_assert_eq(prof_profile__intern(p, NULL), 0);
	cr_assert_eq(prof_profile__intern(p, ""), 0);
	for (i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "fn_%u", i);
		ids[i] = prof_profile__intern(p, name);
		cr_assert_eq(ids[i], i + 1);
	}
	cr_assert_eq(p->nstrings, 5001);
	for (i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "fn_%u", i);
		cr_assert_eq(prof_profile__intern(p, name), ids[i]);
		cr_assert_str_eq(prof_str(p, ids[i]), name);
	}
	cr_assert_eq(p->nstrings, 5001);
	prof_profile__free(p);
}

Test(profile, mappings_dedup_and_or_their_flags)
{
	struct prof_mapping_in partial = libc, other_build = libc, other_offset = libc;
	const struct prof_line_in l = {"memcpy", NULL, NULL, 0};
	struct prof_loc_in loc = {0x7f0000001000, &libc, &l, 1};
	struct prof_sample_in s = {1, 1, "a", "a", &loc, 1, 1};
	struct prof_profile *p = prof_profile__new(1);
	const struct prof_mapping *m;

	prof_profile__add_sample(p, &s);
	cr_assert_eq(p->nmappings, 1);
	m = &p->mappings[0];
	cr_assert_eq(m->start, libc.start);
	cr_assert_eq(m->limit, libc.limit);
	cr_assert_eq(m->offset, libc.offset);
	cr_assert_str_eq(prof_str(p, m->filename), libc.file);
	cr_assert_str_eq(prof_str(p, m->build_id), libc.build_id);
	cr_assert(m->has_functions && m->has_filenames && m->has_line_numbers &&
		  m->has_inline_frames);

	/*
	 * The same mapping seen by a location that lacks inline info: flags OR
	 * (the mapping was symbolized that far; crt1.o's _start has no DWARF).
	 */
	partial.has_inline_frames = false;
	loc.mapping = &partial;
	prof_profile__add_sample(p, &s);
	cr_assert_eq(p->nmappings, 1);
	cr_assert_eq(p->nlocations, 1);
	cr_assert(p->mappings[0].has_functions && p->mappings[0].has_line_numbers);
	cr_assert(p->mappings[0].has_inline_frames);
	loc.mapping = &libc;
	prof_profile__add_sample(p, &s);
	cr_assert(p->mappings[0].has_inline_frames);
	cr_assert_eq(p->nsamples, 1);
	cr_assert_eq(p->samples[0].count, 3);

	other_build.build_id = "fedcba9876543210";
	loc.mapping = &other_build;
	prof_profile__add_sample(p, &s);
	other_offset.offset = 0;
	loc.mapping = &other_offset;
	prof_profile__add_sample(p, &s);
	cr_assert_eq(p->nmappings, 3);
	cr_assert_eq(p->nlocations, 3);
	cr_assert_eq(p->locations[1].mapping, 2);
	cr_assert_eq(p->locations[2].mapping, 3);
	cr_assert_eq(p->mappings[2].build_id, p->mappings[0].build_id);
	prof_profile__free(p);
}

Test(profile, functions_dedup_by_all_key_fields)
{
	const struct prof_line_in lines[] = {
		{"foo", NULL, "a.c", 1}, /* 0: function foo/foo/a.c */
		{"foo", NULL, "a.c", 2}, /* 1: same function, other line */
		{"foo", "_Z3foov", "a.c", 3}, /* 2: other system name */
		{"foo", NULL, "b.c", 4}, /* 3: other file */
		{NULL, NULL, NULL, 0}, /* 4: [unknown] */
	};
	struct prof_profile *p = prof_profile__new(1);
	uint32_t i;

	for (i = 0; i < ARRAY_SIZE(lines); i++) {
		struct prof_loc_in loc = {0x100 + i, NULL, &lines[i], 1};
		struct prof_sample_in s = {1, 1, "a", "a", &loc, 1, 1};

		prof_profile__add_sample(p, &s);
	}
	cr_assert_eq(p->nfunctions, 4);
	cr_assert_eq(p->nlocations, 5);
	cr_assert_eq(p->lines[p->locations[0].line_start].function,
		     p->lines[p->locations[1].line_start].function);
	cr_assert_eq(p->lines[p->locations[1].line_start].line, 2);
	/* system_name defaults to name: the same string index */
	cr_assert_eq(p->functions[0].system_name, p->functions[0].name);
	cr_assert_str_eq(prof_str(p, p->functions[1].system_name), "_Z3foov");
	cr_assert_str_eq(prof_str(p, p->functions[2].filename), "b.c");
	cr_assert_str_eq(prof_str(p, p->functions[3].name), "[unknown]");
	cr_assert_eq(p->functions[3].filename, 0);
	for (i = 0; i < p->nlocations; i++)
		cr_assert_eq(p->locations[i].mapping, 0);
	prof_profile__free(p);
}

Test(profile, locations_key_on_their_whole_line_list)
{
	const struct prof_line_in inl[] = {{"inner", NULL, "x.c", 5}, {"outer", NULL, "x.c", 9}};
	const struct prof_line_in inl_other[] = {{"inner", NULL, "x.c", 6},
						 {"outer", NULL, "x.c", 9}};
	const struct prof_loc_in a = {0x401000, &libc, inl, 2};
	const struct prof_loc_in b = {0x401000, &libc, inl_other, 2};
	const struct prof_loc_in c = {0x401000, &libc, inl, 1};
	const struct prof_loc_in none = {0x402000, &libc, NULL, 0};
	const struct prof_loc_in stacks[][2] = {{a, none}, {b, none}, {c, none}, {a, none}};
	struct prof_profile *p = prof_profile__new(1);
	const struct prof_location *l;
	uint32_t i;

	for (i = 0; i < ARRAY_SIZE(stacks); i++) {
		struct prof_sample_in s = {1, 1, "a", "a", stacks[i], 2, 1};

		prof_profile__add_sample(p, &s);
	}
	cr_assert_eq(p->nlocations, 4); /* a, none, b, c */
	cr_assert_eq(p->nsamples, 3);
	cr_assert_eq(p->samples[0].count, 2);
	l = &p->locations[0];
	cr_assert_eq(l->address, 0x401000);
	cr_assert_eq(l->mapping, 1);
	cr_assert_eq(l->nlines, 2);
	/* innermost first, as given */
	cr_assert_str_eq(prof_str(p, p->functions[p->lines[l->line_start].function - 1].name),
			 "inner");
	cr_assert_str_eq(prof_str(p, p->functions[p->lines[l->line_start + 1].function - 1].name),
			 "outer");
	cr_assert_eq(p->locations[1].nlines, 0);
	cr_assert_eq(p->locations[3].nlines, 1);
	/* each location owns its own slice of lines */
	for (i = 0; i < p->nlocations; i++)
		cr_assert_leq(p->locations[i].line_start + p->locations[i].nlines, p->nlines);
	cr_assert_eq(p->nlines, 2 + 0 + 2 + 1);
	prof_profile__free(p);
}

Test(profile, samples_merge_on_labels_and_stack)
{
	const struct prof_line_in f[] = {{"f", NULL, NULL, 0}, {"g", NULL, NULL, 0}};
	const struct prof_loc_in fg[] = {{0x10, NULL, &f[0], 1}, {0x20, NULL, &f[1], 1}};
	const struct prof_loc_in gf[] = {fg[1], fg[0]};
	const struct prof_sample_in in[] = {
		{1, 1, "a", "a", fg, 2, 3}, /* 0 */
		{1, 1, "a", "a", fg, 2, 4}, /* same as 0 */
		{1, 2, "a", "a", fg, 2, 1}, /* other tid */
		{2, 1, "a", "a", fg, 2, 1}, /* other pid */
		{1, 1, "b", "a", fg, 2, 1}, /* other comm */
		{1, 1, "a", "b", fg, 2, 1}, /* other thread */
		{1, 1, "a", "a", gf, 2, 1}, /* other order */
		{1, 1, "a", "a", fg, 1, 1}, /* prefix */
		{1, 1, "a", "a", NULL, 0, 1}, /* no stack */
		{1, 1, "a", "a", NULL, 0, 2}, /* same */
	};
	struct prof_profile *p = prof_profile__new(1);
	uint32_t i;

	for (i = 0; i < ARRAY_SIZE(in); i++)
		prof_profile__add_sample(p, &in[i]);
	cr_assert_eq(p->nsamples, 8);
	cr_assert_eq(p->samples[0].count, 7);
	cr_assert_eq(p->samples[7].count, 3);
	cr_assert_eq(p->samples[7].nlocs, 0);
	cr_assert_eq(p->total_count, 3 + 4 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 2);
	cr_assert_eq(p->nlocations, 2);
	/* leaf first, as given */
	cr_assert_eq(p->sample_locs[p->samples[0].loc_start], 1);
	cr_assert_eq(p->sample_locs[p->samples[0].loc_start + 1], 2);
	cr_assert_eq(p->sample_locs[p->samples[5].loc_start], 2);
	cr_assert_eq(p->samples[1].tid, 2);
	cr_assert_eq(p->samples[2].pid, 2);
	cr_assert_str_eq(prof_str(p, p->samples[3].comm), "b");
	cr_assert_str_eq(prof_str(p, p->samples[4].thread), "b");
	prof_profile__free(p);
}

/* ---- a generated workload, checked against a naive model ------------------- */

#define NLOCS_POOL 60

static struct prof_mapping_in gen_maps[3];
static struct prof_line_in gen_lines[NLOCS_POOL][3];
static char gen_names[20][16];

static void gen_setup(void)
{
	uint32_t i, j;

	for (i = 0; i < 3; i++) {
		gen_maps[i] = libc;
		gen_maps[i].start = 0x10000000ULL * (i + 1);
		gen_maps[i].limit = gen_maps[i].start + 0x100000;
	}
	gen_maps[2].file = "[kernel.kallsyms]";
	gen_maps[2].build_id = NULL;
	for (i = 0; i < 20; i++)
		snprintf(gen_names[i], sizeof(gen_names[i]), "func_%u", i);
	for (i = 0; i < NLOCS_POOL; i++) {
		for (j = 0; j < 3; j++) {
			gen_lines[i][j].name = gen_names[(i * 7 + j * 3) % 20];
			gen_lines[i][j].file = (i + j) % 2 ? "gen.c" : NULL;
			gen_lines[i][j].line = (i * 13 + j) % 50;
		}
	}
}

static uint32_t lcg(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

/*
 * Adds sample @n of the generated workload to @p. Deterministic in @n;
 * every 17th sample sees mapping 0 without inline information.
 */
static void gen_add(struct prof_profile *p, uint32_t n)
{
	struct prof_mapping_in partial = gen_maps[0];
	struct prof_loc_in locs[8];
	char comm[16], thread[16];
	uint32_t st = n * 2654435761u + 1, depth, i;
	struct prof_sample_in s = {0};

	partial.has_inline_frames = false;
	depth = 1 + lcg(&st) % 8;
	for (i = 0; i < depth; i++) {
		uint32_t k = lcg(&st) % NLOCS_POOL;

		locs[i].address = 0x1000 + k * 16;
		locs[i].mapping = k % 3 == 0 && n % 17 == 0 ? &partial : &gen_maps[k % 3];
		locs[i].lines = gen_lines[k];
		locs[i].nlines = k % 4; /* 0..3 lines, 0 = unsymbolized */
	}
	s.pid = 1 + lcg(&st) % 3;
	s.tid = s.pid * 10 + lcg(&st) % 2;
	snprintf(comm, sizeof(comm), "comm%u", s.pid);
	snprintf(thread, sizeof(thread), "thr%u", s.tid);
	s.comm = comm;
	s.thread = thread;
	s.locs = locs;
	s.nlocs = depth;
	s.count = 1 + lcg(&st) % 5;
	/* Some processes in a container: the label is part of a sample's identity. */
	s.container = s.pid == 2
			      ? "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			      : NULL;
	prof_profile__add_sample(p, &s);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * One line per sample with every field resolved to text, sorted: two
 * profiles with equal dumps hold the same data whatever their ids.
 */
static char *dump(const struct prof_profile *p)
{
	struct strbuf sb = STRBUF_INIT, all = STRBUF_INIT;
	char **rows = calloc(p->nsamples + 1, sizeof(*rows));
	uint32_t i, j, k;

	for (i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];

		strbuf_addf(&sb, "%u/%u/%s/%s:", s->pid, s->tid, prof_str(p, s->comm),
			    prof_str(p, s->thread));
		for (j = 0; j < s->nlocs; j++) {
			const struct prof_location *l =
				&p->locations[p->sample_locs[s->loc_start + j] - 1];

			strbuf_addf(&sb, " [%#llx", (unsigned long long)l->address);
			if (l->mapping) {
				const struct prof_mapping *m = &p->mappings[l->mapping - 1];

				strbuf_addf(&sb, " %s@%llx-%llx+%llx#%s%d%d%d%d",
					    prof_str(p, m->filename), (unsigned long long)m->start,
					    (unsigned long long)m->limit,
					    (unsigned long long)m->offset, prof_str(p, m->build_id),
					    m->has_functions, m->has_filenames, m->has_line_numbers,
					    m->has_inline_frames);
			}
			for (k = 0; k < l->nlines; k++) {
				const struct prof_line *ln = &p->lines[l->line_start + k];
				const struct prof_function *f = &p->functions[ln->function - 1];

				strbuf_addf(&sb, " %s|%s|%s|%lld:%lld", prof_str(p, f->name),
					    prof_str(p, f->system_name), prof_str(p, f->filename),
					    (long long)f->start_line, (long long)ln->line);
			}
			strbuf_addc(&sb, ']');
		}
		strbuf_addf(&sb, " =%llu", (unsigned long long)s->count);
		rows[i] = strbuf_detach(&sb, NULL);
	}
	qsort(rows, p->nsamples, sizeof(*rows), cmp_str);
	for (i = 0; i < p->nsamples; i++) {
		strbuf_adds(&all, rows[i]);
		strbuf_addc(&all, '\n');
		free(rows[i]);
	}
	free(rows);
	return strbuf_detach(&all, NULL);
}

static struct prof_profile *gen_profile(uint32_t from, uint32_t to)
{
	struct prof_profile *p = prof_profile__new(10101010);
	uint32_t n;

	for (n = from; n < to; n++)
		gen_add(p, n);
	return p;
}

Test(profile, generated_tables_are_deduplicated_and_consistent, .init = gen_setup)
{
	struct prof_profile *p = gen_profile(0, 3000);
	struct strbuf sb = STRBUF_INIT;
	Perftools__Profiles__Profile *pb;
	char err[256] = "", *d, *line, *next, **keys;
	uint64_t sum = 0;
	uint32_t i, j;

	cr_assert_eq(p->nmappings, 3);
	for (i = 0; i < p->nmappings; i++) {
		/* every 17th sample clears it for gen_maps[0]: ORed, it stays set */
		cr_assert(p->mappings[i].has_inline_frames);
		cr_assert(p->mappings[i].has_functions);
	}
	cr_assert_leq(p->nlocations, NLOCS_POOL);
	cr_assert_leq(p->nfunctions, 20 * 2);
	for (i = 0; i < p->nmappings; i++) {
		cr_assert_lt(p->mappings[i].filename, p->nstrings);
		cr_assert_lt(p->mappings[i].build_id, p->nstrings);
		for (j = 0; j < i; j++)
			cr_assert(memcmp(&p->mappings[i], &p->mappings[j], 32) != 0);
	}
	for (i = 0; i < p->nfunctions; i++) {
		const struct prof_function *a = &p->functions[i];

		cr_assert_lt(a->name, p->nstrings);
		cr_assert_lt(a->system_name, p->nstrings);
		cr_assert_lt(a->filename, p->nstrings);
		for (j = 0; j < i; j++) {
			const struct prof_function *b = &p->functions[j];

			cr_assert_not(a->name == b->name && a->system_name == b->system_name &&
				      a->filename == b->filename && a->start_line == b->start_line);
		}
	}
	for (i = 0; i < p->nlocations; i++) {
		const struct prof_location *l = &p->locations[i];

		cr_assert_leq(l->mapping, p->nmappings);
		cr_assert_leq(l->line_start + l->nlines, p->nlines);
		for (j = 0; j < l->nlines; j++) {
			cr_assert_geq(p->lines[l->line_start + j].function, 1);
			cr_assert_leq(p->lines[l->line_start + j].function, p->nfunctions);
		}
	}
	for (i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];

		cr_assert_leq(s->loc_start + s->nlocs, p->nsample_locs);
		for (j = 0; j < s->nlocs; j++) {
			cr_assert_geq(p->sample_locs[s->loc_start + j], 1);
			cr_assert_leq(p->sample_locs[s->loc_start + j], p->nlocations);
		}
		sum += s->count;
	}
	cr_assert_eq(sum, p->total_count);

	/* No two samples share a key: their dump lines differ once counts are cut off. */
	d = dump(p);
	keys = calloc(p->nsamples, sizeof(*keys));
	for (line = d, i = 0; *line; line = next, i++) {
		next = strchr(line, '\n');
		*next++ = '\0';
		*strrchr(line, '=') = '\0';
		keys[i] = line;
	}
	cr_assert_eq(i, p->nsamples);
	qsort(keys, p->nsamples, sizeof(*keys), cmp_str);
	for (i = 1; i < p->nsamples; i++)
		cr_assert_str_neq(keys[i - 1], keys[i]);
	free(keys);
	free(d);

	cr_assert_eq(pprof_encode(p, &sb), 0);
	pb = pprof_read(sb.buf, sb.len);
	cr_assert_not_null(pb);
	cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pb->n_sample, p->nsamples);
	pprof_free(pb);
	strbuf_release(&sb);
	prof_profile__free(p);
}

static void assert_same_profile(const struct prof_profile *a, const struct prof_profile *b)
{
	char *da = dump(a), *db = dump(b);

	cr_assert_eq(a->total_count, b->total_count);
	cr_assert_eq(a->nsamples, b->nsamples);
	cr_assert_eq(a->nlocations, b->nlocations);
	cr_assert_eq(a->nfunctions, b->nfunctions);
	cr_assert_eq(a->nmappings, b->nmappings);
	cr_assert_eq(a->nstrings, b->nstrings);
	cr_assert_str_eq(da, db);
	free(da);
	free(db);
}

Test(profile, merge_equals_building_from_all_samples, .init = gen_setup)
{
	struct prof_profile *a = gen_profile(0, 1500), *b = gen_profile(1500, 3000);
	struct prof_profile *all = gen_profile(0, 3000);

	prof_profile__merge(a, b);
	assert_same_profile(a, all);
	prof_profile__free(a);
	prof_profile__free(b);
	prof_profile__free(all);
}

Test(profile, merge_of_overlapping_profiles_adds_counts, .init = gen_setup)
{
	struct prof_profile *a = gen_profile(0, 1000), *b = gen_profile(500, 1500);
	struct prof_profile *a2 = gen_profile(0, 1000), *b2 = gen_profile(500, 1500);
	struct prof_profile *all = gen_profile(0, 1000);
	uint32_t n;

	for (n = 500; n < 1500; n++)
		gen_add(all, n);
	/* both directions: the result must not depend on the order */
	prof_profile__merge(a, b);
	prof_profile__merge(b2, a2);
	assert_same_profile(a, all);
	assert_same_profile(b2, all);

	/* a profile merged into itself counts everything twice */
	prof_profile__merge(all, all);
	prof_profile__merge(a, b2);
	assert_same_profile(a, all);
	prof_profile__free(a);
	prof_profile__free(b);
	prof_profile__free(a2);
	prof_profile__free(b2);
	prof_profile__free(all);
}

Test(profile, merge_of_the_known_profile_into_empty_is_a_copy)
{
	struct prof_profile *src = pprof_test_profile(), *dst = prof_profile__new(0);
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;

	prof_profile__merge(dst, src);
	assert_same_profile(dst, src);
	cr_assert_eq(dst->period_ns, src->period_ns);
	cr_assert_eq(dst->time_nanos, src->time_nanos);
	cr_assert_eq(dst->duration_nanos, src->duration_nanos);
	/* tables are added in src order, so even the ids and the encoding match */
	cr_assert_eq(pprof_encode_raw(src, &a), 0);
	cr_assert_eq(pprof_encode_raw(dst, &b), 0);
	cr_assert_eq(a.len, b.len);
	cr_assert(memcmp(a.buf, b.buf, a.len) == 0);
	strbuf_release(&a);
	strbuf_release(&b);
	prof_profile__free(src);
	prof_profile__free(dst);
}

Test(profile, merge_extends_the_time_window)
{
	struct prof_profile *a = prof_profile__new(1), *b = prof_profile__new(1);

	a->time_nanos = 1000;
	a->duration_nanos = 100;
	b->time_nanos = 1050;
	b->duration_nanos = 200;
	prof_profile__merge(a, b);
	cr_assert_eq(a->time_nanos, 1000);
	cr_assert_eq(a->duration_nanos, 250);
	/* a window inside dst's changes nothing */
	b->time_nanos = 1010;
	b->duration_nanos = 10;
	prof_profile__merge(a, b);
	cr_assert_eq(a->time_nanos, 1000);
	cr_assert_eq(a->duration_nanos, 250);
	/* dst without a start takes src's */
	a->time_nanos = 0;
	a->duration_nanos = 0;
	prof_profile__merge(a, b);
	cr_assert_eq(a->time_nanos, 1010);
	cr_assert_eq(a->duration_nanos, 10);
	prof_profile__free(a);
	prof_profile__free(b);
}
