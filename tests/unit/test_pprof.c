// SPDX-License-Identifier: MIT
/*
 * Unit tests for profiler/pprof.c: encode the known profile of
 * pprof_test_profile(), decode it with protobuf-c and compare every field
 * with what was put in; then let `go tool pprof` read the file.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "profiler/encode.h"
#include "profiler/pprof_decode.h"
#include "tests/common/pprof_read.h"

#define PERIOD 10101010LL

static Perftools__Profiles__Profile *encode_decode(const struct prof_profile *p)
{
	struct strbuf sb = STRBUF_INIT;
	Perftools__Profiles__Profile *pb;

	cr_assert_eq(pprof_encode(p, &sb), 0);
	cr_assert_gt(sb.len, 2);
	/* gzip magic (RFC 1952 section 2.3.1) */
	cr_assert_eq((unsigned char)sb.buf[0], 0x1f);
	cr_assert_eq((unsigned char)sb.buf[1], 0x8b);
	pb = pprof_read(sb.buf, sb.len);
	cr_assert_not_null(pb);
	strbuf_release(&sb);
	return pb;
}

static void assert_str(const Perftools__Profiles__Profile *pb, int64_t idx, const char *want)
{
	const char *got = pprof_str(pb, idx);

	cr_assert_not_null(got, "string index %lld out of range", (long long)idx);
	cr_assert_str_eq(got, want);
}

Test(pprof, header_fields)
{
	struct prof_profile *p = pprof_test_profile();
	Perftools__Profiles__Profile *pb = encode_decode(p);
	char err[256] = "";

	cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), 0, "%s", err);
	cr_assert_geq(pb->n_string_table, 1);
	cr_assert_str_eq(pb->string_table[0], "");
	cr_assert_eq(pb->n_sample_type, 2);
	assert_str(pb, pb->sample_type[0]->type, "samples");
	assert_str(pb, pb->sample_type[0]->unit, "count");
	assert_str(pb, pb->sample_type[1]->type, "cpu");
	assert_str(pb, pb->sample_type[1]->unit, "nanoseconds");
	cr_assert_not_null(pb->period_type);
	assert_str(pb, pb->period_type->type, "cpu");
	assert_str(pb, pb->period_type->unit, "nanoseconds");
	cr_assert_eq(pb->period, PERIOD);
	cr_assert_eq(pb->time_nanos, 1700000000000000000LL);
	cr_assert_eq(pb->duration_nanos, 10000000000LL);
	assert_str(pb, pb->default_sample_type, "cpu");
	cr_assert_eq(pprof_value_index(pb, "cpu", "nanoseconds"), 1);
	pprof_free(pb);
	prof_profile__free(p);
}

Test(pprof, mappings_match_input)
{
	static const struct {
		uint64_t start, limit, offset;
		const char *file, *build_id;
		bool fn, fl, ln, inl;
	} want[] = {
		{0x400000, 0x500000, 0, "/usr/bin/app", "aabbccdd00112233aabbccdd00112233aabbccdd",
		 true, true, true, true},
		{0x7f0000000000, 0x7f0000200000, 0x28000, "/usr/lib/x86_64-linux-gnu/libc.so.6",
		 "0123456789abcdef0123456789abcdef01234567", true, false, false, false},
		{0xffffffff81000000, 0xffffffff83000000, 0, "[kernel.kallsyms]", "", true, false,
		 false, false},
		{0x7ffd00000000, 0x7ffd00002000, 0, "[vdso]", "", false, false, false, false},
	};
	struct prof_profile *p = pprof_test_profile();
	Perftools__Profiles__Profile *pb = encode_decode(p);
	size_t i;

	cr_assert_eq(pb->n_mapping, ARRAY_SIZE(want));
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		const Perftools__Profiles__Mapping *m = pb->mapping[i];

		cr_assert_eq(m->id, i + 1);
		cr_assert_eq(m->memory_start, want[i].start, "mapping %zu", i);
		cr_assert_eq(m->memory_limit, want[i].limit, "mapping %zu", i);
		cr_assert_eq(m->file_offset, want[i].offset, "mapping %zu", i);
		assert_str(pb, m->filename, want[i].file);
		assert_str(pb, m->build_id, want[i].build_id);
		cr_assert_eq(!!m->has_functions, want[i].fn, "mapping %zu", i);
		cr_assert_eq(!!m->has_filenames, want[i].fl, "mapping %zu", i);
		cr_assert_eq(!!m->has_line_numbers, want[i].ln, "mapping %zu", i);
		cr_assert_eq(!!m->has_inline_frames, want[i].inl, "mapping %zu", i);
		/* and the same as the in-memory profile (ids differ: the fixed strings come first)
		 */
		cr_assert_str_eq(pprof_str(pb, m->filename), prof_str(p, p->mappings[i].filename));
		cr_assert_str_eq(pprof_str(pb, m->build_id), prof_str(p, p->mappings[i].build_id));
	}
	pprof_free(pb);
	prof_profile__free(p);
}

Test(pprof, functions_and_locations_match_input)
{
	struct prof_profile *p = pprof_test_profile();
	Perftools__Profiles__Profile *pb = encode_decode(p);
	const Perftools__Profiles__Location *inl = NULL;
	size_t i, j;

	cr_assert_eq(pb->n_function, p->nfunctions);
	for (i = 0; i < pb->n_function; i++) {
		const Perftools__Profiles__Function *f = pb->function[i];
		const struct prof_function *pf = &p->functions[i];

		cr_assert_eq(f->id, i + 1);
		assert_str(pb, f->name, prof_str(p, pf->name));
		assert_str(pb, f->system_name, prof_str(p, pf->system_name));
		assert_str(pb, f->filename, prof_str(p, pf->filename));
		cr_assert_eq(f->start_line, pf->start_line);
		if (strcmp(prof_str(p, pf->name), "std::vector<int&>::push;back") == 0)
			assert_str(pb, f->system_name, "_ZNSt6vectorIRiE4pushEv");
	}

	cr_assert_eq(pb->n_location, 8);
	cr_assert_eq(pb->n_location, p->nlocations);
	for (i = 0; i < pb->n_location; i++) {
		const Perftools__Profiles__Location *l = pb->location[i];
		const struct prof_location *pl = &p->locations[i];

		cr_assert_eq(l->id, i + 1);
		cr_assert_eq(l->mapping_id, pl->mapping);
		cr_assert_eq(l->address, pl->address);
		cr_assert_eq(l->n_line, pl->nlines);
		for (j = 0; j < l->n_line; j++) {
			cr_assert_eq(l->line[j]->function_id,
				     p->lines[pl->line_start + j].function);
			cr_assert_eq(l->line[j]->line, p->lines[pl->line_start + j].line);
		}
		if (l->address == 0x401234)
			inl = l;
	}
	/* The inlined location: two lines, innermost first, both in /usr/bin/app. */
	cr_assert_not_null(inl);
	cr_assert_eq(inl->n_line, 2);
	assert_str(pb, pprof_function(pb, inl->line[0]->function_id)->name, "inner_inlined");
	cr_assert_eq(inl->line[0]->line, 42);
	assert_str(pb, pprof_function(pb, inl->line[1]->function_id)->name, "work");
	cr_assert_eq(inl->line[1]->line, 30);
	assert_str(pb, pprof_function(pb, inl->line[1]->function_id)->filename, "app.c");
	assert_str(pb, pprof_mapping(pb, inl->mapping_id)->filename, "/usr/bin/app");
	pprof_free(pb);
	prof_profile__free(p);
}

Test(pprof, samples_values_and_labels)
{
	static const struct {
		int64_t pid, tid;
		const char *comm, *thread, *stack, *leaf_mapping;
		int64_t count;
	} want[] = {
		{100, 100, "app", "app", "main;work;inner_inlined", "/usr/bin/app", 5},
		{100, 101, "app", "worker", "main;std::vector<int&>::push;back;memcpy",
		 "/usr/lib/x86_64-linux-gnu/libc.so.6", 3},
		{100, 101, "app", "worker", "main;memcpy;entry_SYSCALL_64;ksys_write",
		 "[kernel.kallsyms]", 2},
		{200, 200, "app", "app", "main;work;inner_inlined", "/usr/bin/app", 4},
		{300, 300, "db", "db-io", "memcpy;[unknown]", "[vdso]", 1},
		{0, 0, "swapper/0", "swapper/0", "do_idle", "[kernel.kallsyms]", 6},
	};
	struct prof_profile *p = pprof_test_profile();
	Perftools__Profiles__Profile *pb = encode_decode(p);
	struct strbuf stack = STRBUF_INIT;
	int64_t sum = 0;
	size_t i, j;

	cr_assert_eq(pb->n_sample, ARRAY_SIZE(want));
	for (i = 0; i < pb->n_sample; i++) {
		const Perftools__Profiles__Sample *s = pb->sample[i];
		const struct prof_sample *ps = &p->samples[i];
		int64_t v;

		cr_assert_eq(s->n_value, 2);
		cr_assert_eq(s->value[0], want[i].count, "sample %zu", i);
		cr_assert_eq(s->value[1], want[i].count * PERIOD, "sample %zu", i);
		sum += s->value[0];

		cr_assert_str_eq(pprof_label_str(pb, s, "comm"), want[i].comm);
		cr_assert_str_eq(pprof_label_str(pb, s, "thread"), want[i].thread);
		cr_assert(pprof_label_num(pb, s, "pid", &v));
		cr_assert_eq(v, want[i].pid);
		cr_assert(pprof_label_num(pb, s, "tid", &v));
		cr_assert_eq(v, want[i].tid);

		strbuf_reset(&stack);
		cr_assert_eq(pprof_sample_stack(pb, s, &stack), 0);
		cr_assert_str_eq(stack.buf, want[i].stack);
		/* leaf first */
		assert_str(pb,
			   pprof_mapping(pb, pprof_location(pb, s->location_id[0])->mapping_id)
				   ->filename,
			   want[i].leaf_mapping);
		cr_assert_eq(s->n_location_id, ps->nlocs);
		for (j = 0; j < s->n_location_id; j++)
			cr_assert_eq(s->location_id[j], p->sample_locs[ps->loc_start + j]);
	}
	cr_assert_eq(sum, 21);
	cr_assert_eq((uint64_t)sum, p->total_count);
	strbuf_release(&stack);
	pprof_free(pb);
	prof_profile__free(p);
}

Test(pprof, raw_is_the_gunzipped_gzip)
{
	struct prof_profile *p = pprof_test_profile();
	struct strbuf gz = STRBUF_INIT, raw = STRBUF_INIT, unz = STRBUF_INIT;
	Perftools__Profiles__Profile *pb;

	cr_assert_eq(pprof_encode(p, &gz), 0);
	cr_assert_eq(pprof_encode_raw(p, &raw), 0);
	cr_assert_eq(pprof_gunzip(gz.buf, gz.len, &unz), 0);
	cr_assert_eq(unz.len, raw.len);
	cr_assert(memcmp(unz.buf, raw.buf, raw.len) == 0);
	pb = pprof_read(raw.buf, raw.len);
	cr_assert_not_null(pb);
	cr_assert_eq(pb->n_sample, 6);
	pprof_free(pb);
	strbuf_release(&gz);
	strbuf_release(&raw);
	strbuf_release(&unz);
	prof_profile__free(p);
}

Test(pprof, appends_to_existing_buffer)
{
	struct prof_profile *p = pprof_test_profile();
	struct strbuf sb = STRBUF_INIT;
	Perftools__Profiles__Profile *pb;

	strbuf_adds(&sb, "prefix");
	cr_assert_eq(pprof_encode(p, &sb), 0);
	cr_assert(memcmp(sb.buf, "prefix", 6) == 0);
	pb = pprof_read(sb.buf + 6, sb.len - 6);
	cr_assert_not_null(pb);
	pprof_free(pb);
	strbuf_release(&sb);
	prof_profile__free(p);
}

Test(pprof, empty_profile)
{
	struct prof_profile *p = prof_profile__new(PERIOD);
	Perftools__Profiles__Profile *pb = encode_decode(p);
	char err[256] = "";

	cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pb->n_sample, 0);
	cr_assert_eq(pb->n_mapping, 0);
	cr_assert_str_eq(pb->string_table[0], "");
	cr_assert_eq(pb->period, PERIOD);
	pprof_free(pb);
	prof_profile__free(p);
}

/* The validator must be able to fail, or the tests that rely on it prove nothing. */
Test(pprof, check_ids_rejects_broken_profiles)
{
	struct prof_profile *p = pprof_test_profile();
	Perftools__Profiles__Profile *pb;
	char err[256];
	uint64_t saved;
	char *s0;

	pb = encode_decode(p);
	saved = pb->mapping[1]->id;
	pb->mapping[1]->id = 7;
	cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "mapping[1]"), "%s", err);
	pb->mapping[1]->id = saved;

	saved = pb->location[0]->line[0]->function_id;
	pb->location[0]->line[0]->function_id = pb->n_function + 1;
	cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), -EINVAL);
	pb->location[0]->line[0]->function_id = saved;

	saved = pb->sample[0]->location_id[0];
	pb->sample[0]->location_id[0] = 0;
	cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), -EINVAL);
	pb->sample[0]->location_id[0] = saved;

	saved = pb->function[0]->name;
	pb->function[0]->name = pb->n_string_table;
	cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), -EINVAL);
	pb->function[0]->name = saved;

	s0 = pb->string_table[0];
	pb->string_table[0] = pb->string_table[1];
	cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), -EINVAL);
	pb->string_table[0] = s0;

	cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), 0, "%s", err);
	pprof_free(pb);
	prof_profile__free(p);
}

Test(pprof, read_rejects_garbage)
{
	static const unsigned char truncated_gzip[] = {0x1f, 0x8b, 0x08, 0x00, 0x00};
	static const char junk[] = "\xff\xff\xff\xff\xff\xff";

	cr_assert_null(pprof_read(truncated_gzip, sizeof(truncated_gzip)));
	cr_assert_null(pprof_read(junk, sizeof(junk) - 1));
	cr_assert_null(pprof_read_file("/nonexistent/profile.pb.gz"));
}

/* ---- go tool pprof ----------------------------------------------------------- */

static bool have_go(void)
{
	return access("/usr/bin/go", X_OK) == 0 || system("command -v go >/dev/null 2>&1") == 0;
}

/*
 * Runs `go tool pprof ARG FILE` with a private HOME/GOCACHE/GOPATH/PPROF_TMPDIR
 * in @dir; stdout and stderr go to files there. Returns the exit status.
 */
static int run_pprof(const char *dir, const char *arg, const char *file, struct strbuf *out,
		     struct strbuf *errout)
{
	struct strbuf o = STRBUF_INIT, e = STRBUF_INIT;
	int status;
	pid_t pid;

	strbuf_addf(&o, "%s/stdout", dir);
	strbuf_addf(&e, "%s/stderr", dir);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fo = open(o.buf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(e.buf, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fo < 0 || fe < 0)
			_exit(126);
		dup2(fo, 1);
		dup2(fe, 2);
		setenv("HOME", dir, 1);
		setenv("GOCACHE", dir, 1);
		setenv("GOPATH", dir, 1);
		setenv("PPROF_TMPDIR", dir, 1);
		setenv("GOFLAGS", "", 1);
		execlp("go", "go", "tool", "pprof", arg, file, (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(read_file(o.buf, out, 0), 0);
	cr_assert_eq(read_file(e.buf, errout, 0), 0);
	strbuf_release(&o);
	strbuf_release(&e);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

Test(pprof, go_tool_pprof_reads_it_silently, .timeout = 120)
{
	char dir[] = "/tmp/bpfprof-pprof-XXXXXX";
	struct strbuf file = STRBUF_INIT, sb = STRBUF_INIT, out = STRBUF_INIT, err = STRBUF_INIT;
	struct prof_profile *p;
	int rc;

	if (!have_go())
		cr_skip_test("go is not installed (apt-get install golang-go)");
	cr_assert_not_null(mkdtemp(dir));
	p = pprof_test_profile();
	cr_assert_eq(pprof_encode(p, &sb), 0);
	strbuf_addf(&file, "%s/cpu.pb.gz", dir);
	cr_assert_eq(write_file(file.buf, sb.buf, sb.len), 0);

	rc = run_pprof(dir, "-raw", file.buf, &out, &err);
	cr_assert_eq(rc, 0, "go tool pprof -raw: exit %d: %s", rc, err.buf);
	cr_assert_eq(err.len, 0, "go tool pprof -raw wrote to stderr: %s", err.buf);
	cr_assert(strstr(out.buf, "PeriodType: cpu nanoseconds"), "%s", out.buf);
	cr_assert(strstr(out.buf, "Period: 10101010"), "%s", out.buf);
	cr_assert(strstr(out.buf, "samples/count cpu/nanoseconds"), "%s", out.buf);
	cr_assert(strstr(out.buf, "5   50505050:"), "%s", out.buf);
	cr_assert(strstr(out.buf, "inner_inlined app.c:42"), "%s", out.buf);
	cr_assert(strstr(out.buf, "[kernel.kallsyms]"), "%s", out.buf);
	cr_assert(strstr(out.buf, "aabbccdd00112233aabbccdd00112233aabbccdd"), "%s", out.buf);

	strbuf_reset(&out);
	strbuf_reset(&err);
	rc = run_pprof(dir, "-top", file.buf, &out, &err);
	cr_assert_eq(rc, 0, "go tool pprof -top: exit %d: %s", rc, err.buf);
	cr_assert_eq(err.len, 0, "go tool pprof -top wrote to stderr: %s", err.buf);
	/* default_sample_type makes -top show cpu time: 21 samples * 10.10101 ms */
	cr_assert(strstr(out.buf, "Type: cpu"), "%s", out.buf);
	cr_assert(strstr(out.buf, "212.12ms total"), "%s", out.buf);
	cr_assert(strstr(out.buf, "inner_inlined"), "%s", out.buf);
	cr_assert(strstr(out.buf, "do_idle"), "%s", out.buf);

	strbuf_reset(&file);
	strbuf_release(&sb);
	strbuf_release(&out);
	strbuf_release(&err);
	prof_profile__free(p);
	strbuf_addf(&file, "rm -rf '%s'", dir);
	cr_assert_eq(system(file.buf), 0);
	strbuf_release(&file);
}

/* ---- container ids: label, round trip, filters ------------------------------ */

#define CID "3f1c2a7b9d8e4f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718"

/* pid 7 in container CID (5 samples), pid 8 on the host (3 samples), same stack. */
static struct prof_profile *container_profile(void)
{
	static const struct prof_line_in line = {.name = "spin"};
	static const struct prof_loc_in loc = {0x1000, NULL, &line, 1};
	struct prof_profile *p = prof_profile__new(PERIOD);
	struct prof_sample_in in = {7, 7, "app", "app", &loc, 1, 5, CID};

	prof_profile__add_sample(p, &in);
	in = (struct prof_sample_in){8, 8, "app", "app", &loc, 1, 3, NULL};
	prof_profile__add_sample(p, &in);
	return p;
}

Test(pprof, container_id_label_only_on_container_samples)
{
	struct prof_profile *p = container_profile(), *d = NULL;
	Perftools__Profiles__Profile *pb = encode_decode(p);
	struct strbuf sb = STRBUF_INIT;
	int64_t pid;

	cr_assert_eq(pb->n_sample, 2);
	for (size_t i = 0; i < pb->n_sample; i++) {
		const char *cid = pprof_label_str(pb, pb->sample[i], "container_id");

		cr_assert(pprof_label_num(pb, pb->sample[i], "pid", &pid));
		if (pid == 7)
			cr_assert_str_eq(cid ? cid : "(none)", CID);
		else
			cr_assert_null(cid, "host process got container_id %s", cid);
	}
	/* ... and it survives decoding (the store keeps intervals as pprof). */
	cr_assert_eq(pprof_encode_raw(p, &sb), 0);
	cr_assert_eq(pprof_decode(sb.buf, sb.len, &d), 0);
	cr_assert_eq(d->nsamples, 2);
	for (uint32_t i = 0; i < d->nsamples; i++)
		cr_assert_str_eq(prof_str(d, d->samples[i].container),
				 d->samples[i].pid == 7 ? CID : "");
	prof_profile__free(d);
	strbuf_release(&sb);
	pprof_free(pb);
	prof_profile__free(p);
}

Test(pprof, container_filter_on_decode_and_on_profiles)
{
	static const struct {
		const char *container;
		uint64_t want;
	} cases[] = {
		{NULL, 8},	     {CID, 5},
		{"3f1c2a7b9d8e", 5}, /* the 12-digit short id */
		{"3f1c2a7b9d8f", 0}, {"0123456789ab", 0},
	};
	struct prof_profile *p = container_profile();
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(pprof_encode_raw(p, &sb), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct pprof_decode_filter df = {.container = cases[i].container};
		struct prof_filter pf = {.container = cases[i].container};
		struct prof_profile *d = prof_profile__new(0), *f;

		cr_assert_eq(pprof_decode_into(sb.buf, sb.len, &df, d), 0);
		cr_expect_eq(d->total_count, cases[i].want, "decode, case %zu", i);
		f = prof_profile__filter_by(p, &pf);
		cr_expect_eq(f->total_count, cases[i].want, "filter_by, case %zu", i);
		prof_profile__free(f);
		prof_profile__free(d);
	}
	strbuf_release(&sb);
	prof_profile__free(p);
}

Test(pprof, container_filter_values)
{
	cr_assert(prof_filter_container_ok(CID));
	cr_assert(prof_filter_container_ok("3f1c2a7b9d8e"));
	cr_assert_not(prof_filter_container_ok("3f1c2a7b9d8"), "11 digits");
	cr_assert_not(prof_filter_container_ok(CID "0"), "65 digits");
	cr_assert_not(prof_filter_container_ok("3F1C2A7B9D8E"), "uppercase");
	cr_assert_not(prof_filter_container_ok("docker-3f1c2a7b9d8e"));
	cr_assert_not(prof_filter_container_ok(""));
	cr_assert_not(prof_filter_container_ok(NULL));
}
