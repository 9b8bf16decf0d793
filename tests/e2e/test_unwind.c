// SPDX-License-Identifier: MIT
/*
 * End-to-end: user stacks without frame pointers (issue 3). `bpfprof
 * record` profiles tests/fixtures/cfichains (see tests/fixtures/README.md),
 * which records its true chains with libunwind and its CPU split with
 * CLOCK_THREAD_CPUTIME_ID, and the pprof it writes is compared with them:
 *
 *   unwind/mix_chains_exact          shared library, 230-deep recursion (20 KiB
 *   unwind/stripped_eh_frame_only    of stack), three threads, a signal handler;
 *                                    the second on the .symtab-less binary:
 *     - every true chain appears, frame by frame;
 *     - >= 99 % of samples reach their root (main or the thread's function)
 *       with exactly as many frames above it as libunwind saw (libc's start
 *       code: 3 above main, 2 above a thread's function);
 *     - >= 98 % of samples are exactly a true chain;
 *     - each chain's share of samples is within 2 points of its CPU share;
 *     - the recursion shows >= 200 frames of cfi_rec.
 *   unwind/deep_recursion_truncated  1000 frames deep: >= 98 % of samples start
 *                                    with a [truncated] frame followed by >= 256
 *                                    frames that are the leaf end of the true chain.
 *   unwind/short_lived_processes     50 processes of 200 ms each, one after the
 *                                    other, recorded machine-wide: >= 49 show up,
 *                                    each with a complete stack, and >= 90 % of
 *                                    their samples are the complete chain.
 *
 * Frames are compared by name, inlined frames included (the fixture's chain
 * functions are noipa, so there are none), kernel frames left out (by their
 * mapping). "Above the root" counts physical frames (pprof Locations), so
 * libc's inlined frames do not change it. A failure names what was expected
 * and lists the most frequent offending stacks with their counts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/pprof_read.h"
#include "../common/testutil.h"

#define MIN_EXACT 0.98
#define MIN_REACH 0.99
#define SHARE_TOLERANCE_PP 2.0
#define MIN_REC_FRAMES 200
#define MIN_UNWOUND_FRAMES 256

/* ---- the truth file --------------------------------------------------------- */

struct truth {
	char who[32]; /* thread name, or pid in "short" mode */
	int above; /* frames libunwind saw above the root */
	char **frames; /* root first */
	size_t nframes;
	double cpu_ns, share;
	double samples; /* profile samples that are exactly this chain */
};

/* "<who> <above> <root;...;leaf> <cpu ns>" per line. Returns the number of chains. */
static size_t truth_read(const char *path, struct truth **out)
{
	struct strbuf sb = STRBUF_INIT;
	struct truth *t = NULL;
	size_t n = 0, cap = 0;
	double total = 0;
	char *line, *save;

	cr_assert_eq(read_file(path, &sb, 0), 0, "cannot read the truth file %s", path);
	for (line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *chain = xmalloc(strlen(line) + 1), *tok, *s2;
		struct truth *c;

		xgrow((void **)&t, &cap, n + 1, sizeof(*t));
		c = &t[n++];
		memset(c, 0, sizeof(*c));
		cr_assert_eq(sscanf(line, "%31s %d %s %lf", c->who, &c->above, chain, &c->cpu_ns),
			     4, "bad truth line: %.200s", line);
		for (tok = strtok_r(chain, ";", &s2); tok; tok = strtok_r(NULL, ";", &s2)) {
			c->frames = xrealloc(c->frames, (c->nframes + 1) * sizeof(char *));
			c->frames[c->nframes++] = xstrdup(tok);
		}
		free(chain);
		total += c->cpu_ns;
	}
	strbuf_release(&sb);
	for (size_t i = 0; i < n; i++)
		t[i].share = total > 0 ? t[i].cpu_ns / total : 0;
	*out = t;
	return n;
}

static void truth_free(struct truth *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < t[i].nframes; j++)
			free(t[i].frames[j]);
		free(t[i].frames);
	}
	free(t);
}

/* ---- a sample's user stack -------------------------------------------------- */

struct ustack {
	const char **name; /* root first: user frames (inlined ones included) and markers */
	int *phys; /* physical frame (pprof Location) index of each, root = 0 */
	size_t n;
	int64_t pid;
	double count;
};

static void ustack_of(const Perftools__Profiles__Profile *pb, const Perftools__Profiles__Sample *s,
		      struct ustack *u)
{
	size_t cap = 0;
	int phys = 0;

	u->n = 0;
	u->pid = -1;
	pprof_label_num(pb, s, "pid", &u->pid);
	u->count = s->value[0];
	for (size_t k = s->n_location_id; k > 0; k--) {
		const Perftools__Profiles__Location *loc =
			pprof_location(pb, s->location_id[k - 1]);
		const Perftools__Profiles__Mapping *m =
			loc && loc->mapping_id ? pprof_mapping(pb, loc->mapping_id) : NULL;

		if (m && !strcmp(pprof_str(pb, m->filename), "[kernel.kallsyms]"))
			continue;
		for (size_t l = loc && loc->n_line ? loc->n_line : 1; l > 0; l--) {
			const Perftools__Profiles__Function *fn =
				loc && loc->n_line
					? pprof_function(pb, loc->line[l - 1]->function_id)
					: NULL;

			if (u->n + 1 > cap) {
				cap = cap ? 2 * cap : 256;
				u->name = xrealloc(u->name, cap * sizeof(*u->name));
				u->phys = xrealloc(u->phys, cap * sizeof(*u->phys));
			}
			u->name[u->n] = fn ? pprof_str(pb, fn->name) : "[unknown]";
			u->phys[u->n++] = phys;
		}
		phys++;
	}
}

/* Root first, ';'-separated, runs written "name xN", cut to @max bytes. */
static void ustack_str(const struct ustack *u, char *out, size_t max)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < u->n && len + 1 < max;) {
		size_t j = i;

		while (j < u->n && !strcmp(u->name[j], u->name[i]))
			j++;
		if (j - i > 1)
			len += snprintf(out + len, max - len, "%s%s x%zu", i ? ";" : "", u->name[i],
					j - i);
		else
			len += snprintf(out + len, max - len, "%s%s", i ? ";" : "", u->name[i]);
		i = j;
	}
}

static void truth_str(const struct truth *t, char *out, size_t max)
{
	struct ustack u = {.name = (const char **)t->frames, .n = t->nframes};

	ustack_str(&u, out, max);
}

/* ---- the most frequent offending stacks, for failure messages --------------- */

struct offenders {
	char (*stack)[600];
	double *count;
	size_t n, cap;
};

static void offenders_add(struct offenders *o, const struct ustack *u, const char *why)
{
	char s[600], body[560];

	ustack_str(u, body, sizeof(body));
	snprintf(s, sizeof(s), "%s: %s", why, body);
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->stack[i], s)) {
			o->count[i] += u->count;
			return;
		}
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 64;
		o->stack = xrealloc(o->stack, o->cap * sizeof(*o->stack));
		o->count = xrealloc(o->count, o->cap * sizeof(*o->count));
	}
	memcpy(o->stack[o->n], s, sizeof(s));
	o->count[o->n++] = u->count;
}

/* The top @k, one per line, into @out. */
static const char *offenders_top(struct offenders *o, size_t k, char *out, size_t max)
{
	size_t len = 0;
	bool *used = calloc(o->n ? o->n : 1, sizeof(bool));

	out[0] = '\0';
	for (size_t r = 0; r < k && r < o->n; r++) {
		size_t best = o->n;

		for (size_t i = 0; i < o->n; i++)
			if (!used[i] && (best == o->n || o->count[i] > o->count[best]))
				best = i;
		used[best] = true;
		if (len < max)
			len += snprintf(out + len, max - len, "\n    %6.0f  %s", o->count[best],
					o->stack[best]);
	}
	free(used);
	return out;
}

static void offenders_free(struct offenders *o)
{
	free(o->stack);
	free(o->count);
}

/* ---- matching ----------------------------------------------------------------- */

/*
 * The root frame: the outermost frame named like a truth chain's root; -1
 * if none. *@above gets how many frames libunwind saw above that root.
 */
static long find_root(const struct ustack *u, const struct truth *t, size_t nt, int *above)
{
	for (size_t i = 0; i < u->n; i++)
		for (size_t c = 0; c < nt; c++)
			if (!strcmp(u->name[i], t[c].frames[0])) {
				*above = t[c].above;
				return (long)i;
			}
	return -1;
}

enum verdict { V_EXACT, V_WRONG_CHAIN, V_WRONG_ABOVE, V_NO_ROOT };

static const char *const verdict_name[] = {
	[V_EXACT] = "exact",
	[V_WRONG_CHAIN] = "reaches the root, not a true chain",
	[V_WRONG_ABOVE] = "wrong number of frames above the root",
	[V_NO_ROOT] = "does not reach main or a thread's function",
};

/* Which truth chain @u is exactly (in *@which), or why it is none. */
static enum verdict judge(const struct ustack *u, const struct truth *t, size_t nt, size_t *which)
{
	int above = -1;
	long r = find_root(u, t, nt, &above);

	if (r < 0)
		return V_NO_ROOT;
	if (u->phys[r] != above)
		return V_WRONG_ABOVE;
	for (size_t c = 0; c < nt; c++) {
		size_t i;

		if (u->n - r != t[c].nframes)
			continue;
		for (i = 0; i < t[c].nframes && !strcmp(u->name[r + i], t[c].frames[i]); i++)
			;
		if (i == t[c].nframes) {
			*which = c;
			return V_EXACT;
		}
	}
	return V_WRONG_CHAIN;
}

/* ---- running the fixture under bpfprof record ---------------------------- */

static void check_frameless(const char *fix, const char *fn)
{
	char arg[128];
	char *argv[] = {"/usr/bin/objdump", "-d", arg, (char *)fix, NULL};
	struct strbuf out = STRBUF_INIT;
	char head[140];

	snprintf(arg, sizeof(arg), "--disassemble=%s", fn);
	snprintf(head, sizeof(head), "<%s>:", fn);
	cr_assert_eq(test_run(argv, &out, NULL, 30000), 0, "objdump failed on %s", fix);
	cr_assert(out.buf && strstr(out.buf, head), "no %s in %s", fn, fix);
	cr_assert(!strstr(out.buf, "mov    %rsp,%rbp"),
		  "%s sets up a frame pointer: the fixture no longer tests CFI unwinding", fn);
	strbuf_release(&out);
}

/*
 * Runs @fix_argv (its stdout to @dir/stdout), records it with -p for
 * @seconds at 499 Hz into @dir/out.pb.gz, waits for both and returns the
 * decoded profile; the fixture's pid in *@pid.
 */
static Perftools__Profiles__Profile *record_pid(char *const fix_argv[], const char *dir,
						int seconds, pid_t *pid)
{
	char bin[256], out[300], so[300], pidbuf[16], secs[16];
	Perftools__Profiles__Profile *pb;
	pid_t rec;
	int st;

	test_build_path("bpfprof", bin, sizeof(bin));
	snprintf(out, sizeof(out), "%s/out.pb.gz", dir);
	snprintf(so, sizeof(so), "%s/stdout", dir);
	*pid = test_spawn(fix_argv, so, NULL);
	cr_assert_gt(*pid, 0, "cannot start %s", fix_argv[0]);
	usleep(500 * 1000);
	snprintf(pidbuf, sizeof(pidbuf), "%d", *pid);
	snprintf(secs, sizeof(secs), "%d", seconds);
	{
		char *argv[] = {bin,  "record", "-q",	"-F", "499", "-d",
				secs, "-p",	pidbuf, "-o", out,   NULL};

		rec = test_spawn(argv, NULL, NULL);
	}
	cr_assert_gt(rec, 0);
	cr_assert_eq(test_wait(rec, &st, (seconds + 60) * 1000), 0, "record did not finish");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "record failed: status %d", st);
	cr_assert_eq(test_wait(*pid, &st, 60000), 0, "fixture did not finish");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fixture %s failed: status %d",
		  fix_argv[0], st);
	pb = pprof_read_file(out);
	cr_assert_not_null(pb, "cannot decode %s", out);
	return pb;
}

/* ---- mix: library, recursion, threads, signal handler ---------------------- */

static void check_mix(const char *fixture)
{
	static const char *const frameless[] = {"cfi_rec", "mx_deep", "wk_b", "sg_loop", "sg_h1"};
	char fix[256], truth_path[300], *dir = test_tmp_dir("unwind");
	char msg[4096], want[700];
	struct offenders off = {0};
	struct ustack u = {0};
	double total = 0, exact = 0, reach = 0, verdicts[4] = {0};
	size_t max_rec = 0, nt;
	struct truth *t;
	Perftools__Profiles__Profile *pb;
	pid_t pid;

	test_require_bpf();
	/* The stripped variant is the same code; objdump finds names in the unstripped one. */
	test_build_path("fixtures/cfichains", fix, sizeof(fix));
	for (size_t i = 0; i < ARRAY_SIZE(frameless); i++)
		check_frameless(fix, frameless[i]);
	test_build_path(fixture, fix, sizeof(fix));
	snprintf(truth_path, sizeof(truth_path), "%s/truth.txt", dir);
	{
		char *argv[] = {fix, "mix", "11", truth_path, NULL};

		pb = record_pid(argv, dir, 8, &pid);
	}
	nt = truth_read(truth_path, &t);
	cr_assert_eq(nt, 5, "the truth file has %zu chains, not 5", nt);

	for (size_t i = 0; i < pb->n_sample; i++) {
		size_t which = 0, rec = 0;
		enum verdict v;

		ustack_of(pb, pb->sample[i], &u);
		cr_assert_eq(u.pid, pid, "-p %d recorded pid %lld", pid, (long long)u.pid);
		for (size_t k = 0; k < u.n; k++)
			rec += !strcmp(u.name[k], "cfi_rec");
		if (rec > max_rec)
			max_rec = rec;
		v = judge(&u, t, nt, &which);
		total += u.count;
		verdicts[v] += u.count;
		if (v == V_EXACT)
			t[which].samples += u.count;
		else
			offenders_add(&off, &u, verdict_name[v]);
	}
	exact = verdicts[V_EXACT];
	reach = verdicts[V_EXACT] + verdicts[V_WRONG_CHAIN];
	cr_assert_gt(total, 1000, "%s: only %.0f samples of the fixture", fixture, total);
	for (size_t c = 0; c < nt; c++) {
		double share = t[c].samples / total;

		truth_str(&t[c], want, sizeof(want));
		cr_log_info("%s: %-10s %-70s truth %5.1f %%  profile %5.1f %%", fixture, t[c].who,
			    want, 100 * t[c].share, 100 * share);
		cr_expect_gt(t[c].samples, 0,
			     "%s: the true chain %s (thread %s) never appears exactly (offending "
			     "stacks below)",
			     fixture, want, t[c].who);
		cr_expect_leq(fabs(100 * (share - t[c].share)), SHARE_TOLERANCE_PP,
			      "%s: chain %s has %.1f %% of samples, truth %.1f %% (tolerance %.0f "
			      "points)",
			      fixture, want, 100 * share, 100 * t[c].share, SHARE_TOLERANCE_PP);
	}
	cr_expect_geq(reach / total, MIN_REACH,
		      "%s: %.2f %% of %.0f samples reach main or a thread's function with the "
		      "right frames above it (want >= %.0f %%); most frequent offenders:%s",
		      fixture, 100 * reach / total, total, 100 * MIN_REACH,
		      offenders_top(&off, 5, msg, sizeof(msg)));
	cr_expect_geq(exact / total, MIN_EXACT,
		      "%s: %.2f %% of %.0f samples are exactly a true chain (want >= %.0f %%); "
		      "most frequent offenders:%s",
		      fixture, 100 * exact / total, total, 100 * MIN_EXACT,
		      offenders_top(&off, 5, msg, sizeof(msg)));
	cr_expect_geq(max_rec, MIN_REC_FRAMES,
		      "%s: the deepest stack has %zu frames of cfi_rec, want >= %d (the "
		      "recursion is 230 deep)",
		      fixture, max_rec, MIN_REC_FRAMES);
	free(u.name);
	free(u.phys);
	offenders_free(&off);
	truth_free(t, nt);
	pprof_free(pb);
	test_rm_tree(dir);
}

Test(unwind, mix_chains_exact, .timeout = 120)
{
	check_mix("fixtures/cfichains");
}

/*
 * The same on a binary linked with lld, whose executable segment does not
 * start on a page boundary in the file: the load bias must come from the
 * segment, not from the mapping's page offset (off by 4 KiB otherwise).
 */
Test(unwind, lld_linked_binary, .timeout = 120)
{
	char fix[256];
	char *argv[] = {"/usr/bin/readelf", "-l", "-W", fix, NULL};
	struct strbuf out = STRBUF_INIT;
	bool unaligned = false;
	char *line, *save;

	test_build_path("fixtures/cfichains-lld", fix, sizeof(fix));
	cr_assert_eq(test_run(argv, &out, NULL, 20000), 0, "readelf -l %s", fix);
	for (line = strtok_r(out.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long off;

		/* "  LOAD 0x0128a0 0x... ... R E 0x1000" */
		if (strstr(line, "LOAD") && strstr(line, " R E ") &&
		    sscanf(line, " LOAD %llx", &off) == 1 && (off & 4095))
			unaligned = true;
	}
	strbuf_release(&out);
	cr_assert(unaligned,
		  "%s: the executable segment is page-aligned in the file: the "
		  "fixture no longer tests lld's layout",
		  fix);
	check_mix("fixtures/cfichains-lld");
}

/* The same on a binary with no .symtab and no debug sections: .eh_frame alone. */
Test(unwind, stripped_eh_frame_only, .timeout = 120)
{
	char fix[256];
	char *argv[] = {"/usr/bin/readelf", "-S", "-W", fix, NULL};
	struct strbuf out = STRBUF_INIT;

	test_require_bpf();
	test_build_path("fixtures/cfichains-stripped", fix, sizeof(fix));
	cr_assert_eq(test_run(argv, &out, NULL, 30000), 0, "readelf -S %s failed", fix);
	cr_assert(strstr(out.buf, " .eh_frame ") && strstr(out.buf, " .dynsym "),
		  "%s lacks .eh_frame or .dynsym", fix);
	cr_assert(!strstr(out.buf, " .symtab ") && !strstr(out.buf, " .debug_"),
		  "%s still has .symtab or debug sections: the fixture no longer tests "
		  ".eh_frame alone",
		  fix);
	strbuf_release(&out);
	check_mix("fixtures/cfichains-stripped");
}

/* ---- deeper than the unwinder's limit ------------------------------------- */

Test(unwind, deep_recursion_truncated, .timeout = 120)
{
	char fix[256], truth_path[300], *dir = test_tmp_dir("unwind-deep");
	char msg[4096];
	struct offenders off = {0};
	struct ustack u = {0};
	double total = 0, ok = 0;
	size_t nt, min_shown = (size_t)-1;
	struct truth *t;
	Perftools__Profiles__Profile *pb;
	pid_t pid;

	test_require_bpf();
	test_build_path("fixtures/cfichains", fix, sizeof(fix));
	snprintf(truth_path, sizeof(truth_path), "%s/truth.txt", dir);
	{
		char *argv[] = {fix, "deep", "6", truth_path, "1000", NULL};

		pb = record_pid(argv, dir, 4, &pid);
	}
	nt = truth_read(truth_path, &t);
	cr_assert_eq(nt, 1);
	cr_assert_gt(t[0].nframes, 1000, "the truth chain has only %zu frames", t[0].nframes);
	for (size_t i = 0; i < pb->n_sample; i++) {
		const char *why = NULL;
		size_t shown, k;

		ustack_of(pb, pb->sample[i], &u);
		total += u.count;
		shown = u.n ? u.n - 1 : 0;
		if (!u.n || strcmp(u.name[0], "[truncated]")) {
			why = "no [truncated] frame at the root";
		} else if (shown < MIN_UNWOUND_FRAMES || shown > t[0].nframes) {
			why = "wrong number of frames below [truncated]";
		} else {
			/* Below the marker: the leaf end of the true chain, frame by frame. */
			for (k = 0; k < shown &&
				    !strcmp(u.name[1 + k], t[0].frames[t[0].nframes - shown + k]);
			     k++)
				;
			if (k < shown)
				why = "frames below [truncated] are not the true chain";
		}
		if (why) {
			offenders_add(&off, &u, why);
			continue;
		}
		ok += u.count;
		if (shown < min_shown)
			min_shown = shown;
	}
	cr_assert_gt(total, 300, "only %.0f samples of the fixture", total);
	cr_log_info("deep: %.0f of %.0f samples truncated correctly, at least %zu frames shown", ok,
		    total, min_shown == (size_t)-1 ? 0 : min_shown);
	cr_expect_geq(ok / total, MIN_EXACT,
		      "recursion 1000 deep: %.2f %% of %.0f samples are [truncated] followed by >= "
		      "%d frames of the true chain's leaf end (want >= %.0f %%); most frequent "
		      "offenders:%s",
		      100 * ok / total, total, MIN_UNWOUND_FRAMES, 100 * MIN_EXACT,
		      offenders_top(&off, 5, msg, sizeof(msg)));
	free(u.name);
	free(u.phys);
	offenders_free(&off);
	truth_free(t, nt);
	pprof_free(pb);
	test_rm_tree(dir);
}

/* ---- short-lived processes --------------------------------------------------- */

#define SHORT_COUNT 50
#define SHORT_MS "200"
#define SHORT_MIN_SEEN 49
#define SHORT_MIN_COMPLETE 0.90

Test(unwind, short_lived_processes, .timeout = 180)
{
	char bin[256], fix[256], out[300], truth_path[300], *dir = test_tmp_dir("unwind-short");
	char msg[4096], want[200];
	struct offenders off = {0};
	struct ustack u = {0};
	double total = 0, complete = 0, per_total[SHORT_COUNT] = {0},
	       per_complete[SHORT_COUNT] = {0};
	int seen = 0, with_complete = 0, nmissing = 0, st;
	size_t nt;
	struct truth *t;
	Perftools__Profiles__Profile *pb;
	pid_t rec, drv;
	struct strbuf missing = STRBUF_INIT;

	test_require_bpf();
	test_build_path("bpfprof", bin, sizeof(bin));
	test_build_path("fixtures/cfichains", fix, sizeof(fix));
	snprintf(out, sizeof(out), "%s/out.pb.gz", dir);
	snprintf(truth_path, sizeof(truth_path), "%s/truth.txt", dir);
	{
		/* Machine-wide: the processes do not exist yet. Stopped with SIGINT. */
		char *argv[] = {bin, "record", "-q", "-F", "499", "-d", "120", "-o", out, NULL};

		rec = test_spawn(argv, NULL, NULL);
		cr_assert_gt(rec, 0);
	}
	sleep(2);
	{
		char *argv[] = {fix, "short", "50", SHORT_MS, truth_path, NULL};

		drv = test_spawn(argv, "/dev/null", NULL);
		cr_assert_gt(drv, 0);
	}
	cr_assert_eq(test_wait(drv, &st, 90000), 0, "the short-lived process driver hung");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "driver failed: status %d", st);
	usleep(300 * 1000);
	kill(rec, SIGINT);
	cr_assert_eq(test_wait(rec, &st, 30000), 0, "record did not stop on SIGINT");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "record failed: status %d", st);
	nt = truth_read(truth_path, &t);
	cr_assert_eq(nt, SHORT_COUNT, "the truth file has %zu processes", nt);
	truth_str(&t[0], want, sizeof(want));
	pb = pprof_read_file(out);
	cr_assert_not_null(pb, "cannot decode %s", out);

	for (size_t i = 0; i < pb->n_sample; i++) {
		size_t which = 0, p;
		enum verdict v;

		ustack_of(pb, pb->sample[i], &u);
		for (p = 0; p < nt && atoll(t[p].who) != u.pid; p++)
			;
		if (p == nt)
			continue;
		/* Every process has the same chain: judge against the first one. */
		v = judge(&u, t, 1, &which);
		total += u.count;
		per_total[p] += u.count;
		if (v == V_EXACT) {
			complete += u.count;
			per_complete[p] += u.count;
		} else {
			offenders_add(&off, &u, verdict_name[v]);
		}
	}
	for (size_t p = 0; p < nt; p++) {
		seen += per_total[p] > 0;
		with_complete += per_complete[p] > 0;
		if (per_complete[p] == 0 && nmissing++ < 10)
			strbuf_addf(&missing, " pid %s (%.0f samples)", t[p].who, per_total[p]);
	}
	cr_log_info("short-lived: %d of %zu processes seen, %d with a complete stack, %.0f of "
		    "%.0f samples complete",
		    seen, nt, with_complete, complete, total);
	cr_assert_gt(total, 0, "no sample of the %zu short-lived processes", nt);
	cr_expect_geq(seen, SHORT_MIN_SEEN,
		      "only %d of %zu processes of 200 ms appear (want >= %d)", seen, nt,
		      SHORT_MIN_SEEN);
	cr_expect_geq(with_complete, SHORT_MIN_SEEN,
		      "only %d of %zu processes have a sample with the complete chain %s (want >= "
		      "%d); without one (first 10 of %d):%s",
		      with_complete, nt, want, SHORT_MIN_SEEN, nmissing,
		      missing.buf ? missing.buf : "");
	cr_expect_geq(complete / total, SHORT_MIN_COMPLETE,
		      "%.2f %% of %.0f samples of the short-lived processes are the complete "
		      "chain %s (want >= %.0f %%); most frequent offenders:%s",
		      100 * complete / total, total, want, 100 * SHORT_MIN_COMPLETE,
		      offenders_top(&off, 5, msg, sizeof(msg)));
	strbuf_release(&missing);
	free(u.name);
	free(u.phys);
	offenders_free(&off);
	truth_free(t, nt);
	pprof_free(pb);
	test_rm_tree(dir);
}
