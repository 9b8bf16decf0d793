// SPDX-License-Identifier: MIT
/* prof_profile__with_line_names: "name (file.c:12)" frames for folded and SVG output. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../profiler/encode.h"
#include "../../profiler/profile.h"

Test(transform, line_names_in_folded_output)
{
	struct prof_profile *p = prof_profile__new(10000000), *q;
	struct prof_mapping_in m = {.start = 0x1000,
				    .limit = 0x9000,
				    .file = "/bin/app",
				    .has_functions = true,
				    .has_filenames = true,
				    .has_line_numbers = true,
				    .has_inline_frames = true};
	/* Leaf location: helper inlined into work, at work.c:40 calling helper.h:7. */
	struct prof_line_in leaf[] = {
		{.name = "helper", .file = "/src/include/helper.h", .line = 7},
		{.name = "work", .file = "/src/work.c", .line = 40},
	};
	struct prof_line_in root[] = {{.name = "main", .file = "/src/main.c", .line = 12}};
	struct prof_line_in nolines[] = {{.name = "libc_thing"}};
	struct prof_loc_in locs[] = {
		{.address = 0x1100, .mapping = &m, .lines = leaf, .nlines = 2},
		{.address = 0x1200, .mapping = &m, .lines = root, .nlines = 1},
		{.address = 0x1300, .lines = nolines, .nlines = 1},
	};
	struct prof_sample_in s = {.pid = 7,
				   .tid = 7,
				   .comm = "app",
				   .thread = "app",
				   .locs = locs,
				   .nlocs = 3,
				   .count = 5};
	struct strbuf out = STRBUF_INIT;

	prof_profile__add_sample(p, &s);
	q = prof_profile__with_line_names(p);
	cr_assert_eq(q->total_count, 5);
	cr_assert_eq(folded_encode(q, &out, 0), 0);
	cr_expect_str_eq(out.buf, "app;libc_thing;main (main.c:12);work (work.c:40);"
				  "helper (helper.h:7) 5\n");
	strbuf_release(&out);
	/* The original is untouched. */
	cr_assert_eq(folded_encode(p, &out, 0), 0);
	cr_expect_str_eq(out.buf, "app;libc_thing;main;work;helper 5\n");
	strbuf_release(&out);
	prof_profile__free(q);
	prof_profile__free(p);
}
