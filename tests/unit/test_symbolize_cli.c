// SPDX-License-Identifier: MIT
/*
 * `bpfprof symbolize -i -f -e FILE` (the CLI, addresses on stdin) against
 * `eu-addr2line -i -f -e FILE` on the same addresses. Our layout is
 * binutils addr2line's; eu-addr2line adds ":COLUMN" and an " inlined at ...
 * in ..." suffix, which are removed before comparing line by line.
 * Addresses: every 7th byte of the fixture's functions and 150 spread over
 * libc's (its DWARF comes from libc6-dbg's build-id file).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/testutil.h"

/* Text addresses of FILE's sized functions (from @symsrc's symbol table), up to @max. */
static void pick_addrs(const char *symsrc, int step, int max, struct strbuf *out)
{
	char *argv[] = {"/usr/bin/nm", "-S", "--defined-only", (char *)symsrc, NULL};
	struct strbuf nm = STRBUF_INIT;
	char *line, *save;
	int n = 0;

	cr_assert_eq(test_run(argv, &nm, NULL, 30000), 0, "nm %s", symsrc);
	for (line = strtok_r(nm.buf, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a, s;
		char t;

		if (sscanf(line, "%llx %llx %c", &a, &s, &t) != 3 || (t != 't' && t != 'T') || !s)
			continue;
		for (unsigned long long o = 0; o < s && n < max; o += step, n++)
			strbuf_addf(out, "%llx\n", a + o);
	}
	strbuf_release(&nm);
}

/* Runs the 6 words of @argv (the last may be NULL) with @in on stdin; output in @out. */
static void run_with_input(char *const argv[], const struct strbuf *in, struct strbuf *out)
{
	char path[] = "/tmp/bpfprof-cli-XXXXXX", cmd[4096];
	int fd = mkstemp(path);
	char *sh[] = {"/bin/sh", "-c", cmd, NULL};

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, in->buf, in->len), (ssize_t)in->len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "'%s' %s %s %s %s %s < '%s'", argv[0], argv[1], argv[2], argv[3],
		 argv[4], argv[5] ? argv[5] : "", path);
	cr_assert_eq(test_run(sh, out, NULL, 120000), 0, "%s failed", argv[0]);
	unlink(path);
}

static void normalize_eu(char *line)
{
	char *p = strstr(line, " inlined at ");
	char *colon;

	if (p)
		*p = '\0';
	/* "file:line:col" -> "file:line" */
	colon = strrchr(line, ':');
	if (colon && colon != line) {
		char *prev = colon - 1;

		while (prev > line && *prev >= '0' && *prev <= '9')
			prev--;
		if (*prev == ':' && colon[1] >= '0' && colon[1] <= '9')
			*colon = '\0';
	}
}

static void compare(const char *file, const char *symsrc, int step, int max)
{
	char bin[256];
	struct strbuf addrs = STRBUF_INIT, ours = STRBUF_INIT, theirs = STRBUF_INIT;
	char *a_save, *b_save, *a, *b;
	long lines = 0, same = 0;

	test_build_path("bpfprof", bin, sizeof(bin));
	pick_addrs(symsrc, step, max, &addrs);
	cr_assert_gt(addrs.len, 0);
	{
		char *ours_argv[] = {bin, "symbolize", "-i", "-f", "-e", (char *)file};
		char *eu_argv[] = {"/usr/bin/eu-addr2line", "-i", "-f", "-e", (char *)file, NULL};

		run_with_input(ours_argv, &addrs, &ours);
		run_with_input(eu_argv, &addrs, &theirs);
	}
	for (a = strtok_r(ours.buf, "\n", &a_save), b = strtok_r(theirs.buf, "\n", &b_save); a && b;
	     a = strtok_r(NULL, "\n", &a_save), b = strtok_r(NULL, "\n", &b_save)) {
		normalize_eu(b);
		lines++;
		if (!strcmp(a, b))
			same++;
		else if (lines - same <= 5)
			cr_log_info("%s: ours '%s' eu-addr2line '%s'", file, a, b);
	}
	cr_log_info("%s: %ld of %ld output lines agree", file, same, lines);
	cr_expect(a == NULL && b == NULL, "%s: the outputs have different lengths", file);
	cr_expect_geq(same * 1000, lines * 995, "%s: only %ld of %ld lines agree", file, same,
		      lines);
	strbuf_release(&addrs);
	strbuf_release(&ours);
	strbuf_release(&theirs);
}

Test(symbolize_cli, agrees_with_eu_addr2line_on_fixture)
{
	char fix[256];

	if (access("/usr/bin/eu-addr2line", X_OK))
		cr_skip_test("eu-addr2line (elfutils) is not installed");
	test_build_path("fixtures/inlines", fix, sizeof(fix));
	compare(fix, fix, 7, 150);
}

Test(symbolize_cli, agrees_with_eu_addr2line_on_libc)
{
	const char *libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
	char *argv[] = {
		"/bin/sh", "-c",
		"id=$(readelf -n /usr/lib/x86_64-linux-gnu/libc.so.6 | sed -n 's/.*Build ID: //p');"
		" echo /usr/lib/debug/.build-id/$(echo $id | cut -c1-2)/$(echo $id | cut "
		"-c3-).debug",
		NULL};
	struct strbuf dbg = STRBUF_INIT;

	if (access("/usr/bin/eu-addr2line", X_OK) || access(libc, R_OK))
		cr_skip_test("eu-addr2line or libc not found");
	cr_assert_eq(test_run(argv, &dbg, NULL, 10000), 0);
	dbg.buf[strcspn(dbg.buf, "\n")] = '\0';
	if (access(dbg.buf, R_OK))
		cr_skip_test("libc has no debug file (%s; package libc6-dbg)", dbg.buf);
	compare(libc, dbg.buf, 997, 150);
	strbuf_release(&dbg);
}
