// SPDX-License-Identifier: MIT
/*
 * Unit tests for profiler/folded.c against the known profile of
 * pprof_test_profile() (see tests/common/pprof_read.h for its content).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "profiler/encode.h"
#include "tests/common/pprof_read.h"

Test(folded, exact_text)
{
	/*
	 * Sorted by stack text; pids 100 and 200 run the same stack and add up
	 * (5 + 4); the inlined location gives two frames, outer first; ';' in a
	 * name becomes ':'; the vdso location without lines is [unknown].
	 */
	static const char want[] = "app;main;memcpy;entry_SYSCALL_64;ksys_write 2\n"
				   "app;main;std::vector<int&>::push:back;memcpy 3\n"
				   "app;main;work;inner_inlined 9\n"
				   "db;memcpy;[unknown] 1\n"
				   "swapper/0;do_idle 6\n";
	struct prof_profile *p = pprof_test_profile();
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(folded_encode(p, &sb, 0), 0);
	cr_assert_str_eq(sb.buf, want);
	strbuf_release(&sb);
	prof_profile__free(p);
}

Test(folded, with_pid)
{
	static const char want[] = "app-100;main;memcpy;entry_SYSCALL_64;ksys_write 2\n"
				   "app-100;main;std::vector<int&>::push:back;memcpy 3\n"
				   "app-100;main;work;inner_inlined 5\n"
				   "app-200;main;work;inner_inlined 4\n"
				   "db-300;memcpy;[unknown] 1\n"
				   "swapper/0-0;do_idle 6\n";
	struct prof_profile *p = pprof_test_profile();
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(folded_encode(p, &sb, FOLDED_WITH_PID), 0);
	cr_assert_str_eq(sb.buf, want);
	strbuf_release(&sb);
	prof_profile__free(p);
}

/* The same stacks through pprof: "comm;" + pprof_sample_stack() with ';' replaced. */
Test(folded, agrees_with_pprof_stacks)
{
	struct prof_profile *p = pprof_test_profile();
	struct strbuf sb = STRBUF_INIT, gz = STRBUF_INIT, line = STRBUF_INIT;
	Perftools__Profiles__Profile *pb;
	size_t i;

	cr_assert_eq(folded_encode(p, &sb, FOLDED_WITH_PID), 0);
	cr_assert_eq(pprof_encode(p, &gz), 0);
	pb = pprof_read(gz.buf, gz.len);
	cr_assert_not_null(pb);
	for (i = 0; i < pb->n_sample; i++) {
		const Perftools__Profiles__Sample *s = pb->sample[i];
		int64_t pid = -1;
		size_t start;

		cr_assert(pprof_label_num(pb, s, "pid", &pid) || pid == -1);
		strbuf_reset(&line);
		strbuf_addf(&line, "\n%s-%lld;", pprof_label_str(pb, s, "comm"),
			    (long long)(pid < 0 ? 0 : pid));
		start = line.len;
		cr_assert_eq(pprof_sample_stack(pb, s, &line), 0);
		/* pprof keeps the one ';' inside a name of the known profile; folded replaces it.
		 */
		for (; start < line.len; start++) {
			if (line.buf[start] == ';' && strncmp(line.buf + start, ";back", 5) == 0)
				line.buf[start] = ':';
		}
		strbuf_addf(&line, " %lld\n", (long long)s->value[0]);
		/* sb has no leading newline; compare from the first frame on */
		cr_assert(strstr(sb.buf, line.buf + 1), "missing %s in\n%s", line.buf + 1, sb.buf);
	}
	pprof_free(pb);
	strbuf_release(&sb);
	strbuf_release(&gz);
	strbuf_release(&line);
	prof_profile__free(p);
}

Test(folded, sanitises_names_and_keeps_zero_count_out)
{
	static const struct prof_line_in lines[] = {
		{"two\nlines", NULL, NULL, 0},
		{"semi;colon\r", NULL, NULL, 0},
	};
	static const struct prof_line_in empty[] = {{"", NULL, NULL, 0}};
	const struct prof_loc_in locs[] = {{0x10, NULL, lines, 2}, {0x20, NULL, empty, 1}};
	const struct prof_sample_in s = {1, 1, "a;b", "t", locs, 2, 7};
	const struct prof_sample_in zero = {2, 2, "z", "z", locs, 1, 0};
	struct prof_profile *p = prof_profile__new(1);
	struct strbuf sb = STRBUF_INIT;

	prof_profile__add_sample(p, &s);
	prof_profile__add_sample(p, &zero);
	cr_assert_eq(folded_encode(p, &sb, 0), 0);
	/* root first: location 0x20 ("" -> [unknown]), then the outer line of 0x10 */
	cr_assert_str_eq(sb.buf, "a:b;[unknown];semi:colon ;two lines 7\n");
	strbuf_release(&sb);
	prof_profile__free(p);
}

Test(folded, empty_profile_and_bad_flags)
{
	struct prof_profile *p = prof_profile__new(1);
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(folded_encode(p, &sb, 0), 0);
	cr_assert_eq(sb.len, 0);
	cr_assert_eq(folded_encode(p, &sb, 0x80), -EINVAL);
	strbuf_release(&sb);
	prof_profile__free(p);
}

/* profiler/format.c */
Test(format, from_path_and_dispatch)
{
	static const struct {
		const char *path;
		int fmt;
	} cases[] = {
		{"cpu.pb.gz", PROF_FMT_PPROF},
		{"/tmp/x.pprof", PROF_FMT_PPROF},
		{"out.folded", PROF_FMT_FOLDED},
		{"stacks.txt", PROF_FMT_FOLDED},
		{"cpu.svg", PROF_FMT_SVG},
		{"CPU.SVG", PROF_FMT_SVG},
		{"cpu.gz", -EINVAL},
		{"cpu", -EINVAL},
		{".svg", -EINVAL},
		{"dir/.svg", -EINVAL},
		{"", -EINVAL},
		{"cpu.svg.bak", -EINVAL},
	};
	struct prof_profile *p = pprof_test_profile();
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++)
		cr_expect_eq(prof_format_from_path(cases[i].path), cases[i].fmt, "%s",
			     cases[i].path);
	cr_assert_eq(prof_format_from_path(NULL), -EINVAL);

	cr_assert_eq(prof_encode(p, PROF_FMT_FOLDED, &a), 0);
	cr_assert_eq(folded_encode(p, &b, 0), 0);
	cr_assert_str_eq(a.buf, b.buf);
	strbuf_reset(&a);
	strbuf_reset(&b);
	cr_assert_eq(prof_encode(p, PROF_FMT_SVG, &a), 0);
	cr_assert_eq(flamegraph_encode(p, &b, NULL), 0);
	cr_assert_str_eq(a.buf, b.buf);
	strbuf_reset(&a);
	cr_assert_eq(prof_encode(p, PROF_FMT_PPROF, &a), 0);
	cr_assert_eq((unsigned char)a.buf[0], 0x1f);
	cr_assert_eq(prof_encode(p, (enum prof_format)99, &a), -EINVAL);
	strbuf_release(&a);
	strbuf_release(&b);
	prof_profile__free(p);
}
