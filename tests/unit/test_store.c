// SPDX-License-Identifier: MIT
/*
 * Unit tests for profiler/pprof_decode.c (suite pprof_decode) and
 * profiler/store.c (suite store): round trips, queries over ranges,
 * retention, crash recovery (torn tails at every byte, corrupt records,
 * garbage files), a full disk on a small tmpfs, and the size and query cost
 * of a realistic hour.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "profiler/encode.h"
#include "profiler/pprof_decode.h"
#include "profiler/store.h"
#include "tests/common/pprof_read.h"

#define SEC 1000000000LL

/* A realistic busy 2-CPU interval: 30 processes, a few hundred distinct stacks. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

#define RP_PROCS 30
#define RP_STACKS 400
#define RP_MAXDEPTH 32

struct rp_world {
	struct prof_mapping_in maps[RP_PROCS + 2];
	char files[RP_PROCS][64], builds[RP_PROCS][48];
	char comms[RP_PROCS][16];
	char fnames[RP_PROCS + 2][64][80];
	struct prof_line_in lines[RP_PROCS + 2][64];
	struct {
		int proc, depth, tid;
		struct prof_loc_in locs[RP_MAXDEPTH];
		double weight;
	} stacks[RP_STACKS];
};

static struct rp_world *rp_world_new(void)
{
	static const char *const words[] = {"parse",  "Buffer", "alloc",    "hash",	"Table",
					    "lookup", "render", "Request",  "handle",	"encode",
					    "json",   "io",	"Session",  "compress", "worker",
					    "Loop",   "event",	"dispatch", "read",	"write"};
	struct rp_world *w = calloc(1, sizeof(*w));
	uint64_t s = 42;
	int p, f, i;

	for (p = 0; p < RP_PROCS + 2; p++) {
		struct prof_mapping_in *m = &w->maps[p];

		if (p < RP_PROCS) {
			snprintf(w->files[p], sizeof(w->files[p]), "/usr/bin/service-%02d", p);
			snprintf(w->builds[p], sizeof(w->builds[p]), "%016llx%016llx%08x",
				 (unsigned long long)rng_next(&s), (unsigned long long)rng_next(&s),
				 p);
			snprintf(w->comms[p], sizeof(w->comms[p]), "svc%02d", p);
			m->start = 0x400000 + (uint64_t)p * 0x1000000;
			m->limit = m->start + 0x800000;
			m->file = w->files[p];
			m->build_id = w->builds[p];
			m->has_functions = m->has_filenames = m->has_line_numbers = true;
		} else if (p == RP_PROCS) {
			m->start = 0x7f0000000000;
			m->limit = 0x7f0000200000;
			m->offset = 0x28000;
			m->file = "/usr/lib/x86_64-linux-gnu/libc.so.6";
			m->build_id = "0123456789abcdef0123456789abcdef01234567";
			m->has_functions = true;
		} else {
			m->start = 0xffffffff81000000;
			m->limit = 0xffffffff83000000;
			m->file = "[kernel.kallsyms]";
			m->has_functions = true;
		}
		for (f = 0; f < 64; f++) {
			snprintf(w->fnames[p][f], sizeof(w->fnames[p][f]), "%s::%s%s_%d",
				 p < RP_PROCS	 ? w->comms[p]
				 : p == RP_PROCS ? "libc"
						 : "kernel",
				 words[rng_next(&s) % 20], words[rng_next(&s) % 20], f);
			w->lines[p][f].name = w->fnames[p][f];
			w->lines[p][f].file = p < RP_PROCS ? w->files[p] : NULL;
			w->lines[p][f].line = p < RP_PROCS ? (int64_t)(rng_next(&s) % 2000) : 0;
		}
	}
	for (i = 0; i < RP_STACKS; i++) {
		/*
		 * A stack is a walk down the process's call tree: function f calls
		 * one of f*3+1..f*3+3 (mod 64), so stacks share their roots as real
		 * ones do, and a call site (caller, callee) has one fixed address.
		 */
		int d, fi = 0, depth = 6 + (int)(rng_next(&s) % 22);
		int path[RP_MAXDEPTH];

		p = i % RP_PROCS;
		w->stacks[i].proc = p;
		w->stacks[i].tid = (int)(rng_next(&s) % 4);
		w->stacks[i].depth = depth;
		w->stacks[i].weight = 1.0 / (1 + i / 3); /* Zipf-ish: a few hot stacks */
		for (d = 0; d < depth; d++) {
			path[d] = fi;
			fi = (fi * 3 + 1 + (int)(rng_next(&s) % 3)) % 64;
		}
		/* root is path[0]; locations are stored leaf first */
		for (d = 0; d < depth; d++) {
			int k = depth - 1 - d, mp = p;

			if (d < 3 && i % 4 == 0)
				mp = RP_PROCS + 1; /* kernel leaf frames */
			else if (d < 5 && i % 3 == 0)
				mp = RP_PROCS; /* libc */
			w->stacks[i].locs[d].mapping = &w->maps[mp];
			w->stacks[i].locs[d].address = w->maps[mp].start + 0x1000 +
						       path[k] * 0x100 +
						       (k + 1 < depth ? path[k + 1] % 16 * 8 : 0);
			w->stacks[i].locs[d].lines = &w->lines[mp][path[k]];
			w->stacks[i].locs[d].nlines = 1;
		}
	}
	return w;
}

/* One 10 s interval of 99 Hz x 2 CPUs: ~1980 samples spread over the stacks. */
static struct prof_profile *rp_interval(const struct rp_world *w, uint64_t seed, int64_t t,
					uint32_t nsamples)
{
	struct prof_profile *p = prof_profile__new(10101010);
	double total = 0;
	uint64_t s = seed * 2654435761u + 1;
	uint32_t n, i;

	p->time_nanos = t;
	p->duration_nanos = 10000000000LL;
	for (i = 0; i < RP_STACKS; i++)
		total += w->stacks[i].weight;
	for (n = 0; n < nsamples; n++) {
		double r = (double)(rng_next(&s) % 1000000) / 1e6 * total;
		struct prof_sample_in in = {0};
		char thread[24];

		for (i = 0; i < RP_STACKS - 1 && r > w->stacks[i].weight; i++)
			r -= w->stacks[i].weight;
		in.pid = 1000 + w->stacks[i].proc;
		in.tid = in.pid + w->stacks[i].tid;
		in.comm = w->comms[w->stacks[i].proc];
		snprintf(thread, sizeof(thread), "%s-%d", in.comm, w->stacks[i].tid);
		in.thread = thread;
		in.locs = w->stacks[i].locs;
		in.nlocs = w->stacks[i].depth;
		in.count = 1;
		prof_profile__add_sample(p, &in);
	}
	return p;
}

/*
 * Process churn on top of it: @nproc short-lived processes (ls, sort, gzip),
 * each with a fresh pid and its own ASLR'd mappings of its binary, libc and
 * ld.so, sampled 1-3 times in stacks that walk the same per-program call
 * trees (so the same code recurs at other addresses), with kernel frames
 * of exec, page faults and exit at the leaf.
 */
#define RP_CHURN_FUNCS 48

/* One short-lived process: its mappings (ASLR'd) and function names. */
struct rp_proc {
	struct prof_mapping_in bin, libc, ld;
	char names[2][RP_CHURN_FUNCS][32]; /* ld.so's, the program's */
	struct prof_line_in lines[2][RP_CHURN_FUNCS];
};

/* The next step down a call tree of @n functions: f calls one of f*3+1..f*3+3. */
static int rp_callee(int f, int n, uint64_t *s)
{
	return (f * 3 + 1 + (int)(rng_next(s) % 3)) % n;
}

/* One stack of @pr, leaf first: kernel, then libc or ld.so, then the program down from main. */
static uint32_t rp_churn_stack(const struct rp_world *w, const struct rp_proc *pr, uint64_t *s,
			       struct prof_loc_in *locs)
{
	const struct prof_mapping_in *kern = &w->maps[RP_PROCS + 1];
	int nk = (int)(rng_next(s) % 7), nl = 1 + (int)(rng_next(s) % 4);
	int nb = 2 + (int)(rng_next(s) % 6), n = 0, d, fi, path[RP_MAXDEPTH];
	bool in_ld = rng_next(s) % 2;
	const struct prof_mapping_in *lib = in_ld ? &pr->ld : &pr->libc;

	for (d = 0, fi = (int)(rng_next(s) % 8); d < nk; d++, fi = rp_callee(fi, 64, s))
		locs[n++] = (struct prof_loc_in){kern->start + 0x1000 + fi * 0x100, kern,
						 &w->lines[RP_PROCS + 1][fi], 1};
	for (d = 0, fi = (int)(rng_next(s) % 8); d < nl; d++, fi = rp_callee(fi, 48, s))
		locs[n++] = (struct prof_loc_in){
			lib->start + 0x1000 + fi * 0x80, lib,
			in_ld ? &pr->lines[0][fi] : &w->lines[RP_PROCS][fi], 1};
	for (d = 0, fi = 0; d < nb; d++, fi = rp_callee(fi, RP_CHURN_FUNCS, s))
		path[d] = fi;
	for (d = nb - 1; d >= 0; d--)
		locs[n++] = (struct prof_loc_in){pr->bin.start + 0x100 + path[d] * 0x40, &pr->bin,
						 &pr->lines[1][path[d]], 1};
	return (uint32_t)n;
}

/*
 * Process churn on top of a world's interval: @nproc short-lived processes
 * (ls, sort, gzip), each with a fresh pid and its own ASLR'd mappings of
 * its binary, libc and ld.so, sampled 1-3 times in stacks that walk the
 * same per-program call trees (so the same code recurs at other
 * addresses), with kernel frames (exec, page faults, exit) at the leaf.
 */
static void rp_add_churn(const struct rp_world *w, struct prof_profile *p, uint64_t seed,
			 uint32_t first_pid, int nproc)
{
	static const char *const comms[] = {"ls", "sort", "gzip"};
	static const char *const bins[] = {"/usr/bin/ls", "/usr/bin/sort", "/usr/bin/gzip"};
	static const char *const builds[] = {"b0b0", "b1b1", "b2b2"};
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 7;
	struct rp_proc *pr = calloc(1, sizeof(*pr));
	int k, st, f;

	for (k = 0; k < nproc; k++) {
		int c = (int)(rng_next(&s) % 3), nst = 1 + (int)(rng_next(&s) % 3);

		pr->bin = (struct prof_mapping_in){.offset = 0x2000,
						   .file = bins[c],
						   .build_id = builds[c],
						   .has_functions = true};
		pr->bin.start = 0x550000000000ULL + (rng_next(&s) % 0x1000000) * 0x1000;
		pr->bin.limit = pr->bin.start + 0x20000;
		pr->libc = w->maps[RP_PROCS];
		pr->libc.start = 0x7f0000000000ULL + (rng_next(&s) % 0x1000000) * 0x1000;
		pr->libc.limit = pr->libc.start + 0x200000;
		pr->ld = (struct prof_mapping_in){.offset = 0x1000,
						  .file = "/usr/lib/x86_64-linux-gnu/ld.so.2",
						  .build_id = "4186bd4e",
						  .has_functions = true};
		pr->ld.start = 0x7f8000000000ULL + (rng_next(&s) % 0x1000000) * 0x1000;
		pr->ld.limit = pr->ld.start + 0x28000;
		for (f = 0; f < RP_CHURN_FUNCS; f++) {
			snprintf(pr->names[0][f], sizeof(pr->names[0][f]), "_dl_fn_%d", f);
			snprintf(pr->names[1][f], sizeof(pr->names[1][f]), "%s_fn_%d", comms[c], f);
			pr->lines[0][f] = (struct prof_line_in){.name = pr->names[0][f]};
			pr->lines[1][f] = (struct prof_line_in){.name = pr->names[1][f]};
		}
		for (st = 0; st < nst; st++) {
			struct prof_loc_in locs[RP_MAXDEPTH];
			struct prof_sample_in in = {first_pid + (uint32_t)k,
						    first_pid + (uint32_t)k,
						    comms[c],
						    comms[c],
						    locs,
						    0,
						    1};

			in.nlocs = rp_churn_stack(w, pr, &s, locs);
			prof_profile__add_sample(p, &in);
		}
	}
	free(pr);
}

/* ---- helpers ------------------------------------------------------------------ */

static char *folded(const struct prof_profile *p)
{
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(folded_encode(p, &sb, FOLDED_WITH_PID), 0);
	return strbuf_detach(&sb, NULL);
}

/* A query's result says the same as the merge of what was appended (by folded text). */
static void assert_same_folded(const struct prof_profile *q, const struct prof_profile *want)
{
	char *f1 = folded(want), *f2 = folded(q);

	cr_assert(!strcmp(f1, f2), "folded output of the query differs from the merged input");
	free(f1);
	free(f2);
}

static void assert_same_profile(const struct prof_profile *a, const struct prof_profile *b)
{
	uint32_t i;

	cr_assert_eq(a->nstrings, b->nstrings);
	for (i = 0; i < a->nstrings; i++)
		cr_assert_str_eq(a->strings[i], b->strings[i]);
	cr_assert_eq(a->nmappings, b->nmappings);
	for (i = 0; i < a->nmappings; i++) {
		const struct prof_mapping *x = &a->mappings[i], *y = &b->mappings[i];

		cr_assert(x->start == y->start && x->limit == y->limit && x->offset == y->offset &&
				  x->filename == y->filename && x->build_id == y->build_id &&
				  x->has_functions == y->has_functions &&
				  x->has_filenames == y->has_filenames &&
				  x->has_line_numbers == y->has_line_numbers &&
				  x->has_inline_frames == y->has_inline_frames,
			  "mapping %u differs", i + 1);
	}
	cr_assert_eq(a->nfunctions, b->nfunctions);
	for (i = 0; i < a->nfunctions; i++) {
		const struct prof_function *x = &a->functions[i], *y = &b->functions[i];

		cr_assert(x->name == y->name && x->system_name == y->system_name &&
				  x->filename == y->filename && x->start_line == y->start_line,
			  "function %u differs", i + 1);
	}
	cr_assert_eq(a->nlocations, b->nlocations);
	for (i = 0; i < a->nlocations; i++) {
		const struct prof_location *x = &a->locations[i], *y = &b->locations[i];

		cr_assert(x->mapping == y->mapping && x->address == y->address &&
				  x->line_start == y->line_start && x->nlines == y->nlines,
			  "location %u differs", i + 1);
	}
	cr_assert_eq(a->nlines, b->nlines);
	for (i = 0; i < a->nlines; i++)
		cr_assert(a->lines[i].function == b->lines[i].function &&
				  a->lines[i].line == b->lines[i].line,
			  "line %u differs", i);
	cr_assert_eq(a->nsample_locs, b->nsample_locs);
	cr_assert_eq(memcmp(a->sample_locs, b->sample_locs, a->nsample_locs * 4), 0);
	cr_assert_eq(a->nsamples, b->nsamples);
	cr_assert_eq(memcmp(a->samples, b->samples, a->nsamples * sizeof(*a->samples)), 0);
	cr_assert_eq(a->total_count, b->total_count);
	cr_assert_eq(a->period_ns, b->period_ns);
	cr_assert_eq(a->time_nanos, b->time_nanos);
	cr_assert_eq(a->duration_nanos, b->duration_nanos);
}

/* ---- pprof_decode ------------------------------------------------------------- */

Test(pprof_decode, raw_round_trip_gives_every_table_back)
{
	struct prof_profile *p = pprof_test_profile(), *d = NULL;
	struct strbuf sb = STRBUF_INIT;
	char *f1, *f2;

	cr_assert_eq(pprof_encode_raw(p, &sb), 0);
	cr_assert_eq(pprof_decode(sb.buf, sb.len, &d), 0);
	cr_assert_not_null(d);
	assert_same_profile(p, d);
	f1 = folded(p);
	f2 = folded(d);
	cr_assert_str_eq(f1, f2);
	free(f1);
	free(f2);
	prof_profile__free(d);
	prof_profile__free(p);
	strbuf_release(&sb);
}

Test(pprof_decode, gzip_round_trip)
{
	struct prof_profile *p = pprof_test_profile(), *d = NULL;
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(pprof_encode(p, &sb), 0);
	cr_assert_eq((unsigned char)sb.buf[0], 0x1f);
	cr_assert_eq(pprof_decode(sb.buf, sb.len, &d), 0);
	assert_same_profile(p, d);
	prof_profile__free(d);
	prof_profile__free(p);
	strbuf_release(&sb);
}

Test(pprof_decode, realistic_round_trip)
{
	struct rp_world *w = rp_world_new();
	struct prof_profile *p = rp_interval(w, 3, 5 * SEC, 1980), *d = NULL;
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(pprof_encode_raw(p, &sb), 0);
	cr_assert_eq(pprof_decode(sb.buf, sb.len, &d), 0);
	assert_same_profile(p, d);
	prof_profile__free(d);
	prof_profile__free(p);
	strbuf_release(&sb);
	free(w);
}

Test(pprof_decode, filter_keeps_matching_samples_only)
{
	struct prof_profile *p = pprof_test_profile(), *d;
	struct strbuf sb = STRBUF_INIT;
	static const struct {
		uint32_t pid;
		const char *comm;
		uint64_t total;
	} cases[] = {
		{0, NULL, 21}, {100, NULL, 10}, {200, NULL, 4}, {0, "app", 14},
		{0, "db", 1},  {100, "db", 0},	{999, NULL, 0}, {0, "swapper/0", 6},
	};
	size_t i;

	cr_assert_eq(pprof_encode_raw(p, &sb), 0);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct pprof_decode_filter f = {cases[i].pid, cases[i].comm};

		d = prof_profile__new(0);
		cr_assert_eq(pprof_decode_into(sb.buf, sb.len, &f, d), 0);
		cr_assert_eq(d->total_count, cases[i].total, "case %zu: %llu", i,
			     (unsigned long long)d->total_count);
		prof_profile__free(d);
	}
	prof_profile__free(p);
	strbuf_release(&sb);
}

Test(pprof_decode, malformed_input_is_einval_never_a_crash)
{
	struct prof_profile *p = pprof_test_profile(), *d = (void *)1;
	struct strbuf sb = STRBUF_INIT, gz = STRBUF_INIT;
	unsigned char junk[512];
	size_t i;
	int err;

	cr_assert_eq(pprof_decode("\xff\xff\xff", 3, &d), -EINVAL);
	cr_assert_null(d);
	cr_assert_eq(pprof_decode("\x1f\x8b\x08\x00", 4, &d), -EINVAL); /* truncated gzip */
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 7919 + 13);
	cr_assert_eq(pprof_decode(junk, sizeof(junk), &d), -EINVAL);

	/* Every prefix: either a valid shorter message or -EINVAL. */
	cr_assert_eq(pprof_encode_raw(p, &sb), 0);
	for (i = 0; i < sb.len; i++) {
		err = pprof_decode(sb.buf, i, &d);
		cr_assert(err == 0 || err == -EINVAL);
		prof_profile__free(d);
	}
	/* Every prefix of the gzip form: truncated gzip is always an error. */
	cr_assert_eq(pprof_encode(p, &gz), 0);
	for (i = 0; i < gz.len; i++) {
		cr_assert_eq(pprof_decode(gz.buf, i, &d), -EINVAL);
	}
	prof_profile__free(p);
	strbuf_release(&sb);
	strbuf_release(&gz);
}

/* Ids and string indexes that do not resolve. */
Test(pprof_decode, dangling_ids_are_einval)
{
	char *strings[] = {"", "f"};
	Perftools__Profiles__Function fn = PERFTOOLS__PROFILES__FUNCTION__INIT;
	Perftools__Profiles__Function *fns[] = {&fn};
	Perftools__Profiles__Line line = PERFTOOLS__PROFILES__LINE__INIT;
	Perftools__Profiles__Line *lines[] = {&line};
	Perftools__Profiles__Location loc = PERFTOOLS__PROFILES__LOCATION__INIT;
	Perftools__Profiles__Location *locs[] = {&loc};
	Perftools__Profiles__Sample smp = PERFTOOLS__PROFILES__SAMPLE__INIT;
	Perftools__Profiles__Sample *smps[] = {&smp};
	Perftools__Profiles__Profile pb = PERFTOOLS__PROFILES__PROFILE__INIT;
	uint64_t loc_ids[] = {1};
	int64_t values[] = {3};
	struct prof_profile *d = NULL;
	uint8_t buf[512];
	size_t n;

	pb.n_string_table = 2;
	pb.string_table = strings;
	fn.id = 1;
	fn.name = 1;
	pb.n_function = 1;
	pb.function = fns;
	line.function_id = 1;
	loc.id = 1;
	loc.n_line = 1;
	loc.line = lines;
	pb.n_location = 1;
	pb.location = locs;
	smp.n_location_id = 1;
	smp.location_id = loc_ids;
	smp.n_value = 1;
	smp.value = values;
	pb.n_sample = 1;
	pb.sample = smps;

	n = perftools__profiles__profile__pack(&pb, buf);
	cr_assert_eq(pprof_decode(buf, n, &d), 0, "the valid base case");
	cr_assert_eq(d->total_count, 3);
	prof_profile__free(d);

	line.function_id = 2;
	n = perftools__profiles__profile__pack(&pb, buf);
	cr_assert_eq(pprof_decode(buf, n, &d), -EINVAL, "line -> missing function");
	line.function_id = 1;

	loc_ids[0] = 7;
	n = perftools__profiles__profile__pack(&pb, buf);
	cr_assert_eq(pprof_decode(buf, n, &d), -EINVAL, "sample -> missing location");
	loc_ids[0] = 1;

	loc.mapping_id = 3;
	n = perftools__profiles__profile__pack(&pb, buf);
	cr_assert_eq(pprof_decode(buf, n, &d), -EINVAL, "location -> missing mapping");
	loc.mapping_id = 0;

	fn.name = 5;
	n = perftools__profiles__profile__pack(&pb, buf);
	cr_assert_eq(pprof_decode(buf, n, &d), -EINVAL, "string index out of range");
	fn.name = 1;

	values[0] = -1;
	n = perftools__profiles__profile__pack(&pb, buf);
	cr_assert_eq(pprof_decode(buf, n, &d), -EINVAL, "negative count");
	values[0] = 3;

	/* Ids out of array order resolve through the sorted path. */
	fn.id = 40;
	line.function_id = 40;
	loc.id = 9;
	loc_ids[0] = 9;
	n = perftools__profiles__profile__pack(&pb, buf);
	cr_assert_eq(pprof_decode(buf, n, &d), 0);
	cr_assert_eq(d->nfunctions, 1);
	cr_assert_str_eq(prof_str(d, d->functions[0].name), "f");
	prof_profile__free(d);
}

/* ---- store: helpers ---------------------------------------------------------- */

static void rm_rf(const char *dir)
{
	struct dirent *de;
	char path[4096];
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static char *tmp_dir(void)
{
	char *d = strdup("/tmp/bpfprof-store-XXXXXX");

	cr_assert_not_null(mkdtemp(d));
	return d;
}

static struct prof_store *open_store(const char *dir, uint64_t max_age, uint64_t max_bytes,
				     uint64_t min_free)
{
	struct prof_store_opts o = {dir, max_age, max_bytes, min_free};
	struct prof_store *s = prof_store__open(&o);

	cr_assert_not_null(s, "open %s: %s", dir, strerror(errno));
	return s;
}

/* Two processes: "alpha" (pid 1) burns @a samples in main;a, "beta" (pid 2) @b in main;b. */
static struct prof_profile *mk_interval(int64_t t, uint64_t a, uint64_t b)
{
	static const struct prof_mapping_in m = {
		.start = 0x400000, .limit = 0x500000, .file = "/bin/app", .has_functions = true};
	static const struct prof_line_in lmain[] = {{"main", NULL, "app.c", 1}};
	static const struct prof_line_in la[] = {{"a", NULL, "app.c", 10}};
	static const struct prof_line_in lb[] = {{"b", NULL, "app.c", 20}};
	const struct prof_loc_in sa[] = {{0x401100, &m, la, 1}, {0x401000, &m, lmain, 1}};
	const struct prof_loc_in sb[] = {{0x401200, &m, lb, 1}, {0x401000, &m, lmain, 1}};
	struct prof_sample_in in1 = {1, 1, "alpha", "alpha", sa, 2, a};
	struct prof_sample_in in2 = {2, 2, "beta", "beta", sb, 2, b};
	struct prof_profile *p = prof_profile__new(10101010);

	p->time_nanos = t;
	p->duration_nanos = 10 * SEC;
	if (a)
		prof_profile__add_sample(p, &in1);
	if (b)
		prof_profile__add_sample(p, &in2);
	return p;
}

static uint64_t comm_total(const struct prof_profile *p, const char *comm)
{
	uint64_t t = 0;
	uint32_t i;

	for (i = 0; i < p->nsamples; i++) {
		if (!strcmp(prof_str(p, p->samples[i].comm), comm))
			t += p->samples[i].count;
	}
	return t;
}

static struct prof_profile *query(struct prof_store *s, int64_t start, int64_t end,
				  const struct prof_store_filter *f)
{
	struct prof_profile *p = NULL;

	cr_assert_eq(prof_store__query(s, start, end, f, &p), 0);
	cr_assert_not_null(p);
	return p;
}

static int64_t base_time(void)
{
	return (int64_t)now_wall_ns() / SEC * SEC - 2 * 3600 * SEC;
}

/* ---- store: append and query ------------------------------------------------------- */

#define N_APPEND 50

Test(store, append_and_query_ranges)
{
	char *dir = tmp_dir();
	struct prof_store *s = open_store(dir, 0, 0, 1);
	int64_t t0 = base_time();
	struct prof_store_stats st;
	struct prof_profile *p, *q;
	uint64_t want_a = 0;
	int i;

	/* Interval i: alpha burns i + 1, beta 10. */
	for (i = 0; i < N_APPEND; i++) {
		p = mk_interval(t0 + i * 10 * SEC, i + 1, 10);
		cr_assert_eq(prof_store__append(s, p), 0);
		prof_profile__free(p);
		want_a += i + 1;
	}
	prof_store__stats(s, &st);
	cr_assert_eq(st.records, N_APPEND);
	cr_assert_eq(st.appends, N_APPEND);
	cr_assert_eq(st.oldest_ns, t0);
	cr_assert_eq(st.newest_ns, t0 + N_APPEND * 10 * SEC);
	cr_assert_gt(st.bytes, 0);
	cr_assert_gt(st.last_append_ns, 0);

	/* Everything. */
	q = query(s, t0, t0 + N_APPEND * 10 * SEC, NULL);
	cr_assert_eq(comm_total(q, "alpha"), want_a);
	cr_assert_eq(comm_total(q, "beta"), 10 * N_APPEND);
	cr_assert_eq(q->total_count, want_a + 10 * N_APPEND);
	cr_assert_eq(q->time_nanos, t0);
	cr_assert_eq(q->duration_nanos, N_APPEND * 10 * SEC);
	cr_assert_eq(q->period_ns, 10101010);
	cr_assert_eq(q->nsamples, 2);
	prof_profile__free(q);

	/* [15 s, 35 s) overlaps intervals 1, 2, 3 partly or fully. */
	q = query(s, t0 + 15 * SEC, t0 + 35 * SEC, NULL);
	cr_assert_eq(comm_total(q, "alpha"), 2 + 3 + 4);
	cr_assert_eq(comm_total(q, "beta"), 30);
	cr_assert_eq(q->time_nanos, t0 + 10 * SEC);
	cr_assert_eq(q->duration_nanos, 30 * SEC);
	prof_profile__free(q);

	/* Exactly one interval; its neighbours only touch the range's edges. */
	q = query(s, t0 + 20 * SEC, t0 + 30 * SEC, NULL);
	cr_assert_eq(q->total_count, 3 + 10);
	prof_profile__free(q);

	/* Filters. */
	q = query(s, t0, t0 + N_APPEND * 10 * SEC, &(struct prof_store_filter){.pid = 2});
	cr_assert_eq(q->total_count, 10 * N_APPEND);
	cr_assert_eq(comm_total(q, "alpha"), 0);
	prof_profile__free(q);
	q = query(s, t0, t0 + N_APPEND * 10 * SEC, &(struct prof_store_filter){.comm = "alpha"});
	cr_assert_eq(q->total_count, want_a);
	prof_profile__free(q);
	q = query(s, t0, t0 + N_APPEND * 10 * SEC,
		  &(struct prof_store_filter){.pid = 2, .comm = "alpha"});
	cr_assert_eq(q->total_count, 0);
	prof_profile__free(q);

	/* Empty ranges: before, after (touching the end), and inverted. */
	q = query(s, t0 - 100 * SEC, t0 - 50 * SEC, NULL);
	cr_assert_eq(q->nsamples, 0);
	cr_assert_eq(q->time_nanos, t0 - 100 * SEC);
	cr_assert_eq(q->duration_nanos, 50 * SEC);
	prof_profile__free(q);
	q = query(s, t0 + N_APPEND * 10 * SEC, t0 + N_APPEND * 20 * SEC, NULL);
	cr_assert_eq(q->nsamples, 0);
	prof_profile__free(q);
	q = (void *)1;
	cr_assert_eq(prof_store__query(s, t0 + 10, t0 + 10, NULL, &q), -EINVAL);
	cr_assert_null(q);

	prof_store__close(s);
	rm_rf(dir);
	free(dir);
}

Test(store, query_equals_merge_of_the_inputs)
{
	struct rp_world *w = rp_world_new();
	char *dir = tmp_dir();
	struct prof_store *s = open_store(dir, 0, 0, 1);
	struct prof_profile *want = prof_profile__new(10101010), *p, *q;
	int64_t t0 = base_time();
	int i;

	for (i = 0; i < 20; i++) {
		p = rp_interval(w, i + 1, t0 + i * 10 * SEC, 1980);
		cr_assert_eq(prof_store__append(s, p), 0);
		if (i >= 5 && i < 15)
			prof_profile__merge(want, p);
		prof_profile__free(p);
	}
	q = query(s, t0 + 50 * SEC, t0 + 150 * SEC, NULL);
	cr_assert_eq(q->total_count, want->total_count);
	cr_assert_eq(q->total_count, 10 * 1980);
	assert_same_folded(q, want);
	prof_profile__free(q);
	prof_profile__free(want);
	prof_store__close(s);
	rm_rf(dir);
	free(dir);
	free(w);
}

/*
 * Under process churn the appender's tables hold what recent records used,
 * not the whole segment: they stop growing, and a stack that comes back
 * after it was forgotten still reads back right.
 */
Test(store, appender_tables_follow_the_working_set)
{
	struct rp_world *w = rp_world_new();
	char *dir = tmp_dir();
	struct prof_store *s = open_store(dir, 0, 0, 1);
	struct prof_profile *want = prof_profile__new(10101010), *p, *q, *cron;
	struct prof_store_stats st;
	uint64_t bytes_at[121] = {0}, max_late = 0;
	int64_t t0 = base_time();
	int i;

	for (i = 0; i < 120; i++) {
		p = rp_interval(w, i + 1, t0 + i * 10 * SEC, 1980);
		rp_add_churn(w, p, i + 1, 100000 + (uint32_t)i * 100, 40);
		/* A job that runs twice, 80 records apart: forgotten in between. */
		if (i == 3 || i == 83) {
			cron = mk_interval(t0 + i * 10 * SEC, 7, 0);
			prof_profile__merge(p, cron);
			prof_profile__free(cron);
		}
		cr_assert_eq(prof_store__append(s, p), 0);
		prof_profile__merge(want, p);
		prof_profile__free(p);
		prof_store__stats(s, &st);
		bytes_at[i + 1] = st.table_bytes;
		if (i + 1 > 60 && st.table_bytes > max_late)
			max_late = st.table_bytes;
	}
	cr_assert_eq(st.segments, 1, "the test wants one segment, got %llu",
		     (unsigned long long)st.segments);
	cr_log_info("appender tables: %llu bytes after 40 records, at most %llu after 60, %llu "
		    "after 120",
		    (unsigned long long)bytes_at[40], (unsigned long long)max_late,
		    (unsigned long long)bytes_at[120]);
	cr_expect_lt(max_late, bytes_at[40] + bytes_at[40] / 2,
		     "tables grow with the segment: %llu bytes after 40 records, %llu later",
		     (unsigned long long)bytes_at[40], (unsigned long long)max_late);

	q = query(s, t0, t0 + 120 * 10 * SEC, NULL);
	cr_assert_eq(q->total_count, want->total_count);
	cr_expect_eq(comm_total(q, "alpha"), 14);
	assert_same_folded(q, want);
	prof_profile__free(q);
	prof_profile__free(want);
	prof_store__close(s);
	rm_rf(dir);
	free(dir);
	free(w);
}

Test(store, reopen_keeps_everything)
{
	char *dir = tmp_dir();
	struct prof_store *s = open_store(dir, 0, 0, 1);
	struct prof_store_stats st1, st2;
	int64_t t0 = base_time();
	struct prof_profile *p, *q1, *q2;
	char *f1, *f2;
	int i;

	for (i = 0; i < 30; i++) {
		p = mk_interval(t0 + i * 10 * SEC, i, 2 * i + 1);
		cr_assert_eq(prof_store__append(s, p), 0);
		prof_profile__free(p);
	}
	q1 = query(s, t0, t0 + 3600 * SEC, NULL);
	prof_store__stats(s, &st1);
	prof_store__close(s);

	s = open_store(dir, 0, 0, 1);
	prof_store__stats(s, &st2);
	cr_assert_eq(st2.records, st1.records);
	cr_assert_eq(st2.bytes, st1.bytes);
	cr_assert_eq(st2.oldest_ns, st1.oldest_ns);
	cr_assert_eq(st2.newest_ns, st1.newest_ns);
	cr_assert_eq(st2.corrupt_records + st2.torn_tails_truncated + st2.corrupt_segments, 0);
	q2 = query(s, t0, t0 + 3600 * SEC, NULL);
	f1 = folded(q1);
	f2 = folded(q2);
	cr_assert_str_eq(f1, f2);
	free(f1);
	free(f2);
	prof_profile__free(q2);

	/* Appends after a reopen go on, in a new segment. */
	p = mk_interval(t0 + 300 * SEC, 5, 0);
	cr_assert_eq(prof_store__append(s, p), 0);
	prof_profile__free(p);
	prof_store__stats(s, &st2);
	cr_assert_eq(st2.records, st1.records + 1);
	cr_assert_eq(st2.segments, st1.segments + 1);
	q2 = query(s, t0, t0 + 3600 * SEC, NULL);
	cr_assert_eq(q2->total_count, q1->total_count + 5);
	prof_profile__free(q2);
	prof_profile__free(q1);
	prof_store__close(s);
	rm_rf(dir);
	free(dir);
}

/*
 * prof_store__ranges() lists what a query would read, from the index: the
 * intervals overlapping the range, in time order, across segments and a
 * reopen, with the gaps where nothing was stored.
 */
Test(store, ranges_list_the_stored_intervals)
{
	char *dir = tmp_dir();
	struct prof_store *s = open_store(dir, 0, 0, 1);
	int64_t t0 = base_time();
	struct prof_store_range *r;
	size_t n;
	static const struct {
		int64_t from, to; /* seconds after t0 */
		size_t want_n;
		int64_t want_first, want_last; /* start of the first and last listed, s after t0 */
	} cases[] = {
		{0, 1000, 14, 0, 430},
		{25, 65, 5, 20, 60}, /* partly covered intervals at both ends count */
		{30, 40, 1, 30, 30}, /* exactly one: its neighbours only touch it */
		{100, 400, 0, 0, 0}, /* the gap between the two runs */
		{95, 405, 2, 90, 400}, /* the last of the first run, the first of the second */
		{-100, 0, 0, 0, 0},
		{440, 500, 0, 0, 0}, /* the last one ends at 440 */
	};

	/* Ten 10 s intervals from t0; after a reopen (a new segment), four from t0 + 400 s. */
	for (int i = 0; i < 14; i++) {
		struct prof_profile *p;

		if (i == 10) {
			prof_store__close(s);
			s = open_store(dir, 0, 0, 1);
		}
		p = mk_interval(t0 + (i < 10 ? i * 10 : 400 + (i - 10) * 10) * SEC, 1, 1);
		cr_assert_eq(prof_store__append(s, p), 0);
		prof_profile__free(p);
	}
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cr_assert_eq(prof_store__ranges(s, t0 + cases[i].from * SEC, t0 + cases[i].to * SEC,
						&r, &n),
			     0);
		cr_expect_eq(n, cases[i].want_n, "case %zu: %zu ranges", i, n);
		if (!n) {
			cr_expect_null(r);
			continue;
		}
		cr_expect_eq(r[0].start_ns, t0 + cases[i].want_first * SEC, "case %zu", i);
		cr_expect_eq(r[n - 1].start_ns, t0 + cases[i].want_last * SEC, "case %zu", i);
		for (size_t k = 0; k < n; k++) {
			cr_expect_eq(r[k].end_ns, r[k].start_ns + 10 * SEC, "case %zu", i);
			if (k)
				cr_expect_gt(r[k].start_ns, r[k - 1].start_ns, "case %zu: order",
					     i);
		}
		free(r);
	}
	cr_expect_eq(prof_store__ranges(s, t0, t0, &r, &n), -EINVAL);
	cr_expect_null(r);
	prof_store__close(s);
	rm_rf(dir);
	free(dir);
}

/* ---- store: retention ---------------------------------------------------------------- */

Test(store, retention_by_age)
{
	char *dir = tmp_dir();
	int64_t now = (int64_t)now_wall_ns(), h = 3600 * SEC;
	const int64_t times[] = {now - 30 * h, now - 29 * h, now - 25 * h - 10 * SEC, now - 2 * h,
				 now - h};
	struct prof_store *s = open_store(dir, 48 * h, 0, 1);
	struct prof_store_stats st;
	struct prof_profile *p, *q;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(times); i++) {
		p = mk_interval(times[i], 1, 0);
		cr_assert_eq(prof_store__append(s, p), 0);
		prof_profile__free(p);
	}
	prof_store__stats(s, &st);
	cr_assert_eq(st.records, 5, "all younger than 48 h");
	prof_store__close(s);

	/* Reopened with the default 24 h: the next append drops the three old intervals. */
	s = open_store(dir, 0, 0, 1);
	p = mk_interval(now - 10 * SEC, 0, 1);
	cr_assert_eq(prof_store__append(s, p), 0);
	prof_profile__free(p);
	prof_store__stats(s, &st);
	cr_assert_eq(st.records, 3);
	cr_assert_eq(st.oldest_ns, now - 2 * h);
	q = query(s, now - 40 * h, now + h, NULL);
	cr_assert_eq(comm_total(q, "alpha"), 2);
	cr_assert_eq(comm_total(q, "beta"), 1);
	prof_profile__free(q);

	/* An interval already past the age is dropped as soon as it is written. */
	p = mk_interval(now - 26 * h, 1, 0);
	cr_assert_eq(prof_store__append(s, p), 0);
	prof_profile__free(p);
	prof_store__stats(s, &st);
	cr_assert_eq(st.records, 3);
	prof_store__close(s);
	rm_rf(dir);
	free(dir);
}

Test(store, retention_by_size)
{
	const uint64_t max = 16384;
	char *dir = tmp_dir();
	struct prof_store *s = open_store(dir, 0, max, 1);
	int64_t t0 = base_time();
	struct prof_store_stats st;
	struct prof_profile *p, *q;
	int i;

	for (i = 0; i < 400; i++) {
		p = mk_interval(t0 + i * 10 * SEC, 1, 1);
		cr_assert_eq(prof_store__append(s, p), 0);
		prof_profile__free(p);
		prof_store__stats(s, &st);
		cr_assert_leq(st.bytes, max, "after append %d: %llu bytes", i,
			      (unsigned long long)st.bytes);
	}
	cr_assert_lt(st.records, 400);
	cr_assert_gt(st.records, 20);
	cr_assert_geq(st.segments, 4);
	/* The newest are kept, contiguous up to the last one. */
	cr_assert_eq(st.newest_ns, t0 + 400 * 10 * SEC);
	cr_assert_eq(st.oldest_ns, t0 + (int64_t)(400 - st.records) * 10 * SEC);
	q = query(s, t0, t0 + 400 * 10 * SEC, NULL);
	cr_assert_eq(q->total_count, 2 * st.records);
	prof_profile__free(q);
	prof_store__close(s);
	rm_rf(dir);
	free(dir);
}

/* ---- store: crash recovery ----------------------------------------------------------- */

/* The one segment file in @dir. */
static void only_segment(const char *dir, char *path, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		if (!strncmp(de->d_name, "seg-", 4)) {
			snprintf(path, len, "%s/%s", dir, de->d_name);
			n++;
		}
	}
	closedir(d);
	cr_assert_eq(n, 1, "%d segments in %s", n, dir);
}

static void read_all(const char *path, struct strbuf *sb)
{
	strbuf_reset(sb);
	cr_assert_eq(read_file(path, sb, 0), 0, "%s", path);
}

static void write_all(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/*
 * Five records in one segment; @ends[i] is the file size after record i.
 * Alpha burns 1 << i in interval i, so a total names exactly which
 * intervals were read.
 */
static void five_records(const char *dir, int64_t t0, uint64_t ends[5])
{
	struct prof_store *s = open_store(dir, 0, 0, 1);
	struct prof_store_stats st;
	int i;

	for (i = 0; i < 5; i++) {
		struct prof_profile *p = mk_interval(t0 + i * 10 * SEC, 1u << i, 0);

		cr_assert_eq(prof_store__append(s, p), 0);
		prof_profile__free(p);
		prof_store__stats(s, &st);
		ends[i] = st.bytes;
	}
	cr_assert_eq(st.segments, 1);
	prof_store__close(s);
}

static uint64_t total_all(struct prof_store *s, int64_t t0)
{
	struct prof_profile *q = query(s, t0 - 3600 * SEC, t0 + 3600 * SEC, NULL);
	uint64_t t = q->total_count;

	prof_profile__free(q);
	return t;
}

Test(store, torn_tail_at_every_byte_of_the_last_record)
{
	char *dir = tmp_dir(), seg[4096];
	struct strbuf pristine = STRBUF_INIT, after = STRBUF_INIT;
	int64_t t0 = base_time();
	uint64_t ends[5], cut;

	five_records(dir, t0, ends);
	only_segment(dir, seg, sizeof(seg));
	read_all(seg, &pristine);
	cr_assert_eq(pristine.len, ends[4]);

	for (cut = ends[3]; cut < ends[4]; cut++) {
		struct prof_store_stats st;
		struct prof_store *s;

		write_all(seg, pristine.buf, cut);
		s = open_store(dir, 0, 0, 1);
		prof_store__stats(s, &st);
		cr_assert_eq(st.records, 4, "cut at %llu", (unsigned long long)cut);
		cr_assert_eq(st.torn_tails_truncated, cut > ends[3], "cut at %llu",
			     (unsigned long long)cut);
		cr_assert_eq(st.corrupt_records + st.corrupt_segments, 0);
		cr_assert_eq(st.bytes, ends[3]);
		cr_assert_eq(total_all(s, t0), 1 + 2 + 4 + 8);
		prof_store__close(s);
		read_all(seg, &after);
		cr_assert_eq(after.len, ends[3], "the torn tail is cut off the file");
	}

	/* The store goes on after a recovery. */
	{
		struct prof_store *s = open_store(dir, 0, 0, 1);
		struct prof_profile *p = mk_interval(t0 + 100 * SEC, 100, 0);
		struct prof_store_stats st;

		cr_assert_eq(prof_store__append(s, p), 0);
		prof_profile__free(p);
		prof_store__close(s);
		s = open_store(dir, 0, 0, 1);
		prof_store__stats(s, &st);
		cr_assert_eq(st.records, 5);
		cr_assert_eq(total_all(s, t0), 15 + 100);
		prof_store__close(s);
	}
	strbuf_release(&pristine);
	strbuf_release(&after);
	rm_rf(dir);
	free(dir);
}

Test(store, torn_segment_header_is_removed)
{
	char *dir = tmp_dir(), seg[4096];
	struct strbuf pristine = STRBUF_INIT;
	int64_t t0 = base_time();
	uint64_t ends[5], cut;

	five_records(dir, t0, ends);
	only_segment(dir, seg, sizeof(seg));
	read_all(seg, &pristine);
	for (cut = 0; cut < 16; cut++) {
		struct prof_store_stats st;
		struct prof_store *s;

		write_all(seg, pristine.buf, cut);
		s = open_store(dir, 0, 0, 1);
		prof_store__stats(s, &st);
		cr_assert_eq(st.records + st.segments, 0);
		cr_assert_eq(st.torn_tails_truncated, 1);
		prof_store__close(s);
		cr_assert_neq(access(seg, F_OK), 0, "a torn header leaves no file behind");
	}
	strbuf_release(&pristine);
	rm_rf(dir);
	free(dir);
}

Test(store, corrupt_middle_record_is_skipped_and_counted)
{
	char *dir = tmp_dir(), seg[4096];
	struct strbuf pristine = STRBUF_INIT, bad = STRBUF_INIT, after = STRBUF_INIT;
	int64_t t0 = base_time();
	uint64_t ends[5];
	struct prof_store_stats st;
	struct prof_store *s;
	struct {
		const char *what;
		uint64_t off; /* in record 2 (alpha = 4) */
	} cases[3];
	size_t i;

	five_records(dir, t0, ends);
	only_segment(dir, seg, sizeof(seg));
	read_all(seg, &pristine);
	cases[0].what = "payload byte";
	cases[0].off = ends[1] + 48 + (ends[2] - ends[1] - 48) / 2;
	cases[1].what = "length field (resync on the next magic)";
	cases[1].off = ends[1] + 5;
	cases[2].what = "time field";
	cases[2].off = ends[1] + 9;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		strbuf_reset(&bad);
		strbuf_add(&bad, pristine.buf, pristine.len);
		bad.buf[cases[i].off] ^= 0x5a;
		write_all(seg, bad.buf, bad.len);
		/* Records build on the ones before them: 3 and 4 are lost with 2. */
		s = open_store(dir, 0, 0, 1);
		prof_store__stats(s, &st);
		cr_assert_eq(st.records, 2, "%s", cases[i].what);
		cr_assert_eq(st.corrupt_records, 3, "%s", cases[i].what);
		cr_assert_eq(st.torn_tails_truncated, 0, "%s", cases[i].what);
		cr_assert_eq(total_all(s, t0), 1 + 2, "%s", cases[i].what);
		prof_store__close(s);
		read_all(seg, &after);
		cr_assert_eq(after.len, bad.len, "%s: nothing is cut off a corrupt segment",
			     cases[i].what);
	}

	/* Corrupted on disk after open: found when read, skipped and counted then. */
	write_all(seg, pristine.buf, pristine.len);
	s = open_store(dir, 0, 0, 1);
	write_all(seg, bad.buf, 0); /* O_TRUNC then rewrite with a flipped payload byte */
	strbuf_reset(&bad);
	strbuf_add(&bad, pristine.buf, pristine.len);
	bad.buf[cases[0].off] ^= 0x5a;
	write_all(seg, bad.buf, bad.len);
	cr_assert_eq(total_all(s, t0), 1 + 2);
	prof_store__stats(s, &st);
	cr_assert_eq(st.corrupt_records, 3);
	prof_store__close(s);

	strbuf_release(&pristine);
	strbuf_release(&after);
	strbuf_release(&bad);
	rm_rf(dir);
	free(dir);
}

/*
 * Interval i: process "p<i>" (pid 10 + i) runs main;f<i>, plus alpha's
 * main;a: every record brings new strings, functions and locations that
 * the next records build on.
 */
static struct prof_profile *mk_growing(int64_t t, int i)
{
	static const struct prof_mapping_in m = {
		.start = 0x400000, .limit = 0x500000, .file = "/bin/app", .has_functions = true};
	char comm[16], fn[16];
	struct prof_line_in lmain = {"main", NULL, "app.c", 1}, lf = {fn, NULL, "app.c", 0};
	struct prof_loc_in locs[] = {{0x401000 + 0x40 * (uint64_t)i, &m, &lf, 1},
				     {0x400100, &m, &lmain, 1}};
	struct prof_sample_in in = {10 + (uint32_t)i, 10 + (uint32_t)i, comm, comm, locs, 2, 3};
	struct prof_profile *p = mk_interval(t, 1, 0);

	snprintf(comm, sizeof(comm), "p%d", i);
	snprintf(fn, sizeof(fn), "f%d", i);
	lf.line = 100 + i;
	prof_profile__add_sample(p, &in);
	return p;
}

Test(store, a_record_whose_base_is_lost_is_never_misread)
{
	char *dir = tmp_dir(), seg[4096];
	struct strbuf pristine = STRBUF_INIT, spliced = STRBUF_INIT;
	struct prof_store *s = open_store(dir, 0, 0, 1);
	struct prof_store_stats st;
	struct prof_profile *q;
	int64_t t0 = base_time();
	uint64_t ends[5];
	char *f;
	int i;

	for (i = 0; i < 5; i++) {
		struct prof_profile *p = mk_growing(t0 + i * 10 * SEC, i);

		cr_assert_eq(prof_store__append(s, p), 0);
		prof_profile__free(p);
		prof_store__stats(s, &st);
		ends[i] = st.bytes;
	}
	prof_store__close(s);
	only_segment(dir, seg, sizeof(seg));
	read_all(seg, &pristine);

	/* Record 2 cut out: 3 and 4 now sit where their base should be. */
	strbuf_add(&spliced, pristine.buf, ends[1]);
	strbuf_add(&spliced, pristine.buf + ends[2], pristine.len - ends[2]);
	write_all(seg, spliced.buf, spliced.len);
	s = open_store(dir, 0, 0, 1);
	prof_store__stats(s, &st);
	cr_assert_eq(st.records, 2);
	cr_assert_eq(st.corrupt_records, 2);
	cr_assert_eq(st.torn_tails_truncated, 0);
	q = query(s, t0 - 3600 * SEC, t0 + 3600 * SEC, NULL);
	f = folded(q);
	cr_assert_str_eq(f, "alpha-1;main;a 2\np0-10;main;f0 3\np1-11;main;f1 3\n", "got:\n%s", f);
	free(f);
	prof_profile__free(q);
	prof_store__close(s);

	/* The same after open: the file swapped under an open store. */
	write_all(seg, pristine.buf, pristine.len);
	s = open_store(dir, 0, 0, 1);
	write_all(seg, spliced.buf, spliced.len);
	q = query(s, t0 - 3600 * SEC, t0 + 3600 * SEC, NULL);
	f = folded(q);
	cr_assert_str_eq(f, "alpha-1;main;a 2\np0-10;main;f0 3\np1-11;main;f1 3\n", "got:\n%s", f);
	free(f);
	prof_profile__free(q);
	prof_store__stats(s, &st);
	cr_assert_eq(st.corrupt_records, 3, "record 2 as indexed, and the two after it");
	prof_store__close(s);

	strbuf_release(&pristine);
	strbuf_release(&spliced);
	rm_rf(dir);
	free(dir);
}

Test(store, an_older_format_version_is_reported_and_not_read)
{
	char *dir = tmp_dir(), path[4096];
	unsigned char v1[64] = "BPFPSTOR\x01\x00\x00\x00";
	uint32_t c = (uint32_t)crc32(0, v1, 12);
	struct prof_store_stats st;
	struct prof_store *s;
	struct prof_profile *p;
	int64_t t0 = base_time();

	v1[12] = c & 0xff;
	v1[13] = c >> 8 & 0xff;
	v1[14] = c >> 16 & 0xff;
	v1[15] = c >> 24;
	snprintf(path, sizeof(path), "%s/seg-%020lld.bps", dir, (long long)t0);
	write_all(path, v1, sizeof(v1));
	s = open_store(dir, 0, 0, 1);
	prof_store__stats(s, &st);
	cr_assert_eq(st.corrupt_segments, 1);
	cr_assert_eq(st.records + st.torn_tails_truncated, 0);
	p = mk_interval(t0 + 10 * SEC, 7, 0);
	cr_assert_eq(prof_store__append(s, p), 0);
	prof_profile__free(p);
	cr_assert_eq(total_all(s, t0), 7);
	prof_store__close(s);
	cr_assert_eq(access(path, F_OK), 0, "left for retention, not deleted at open");
	rm_rf(dir);
	free(dir);
}

Test(store, the_same_code_in_many_processes_is_stored_once)
{
	static const struct prof_line_in lmain = {"main", NULL, NULL, 0};
	static const struct prof_line_in lwork = {"work", NULL, NULL, 0};
	char *dir = tmp_dir();
	struct prof_store *s = open_store(dir, 0, 0, 1);
	struct prof_profile *p = prof_profile__new(10101010), *q;
	struct prof_store_stats st1, st2;
	int64_t t0 = base_time();
	uint64_t x = 7;
	uint32_t i, j;

	p->time_nanos = t0;
	p->duration_nanos = 10 * SEC;
	for (i = 0; i < 200; i++) {
		struct prof_mapping_in m = {.file = "/usr/bin/ls",
					    .build_id = "ab12",
					    .offset = 0x4000,
					    .has_functions = true};
		struct prof_loc_in locs[2];
		struct prof_sample_in in = {5000 + i, 5000 + i, "ls", "ls", locs, 2, 1 + i % 3};

		m.start = 0x560000000000ULL + (rng_next(&x) % 0x100000) * 0x1000;
		m.limit = m.start + 0x10000;
		locs[0] = (struct prof_loc_in){m.start + 0x234, &m, &lwork, 1};
		locs[1] = (struct prof_loc_in){m.start + 0x100, &m, &lmain, 1};
		prof_profile__add_sample(p, &in);
	}
	cr_assert_eq(p->nlocations, 400);
	cr_assert_eq(prof_store__append(s, p), 0);
	prof_store__stats(s, &st1);
	p->time_nanos += 10 * SEC;
	cr_assert_eq(prof_store__append(s, p), 0);
	prof_store__stats(s, &st2);
	cr_log_info("200 processes of one binary: first record %llu bytes, the same again %llu",
		    (unsigned long long)st1.bytes, (unsigned long long)(st2.bytes - st1.bytes));

	q = query(s, t0, t0 + 20 * SEC, NULL);
	cr_assert_eq(q->total_count, 2 * p->total_count);
	cr_assert_eq(q->nsamples, 200);
	cr_assert_eq(q->nmappings, 1, "one mapping for every ASLR'd copy");
	cr_assert_eq(q->nlocations, 2, "one location per code address");
	for (i = 0; i < q->nlocations; i++) {
		const struct prof_location *l = &q->locations[i];
		const struct prof_mapping *m = &q->mappings[l->mapping - 1];
		const char *fn =
			prof_str(q, q->functions[q->lines[l->line_start].function - 1].name);

		/* The file offset, which re-symbolization relies on, is kept. */
		cr_assert_eq(l->address - m->start + m->offset,
			     !strcmp(fn, "work") ? 0x4234u : 0x4100u, "%s", fn);
	}
	for (i = 0; i < q->nsamples; i++) {
		j = q->samples[i].pid - 5000;
		cr_assert_eq(q->samples[i].count, 2 * (1 + j % 3));
	}
	prof_profile__free(q);
	prof_profile__free(p);
	prof_store__close(s);
	rm_rf(dir);
	free(dir);
}

Test(store, garbage_segments_are_skipped)
{
	char *dir = tmp_dir(), path[4096];
	static const size_t sizes[] = {16, 17, 48, 1000, 100000};
	unsigned char *junk = malloc(100000);
	int64_t t0 = base_time();
	struct prof_store_stats st;
	struct prof_store *s;
	struct prof_profile *p;
	uint64_t x = 12345;
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		for (j = 0; j < sizes[i]; j++)
			junk[j] = (unsigned char)rng_next(&x);
		snprintf(path, sizeof(path), "%s/seg-%020zu.bps", dir, i + 1);
		write_all(path, junk, sizes[i]);
	}
	/* A valid segment header followed by noise: no record, a torn tail. */
	memcpy(junk, "BPFPSTOR\x01\x00\x00\x00", 12);
	{
		/* header CRC over the first 12 bytes, as the store writes it */
		struct strbuf sb = STRBUF_INIT;
		struct prof_store *t;
		char other[4096];
		char *d2 = tmp_dir();

		t = open_store(d2, 0, 0, 1);
		p = mk_interval(t0, 1, 0);
		cr_assert_eq(prof_store__append(t, p), 0);
		prof_profile__free(p);
		prof_store__close(t);
		only_segment(d2, other, sizeof(other));
		read_all(other, &sb);
		memcpy(junk, sb.buf, 16);
		strbuf_release(&sb);
		rm_rf(d2);
		free(d2);
	}
	snprintf(path, sizeof(path), "%s/seg-%020d.bps", dir, 99);
	write_all(path, junk, 5000);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	write_all(path, "not a segment", 13);

	s = open_store(dir, 0, 0, 1);
	prof_store__stats(s, &st);
	cr_assert_eq(st.records, 0);
	cr_assert_eq(st.corrupt_segments, ARRAY_SIZE(sizes));
	cr_assert_eq(st.torn_tails_truncated, 1);
	cr_assert_eq(total_all(s, t0), 0);
	p = mk_interval(t0, 7, 0);
	cr_assert_eq(prof_store__append(s, p), 0);
	prof_profile__free(p);
	cr_assert_eq(total_all(s, t0), 7);
	prof_store__close(s);

	/* Garbage names a store must not touch. */
	cr_assert_eq(access(path, F_OK), 0);
	free(junk);
	rm_rf(dir);
	free(dir);
}

Test(store, unusable_directory_is_an_error)
{
	struct prof_store_opts o = {.dir = "/proc/version/store"};

	errno = 0;
	cr_assert_null(prof_store__open(&o));
	cr_assert_neq(errno, 0);
	o.dir = NULL;
	cr_assert_null(prof_store__open(&o));
	cr_assert_eq(errno, EINVAL);
	prof_store__close(NULL);
}

/* ---- store: a full disk -------------------------------------------------------------- */

static void full_disk(uint64_t min_free, bool expect_floor)
{
	struct rp_world *w = rp_world_new();
	char *dir = tmp_dir();
	struct prof_store_stats st;
	struct prof_store *s;
	int64_t t0 = base_time();
	int i, ok = 0, enospc = 0, first_fail = -1;

	if (geteuid() != 0) {
		free(dir);
		free(w);
		cr_skip_test("mounting a tmpfs needs root");
	}
	if (mount("none", dir, "tmpfs", 0, "size=2m")) {
		rmdir(dir);
		free(dir);
		free(w);
		cr_skip_test("mount tmpfs: %s", strerror(errno));
	}
	s = open_store(dir, 0, 0, min_free);
	for (i = 0; i < 300; i++) {
		struct prof_profile *p = rp_interval(w, i, t0 + i * 10 * SEC, 1980);
		int err;

		/* Records of a static world are a few hundred bytes: churn fills the disk. */
		rp_add_churn(w, p, i + 1, 100000 + (uint32_t)i * 1000, 1000);
		err = prof_store__append(s, p);

		prof_profile__free(p);
		cr_assert(err == 0 || err == -ENOSPC, "append %d: %s", i, strerror(-err));
		if (!err && first_fail < 0)
			ok++;
		if (err == -ENOSPC) {
			enospc++;
			if (first_fail < 0)
				first_fail = i;
		}
		if (enospc >= 20)
			break;
	}
	cr_assert_gt(ok, 0);
	cr_assert_eq(enospc, 20);
	prof_store__stats(s, &st);
	cr_assert_geq(st.dropped_for_space, 20);
	if (expect_floor)
		cr_assert_eq(st.write_errors, 0, "the floor refuses before the disk fills");
	cr_assert_geq(st.records, (uint64_t)ok);
	cr_assert_eq(total_all(s, t0) >= (uint64_t)ok * 1980, true);
	cr_log_info("full disk (floor %llu): %d intervals stored, then -ENOSPC; "
		    "dropped %llu, write errors %llu",
		    (unsigned long long)min_free, ok, (unsigned long long)st.dropped_for_space,
		    (unsigned long long)st.write_errors);
	prof_store__close(s);

	/* Nothing torn was left behind. */
	s = open_store(dir, 0, 0, min_free);
	prof_store__stats(s, &st);
	cr_assert_eq(st.torn_tails_truncated + st.corrupt_records + st.corrupt_segments, 0);
	cr_assert_geq(st.records, (uint64_t)ok);
	prof_store__close(s);

	umount2(dir, MNT_DETACH);
	rmdir(dir);
	free(dir);
	free(w);
}

Test(store, full_disk_under_the_floor)
{
	full_disk(1 << 20, true);
}

Test(store, full_disk_with_a_one_byte_floor)
{
	full_disk(1, false);
}

/* ---- store: size and speed of a realistic hour ------------------------------------------ */

/*
 * Sampled short-lived processes per 10 s interval. bench/agent.sh starts
 * about 30 a second (ls, sort, gzip); a few ms of CPU each at 99 Hz gets
 * one in five or so sampled, in one to three stacks.
 */
#define RP_CHURN_PER_INTERVAL 60

Test(store, realistic_hour_size_and_query_latency, .timeout = 120)
{
	struct rp_world *w = rp_world_new();
	char *dir = tmp_dir();
	struct prof_store *s = open_store(dir, 0, 0, 1);
	int64_t t0 = base_time();
	struct prof_store_stats st;
	struct prof_profile *q;
	uint64_t t_start, append_ns = 0, raw_bytes = 0, count = 0;
	double per_interval, per_day_mb, ms;
	int i;

	for (i = 0; i < 360; i++) {
		struct prof_profile *p = rp_interval(w, i + 1, t0 + i * 10 * SEC, 1980);
		struct strbuf sb = STRBUF_INIT;

		rp_add_churn(w, p, i + 1, 100000 + (uint32_t)i * RP_CHURN_PER_INTERVAL,
			     RP_CHURN_PER_INTERVAL);

		pprof_encode_raw(p, &sb);
		raw_bytes += sb.len;
		strbuf_release(&sb);
		count += p->total_count;
		t_start = now_mono_ns();
		cr_assert_eq(prof_store__append(s, p), 0);
		append_ns += now_mono_ns() - t_start;
		prof_profile__free(p);
	}
	prof_store__stats(s, &st);
	per_interval = (double)st.bytes / 360;
	per_day_mb = per_interval * 8640 / 1e6;

	t_start = now_mono_ns();
	q = query(s, t0, t0 + 3600 * SEC, NULL);
	ms = (now_mono_ns() - t_start) / 1e6;
	cr_assert_eq(q->total_count, count);
	cr_log_info("realistic hour with churn: %u distinct samples, %u locations, %llu raw pprof "
		    "bytes per interval; stored %.0f bytes/interval (%llu segments), %.1f MB/day; "
		    "append %.1f ms; 1-hour query %.1f ms (timings are not asserted)",
		    q->nsamples, q->nlocations, (unsigned long long)(raw_bytes / 360), per_interval,
		    (unsigned long long)st.segments, per_day_mb, append_ns / 360 / 1e6, ms);
	/*
	 * Issue 5's size target: under 50 MB a day on a busy 2-CPU host with
	 * churn. The bytes are a pure function of the synthetic input, so this
	 * cannot flake; the query time goes to make bench (bench/agent.sh).
	 */
	cr_assert_lt(per_day_mb, 50.0, "%.1f MB/day", per_day_mb);
	prof_profile__free(q);

	/* The same hour after a reopen (a cold index build). */
	prof_store__close(s);
	t_start = now_mono_ns();
	s = open_store(dir, 0, 0, 1);
	cr_log_info("reopen of a 1-hour store: %.1f ms", (now_mono_ns() - t_start) / 1e6);
	prof_store__close(s);
	rm_rf(dir);
	free(dir);
	free(w);
}

/* ---- store: threads ---------------------------------------------------------------------- */

struct appender {
	struct prof_store *s;
	int64_t t0;
};

static void *append_thread(void *arg)
{
	struct appender *a = arg;
	int i;

	for (i = 0; i < 200; i++) {
		struct prof_profile *p = mk_interval(a->t0 + i * 10 * SEC, 1, 1);

		if (prof_store__append(a->s, p))
			abort();
		prof_profile__free(p);
	}
	return NULL;
}

Test(store, queries_run_while_appending)
{
	char *dir = tmp_dir();
	struct appender a = {open_store(dir, 0, 8192, 1), base_time()};
	uint64_t last = 0;
	pthread_t th;
	int i;

	cr_assert_eq(pthread_create(&th, NULL, append_thread, &a), 0);
	for (i = 0; i < 200; i++) {
		struct prof_profile *q = query(a.s, a.t0, a.t0 + 3000 * SEC, NULL);

		cr_assert_eq(q->total_count % 2, 0, "alpha and beta come in pairs");
		prof_profile__free(q);
		(void)last;
	}
	pthread_join(th, NULL);
	prof_store__close(a.s);
	rm_rf(dir);
	free(dir);
}
