// SPDX-License-Identifier: MIT
/*
 * Unit tests for symbolizer/perfmap.c and symbolizer/vdso.c: JIT perf maps
 * from canned text (checked against a brute-force "newest covering entry"
 * oracle), their growth, replacement and bounds; and the vDSO's symbols
 * checked against glibc's own view of it (dlsym) and against readelf.
 */
#include <criterion/criterion.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "symbolizer/symbolizer.h"
#include "tests/common/testutil.h"

/* ---- helpers ---------------------------------------------------------------- */

struct tmp {
	char dir[64];
	char path[PATH_MAX]; /* dir/perf.map */
};

static void tmp_make(struct tmp *t)
{
	strcpy(t->dir, "/tmp/bpfprof-perfmap-XXXXXX");
	cr_assert_not_null(mkdtemp(t->dir), "mkdtemp: %s", strerror(errno));
	snprintf(t->path, sizeof(t->path), "%s/perf.map", t->dir);
}

static void tmp_remove(struct tmp *t)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	cr_assert_eq(system(cmd), 0);
}

static void put_bytes(const char *path, const char *flags, const void *buf, size_t len)
{
	FILE *f = fopen(path, flags);

	cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static void put_text(const char *path, const char *flags, const char *text)
{
	put_bytes(path, flags, text, strlen(text));
}

static struct sym_perfmap *load_text(struct tmp *t, const char *text)
{
	struct sym_perfmap *m;

	tmp_make(t);
	put_text(t->path, "w", text);
	m = sym_perfmap__load(t->path);
	cr_assert_not_null(m, "load %s: %s", t->path, strerror(errno));
	return m;
}

struct probe {
	uint64_t addr;
	const char *name; /* NULL: no entry covers it */
	uint64_t start;
};

static void check_probes(const struct sym_perfmap *m, const struct probe *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t start = 0xdead;
		const char *name = sym_perfmap__lookup(m, p[i].addr, &start);

		if (!p[i].name) {
			cr_expect_null(name, "0x%" PRIx64 ": expected nothing, got '%s'", p[i].addr,
				       name);
			continue;
		}
		cr_expect_not_null(name, "0x%" PRIx64 ": expected '%s', got nothing", p[i].addr,
				   p[i].name);
		if (!name)
			continue;
		cr_expect_str_eq(name, p[i].name, "0x%" PRIx64, p[i].addr);
		cr_expect_eq(start, p[i].start, "0x%" PRIx64 ": start 0x%" PRIx64 " != 0x%" PRIx64,
			     p[i].addr, start, p[i].start);
	}
}

/* ---- perf maps ---------------------------------------------------------------- */

Test(perfmap, formats_and_boundaries)
{
	static const char text[] =
		"7f0000001000 40 LazyCompile:~main /app/index.js:1\n"
		"0x7f0000002000 0x10 Interpreter: stub\n"
		"7F0000003000\t8\tJava: void Foo.bar(int, java.lang.String)  \r\n"
		"  7f0000004000   1   trailing spaces are trimmed   \n"
		"ffffffffffffff00 ff at_the_top\n"; /* up to 2^64 - 1, excluded */
	static const struct probe probes[] = {
		{0x7f0000000fff, NULL, 0},
		{0x7f0000001000, "LazyCompile:~main /app/index.js:1", 0x7f0000001000},
		{0x7f000000103f, "LazyCompile:~main /app/index.js:1", 0x7f0000001000},
		{0x7f0000001040, NULL, 0},
		{0x7f0000002000, "Interpreter: stub", 0x7f0000002000},
		{0x7f000000200f, "Interpreter: stub", 0x7f0000002000},
		{0x7f0000002010, NULL, 0},
		{0x7f0000003007, "Java: void Foo.bar(int, java.lang.String)", 0x7f0000003000},
		{0x7f0000003008, NULL, 0},
		{0x7f0000004000, "trailing spaces are trimmed", 0x7f0000004000},
		{0x7f0000004001, NULL, 0},
		{0xffffffffffffff00, "at_the_top", 0xffffffffffffff00},
		{0xfffffffffffffffe, "at_the_top", 0xffffffffffffff00},
		{0xffffffffffffffff, NULL, 0},
		{0, NULL, 0},
	};
	struct tmp t;
	struct sym_perfmap *m = load_text(&t, text);

	cr_expect_eq(sym_perfmap__count(m), 5);
	cr_expect_eq(sym_perfmap__nbad(m), 0);
	check_probes(m, probes, ARRAY_SIZE(probes));
	cr_expect_gt(sym_perfmap__bytes(m), 5 * 24);
	sym_perfmap__free(m);
	tmp_remove(&t);
}

Test(perfmap, malformed_lines_counted)
{
	char text[3 * SYM_PERFMAP_LINE_MAX];
	struct tmp t;
	struct sym_perfmap *m;
	size_t len;
	static const char *const bad[] = {
		"", /* empty */
		"zz 10 not_hex", /* start is not hex */
		"1000 10", /* no name */
		"1000 10    ", /* only blanks for a name */
		"1000", /* start only */
		"0x 10 bare_prefix", /* "0x" without digits */
		"1000 0 zero_size", /* covers no byte */
		"ffffffffffffffff 2 wraps", /* past 2^64 */
		"10000000000000000 1 too_wide", /* 17 digits */
		"1000 10name_glued", /* size runs into the name */
		"1000-10 dash", /* not blank-separated */
	};
	static const struct probe probes[] = {
		{0x5000, "good_one", 0x5000},
		{0x6000, "good after the NUL line", 0x6000},
		{0x7000, "good after the overlong line", 0x7000},
		{0x1000, NULL, 0},
	};

	len = 0;
	len += (size_t)sprintf(text + len, "5000 10 good_one\n");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		len += (size_t)sprintf(text + len, "%s\n", bad[i]);
	memcpy(text + len, "1000 10 with\0nul\n", 17); /* a NUL inside a line */
	len += 17;
	len += (size_t)sprintf(text + len, "6000 10 good after the NUL line\n");
	len += (size_t)sprintf(text + len, "2000 10 ");
	memset(text + len, 'x', SYM_PERFMAP_LINE_MAX); /* the line is over the limit */
	len += SYM_PERFMAP_LINE_MAX;
	len += (size_t)sprintf(text + len, "\n7000 10 good after the overlong line\n");

	tmp_make(&t);
	put_bytes(t.path, "w", text, len);
	m = sym_perfmap__load(t.path);
	cr_assert_not_null(m, "%s", strerror(errno));
	cr_expect_eq(sym_perfmap__count(m), 3);
	cr_expect_eq(sym_perfmap__nbad(m), ARRAY_SIZE(bad) + 2, "nbad %zu", sym_perfmap__nbad(m));
	check_probes(m, probes, ARRAY_SIZE(probes));
	sym_perfmap__free(m);
	tmp_remove(&t);
}

/* The rule in jit.h: the newest line covering an address names it. */
Test(perfmap, overlapping_reemits)
{
	static const char text[] =
		/* the same range emitted twice: the second wholly replaces the first */
		"1000 100 first_version\n"
		"1000 100 second_version\n"
		/* a newer entry overlapping the upper half: takes only what it covers */
		"1080 100 shifted\n"
		/* an older big entry with a newer small one inside it */
		"2000 1000 big_old\n"
		"2400 10 small_new\n"
		/* an older small entry under a newer big one: gone */
		"3400 10 tiny_old\n"
		"3000 1000 huge_new\n"
		/* adjacent, not overlapping */
		"5000 10 left\n"
		"5010 10 right\n";
	static const struct probe probes[] = {
		{0x1000, "second_version", 0x1000},
		{0x107f, "second_version", 0x1000},
		{0x1080, "shifted", 0x1080},
		{0x10ff, "shifted", 0x1080},
		{0x117f, "shifted", 0x1080},
		{0x1180, NULL, 0},
		{0x2000, "big_old", 0x2000},
		{0x23ff, "big_old", 0x2000},
		{0x2400, "small_new", 0x2400},
		{0x240f, "small_new", 0x2400},
		{0x2410, "big_old", 0x2000},
		{0x2fff, "big_old", 0x2000},
		{0x3000, "huge_new", 0x3000},
		{0x3400, "huge_new", 0x3000},
		{0x3fff, "huge_new", 0x3000},
		{0x4000, NULL, 0},
		{0x500f, "left", 0x5000},
		{0x5010, "right", 0x5010},
		{0x5020, NULL, 0},
	};
	struct tmp t;
	struct sym_perfmap *m = load_text(&t, text);

	cr_expect_eq(sym_perfmap__count(m), 9);
	check_probes(m, probes, ARRAY_SIZE(probes));
	sym_perfmap__free(m);
	tmp_remove(&t);
}

/* Random overlapping entries against a brute-force scan for the newest covering entry. */
Test(perfmap, random_against_oracle)
{
	enum { N = 2000, PROBES = 20000 };
	uint64_t *start = xcalloc(N, sizeof(*start)), *size = xcalloc(N, sizeof(*size));
	struct strbuf text = STRBUF_INIT;
	unsigned int seed = 4242;
	struct sym_perfmap *m;
	struct tmp t;

	for (int i = 0; i < N; i++) {
		start[i] = 0x10000 + (uint64_t)(rand_r(&seed) % 0x10000);
		size[i] = 1 + (uint64_t)(rand_r(&seed) % (i % 10 ? 0x40 : 0x800));
		strbuf_addf(&text, "%" PRIx64 " %" PRIx64 " sym %d\n", start[i], size[i], i);
	}
	tmp_make(&t);
	put_bytes(t.path, "w", text.buf, text.len);
	m = sym_perfmap__load(t.path);
	cr_assert_not_null(m);
	cr_assert_eq(sym_perfmap__count(m), N);
	for (int p = 0; p < PROBES; p++) {
		uint64_t addr = 0xff00 + (uint64_t)(rand_r(&seed) % 0x10a00), got_start = 0;
		const char *got = sym_perfmap__lookup(m, addr, &got_start);
		int want = -1;
		char name[32];

		for (int i = N - 1; i >= 0 && want < 0; i--)
			if (addr >= start[i] && addr < start[i] + size[i])
				want = i;
		if (want < 0) {
			cr_assert_null(got, "0x%" PRIx64 ": got '%s'", addr, got);
			continue;
		}
		snprintf(name, sizeof(name), "sym %d", want);
		cr_assert_not_null(got, "0x%" PRIx64 ": expected '%s'", addr, name);
		cr_assert_str_eq(got, name, "0x%" PRIx64, addr);
		cr_assert_eq(got_start, start[want]);
	}
	sym_perfmap__free(m);
	strbuf_release(&text);
	free(start);
	free(size);
	tmp_remove(&t);
}

Test(perfmap, growth_and_refresh)
{
	static const struct probe before[] = {
		{0x1000, "one", 0x1000},
		{0x2000, NULL, 0},
		{0x3000, NULL, 0},
	};
	static const struct probe after[] = {
		{0x1000, "one (recompiled)", 0x1000},
		{0x2000, "two", 0x2000},
		{0x3000, NULL, 0}, /* still being written */
	};
	static const struct probe done[] = {
		{0x3000, "three, finished", 0x3000},
		{0x1000, "one (recompiled)", 0x1000},
	};
	struct tmp t;
	struct sym_perfmap *m = load_text(&t, "1000 10 one\n");

	check_probes(m, before, ARRAY_SIZE(before));
	cr_expect_eq(sym_perfmap__refresh(m), 0);

	put_text(t.path, "a", "2000 10 two\n1000 10 one (recompiled)\n3000 10 three, ");
	cr_expect_eq(sym_perfmap__refresh(m), 1);
	cr_expect_eq(sym_perfmap__count(m), 3);
	check_probes(m, after, ARRAY_SIZE(after));
	cr_expect_eq(sym_perfmap__refresh(m), 0, "an unfinished line adds nothing");

	put_text(t.path, "a", "finished\n");
	cr_expect_eq(sym_perfmap__refresh(m), 1);
	cr_expect_eq(sym_perfmap__count(m), 4);
	check_probes(m, done, ARRAY_SIZE(done));

	/* The process exits and removes its map: the table stays usable. */
	cr_assert_eq(unlink(t.path), 0);
	cr_expect_eq(sym_perfmap__refresh(m), -ENOENT);
	check_probes(m, done, ARRAY_SIZE(done));
	sym_perfmap__free(m);
	tmp_remove(&t);
}

/* A read spanning many chunks, with a line cut at every chunk boundary. */
Test(perfmap, large_file_across_chunks)
{
	enum { N = 40000 };
	struct strbuf text = STRBUF_INIT;
	struct sym_perfmap *m;
	struct tmp t;

	for (int i = 0; i < N; i++)
		strbuf_addf(&text, "%x %x function_number_%d_with_some_padding_to_be_long\n",
			    0x100000 + i * 0x40, 0x40, i);
	tmp_make(&t);
	put_bytes(t.path, "w", text.buf, text.len);
	m = sym_perfmap__load(t.path);
	cr_assert_not_null(m);
	cr_assert_eq(sym_perfmap__count(m), N);
	cr_assert_eq(sym_perfmap__nbad(m), 0);
	for (int i = 0; i < N; i += 997) {
		char want[96];
		uint64_t s;
		const char *got = sym_perfmap__lookup(m, 0x100000 + (uint64_t)i * 0x40 + 0x3f, &s);

		snprintf(want, sizeof(want), "function_number_%d_with_some_padding_to_be_long", i);
		cr_assert_not_null(got);
		cr_assert_str_eq(got, want);
	}
	sym_perfmap__free(m);
	strbuf_release(&text);
	tmp_remove(&t);
}

Test(perfmap, replaced_and_truncated_file)
{
	static const struct probe replaced[] = {
		{0x1000, NULL, 0},
		{0x9000, "new_process_code", 0x9000},
	};
	static const struct probe truncated[] = {
		{0x9000, NULL, 0},
		{0xa000, "after_truncate", 0xa000},
	};
	char other[PATH_MAX + 8];
	struct tmp t;
	struct sym_perfmap *m = load_text(&t, "1000 10 old_process_code\n1100 10 more\n");
	int fd;

	/* A new file renamed over the path (a pid reused, or the JIT restarting). */
	snprintf(other, sizeof(other), "%s.new", t.path);
	put_text(other, "w", "9000 10 new_process_code\nnot a line\n");
	cr_assert_eq(rename(other, t.path), 0);
	cr_expect_eq(sym_perfmap__refresh(m), 1);
	cr_expect_eq(sym_perfmap__count(m), 1);
	cr_expect_eq(sym_perfmap__nbad(m), 1);
	check_probes(m, replaced, ARRAY_SIZE(replaced));

	/* The same inode truncated and rewritten shorter. */
	fd = open(t.path, O_WRONLY | O_TRUNC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "a000 1 after_truncate\n", 22), 22);
	close(fd);
	cr_expect_eq(sym_perfmap__refresh(m), 1);
	cr_expect_eq(sym_perfmap__count(m), 1);
	check_probes(m, truncated, ARRAY_SIZE(truncated));

	/* A replacement that cannot be read leaves the old table in place. */
	cr_assert_eq(unlink(t.path), 0);
	cr_assert_eq(mkdir(t.path, 0755), 0);
	cr_expect_eq(sym_perfmap__refresh(m), -EINVAL);
	check_probes(m, truncated, ARRAY_SIZE(truncated));
	sym_perfmap__free(m);
	tmp_remove(&t);
}

Test(perfmap, bounds_and_bad_files)
{
	struct sym_perfmap *m;
	char link[PATH_MAX + 8];
	struct tmp t;
	int fd;

	tmp_make(&t);
	/* A sparse file one byte over the bound: refused before any read. */
	fd = open(t.path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)SYM_PERFMAP_MAX_FILE_SIZE + 1), 0);
	errno = 0;
	cr_expect_null(sym_perfmap__load(t.path));
	cr_expect_eq(errno, EFBIG);

	/* Growing past the bound after the load: refresh says so. */
	cr_assert_eq(ftruncate(fd, 0), 0);
	cr_assert_eq(pwrite(fd, "1000 10 small\n", 14, 0), 14);
	m = sym_perfmap__load(t.path);
	cr_assert_not_null(m);
	cr_assert_eq(ftruncate(fd, (off_t)SYM_PERFMAP_MAX_FILE_SIZE + 1), 0);
	cr_expect_eq(sym_perfmap__refresh(m), -EFBIG);
	cr_expect_str_eq(sym_perfmap__lookup(m, 0x1000, NULL), "small");
	sym_perfmap__free(m);
	close(fd);

	/* A planted symlink is not followed. */
	snprintf(link, sizeof(link), "%s/link.map", t.dir);
	cr_assert_eq(symlink("/etc/passwd", link), 0);
	errno = 0;
	cr_expect_null(sym_perfmap__load(link));
	cr_expect_eq(errno, ELOOP);

	errno = 0;
	cr_expect_null(sym_perfmap__load(t.dir));
	cr_expect_eq(errno, EINVAL);
	errno = 0;
	cr_expect_null(sym_perfmap__load("/nonexistent/perf-1.map"));
	cr_expect_eq(errno, ENOENT);

	/* No valid line yet: an empty table, not an error. */
	put_text(t.path, "w", "");
	m = sym_perfmap__load(t.path);
	cr_assert_not_null(m);
	cr_expect_eq(sym_perfmap__count(m), 0);
	cr_expect_null(sym_perfmap__lookup(m, 0, NULL));
	sym_perfmap__free(m);
	sym_perfmap__free(NULL);
	tmp_remove(&t);
}

Test(perfmap, live_process_path)
{
	char want[64], path[PATH_MAX];
	struct sym_perfmap *m;
	int pid = getpid();

	snprintf(want, sizeof(want), "/tmp/perf-%d.map", pid);
	unlink(want);
	cr_expect_eq(sym_perfmap__path(pid, path, sizeof(path)), -ENOENT);
	cr_expect_str_eq(path, want);
	errno = 0;
	cr_expect_null(sym_perfmap__load_pid(pid));
	cr_expect_eq(errno, ENOENT);

	put_text(want, "w", "4000 20 jitted\n");
	cr_expect_eq(sym_perfmap__path(pid, path, sizeof(path)), 0);
	/* Through our own /proc/PID/root: the same file in our mount namespace. */
	snprintf(want, sizeof(want), "/proc/%d/root/tmp/perf-%d.map", pid, pid);
	cr_expect_str_eq(path, want);
	cr_expect_eq(sym_perfmap__path(pid, path, 10), -ENAMETOOLONG);
	m = sym_perfmap__load_pid(pid);
	cr_assert_not_null(m, "%s", strerror(errno));
	cr_expect_str_eq(sym_perfmap__lookup(m, 0x401f, NULL), "jitted");
	sym_perfmap__free(m);
	snprintf(want, sizeof(want), "/tmp/perf-%d.map", pid);
	unlink(want);
}

/* ---- vDSO ---------------------------------------------------------------------- */

/* The [vdso] mapping of this process, from /proc/self/maps. */
static void vdso_mapping(uint64_t *start, uint64_t *end)
{
	struct sym_map_entry *e;
	size_t n;

	cr_assert_eq(sym_procmaps__read(getpid(), &e, &n), 0);
	*start = *end = 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(e[i].path, "[vdso]")) {
			*start = e[i].start;
			*end = e[i].end;
		}
	sym_procmaps__free(e, n);
	cr_assert_neq(*start, 0, "no [vdso] mapping");
}

Test(vdso, clock_gettime_as_glibc_sees_it)
{
	uint64_t base = getauxval(AT_SYSINFO_EHDR), mstart, mend, off, size;
	struct sym_vdso *v = sym_vdso__load_self();
	void *h, *fn;
	const char *name;

	cr_assert_not_null(v, "%s", strerror(errno));
	vdso_mapping(&mstart, &mend);
	cr_expect_eq(mstart, base);
	size = sym_vdso__size(v);
	cr_expect_eq((size + 4095) / 4096 * 4096, mend - mstart,
		     "image %" PRIu64 ", mapping %" PRIu64, size, mend - mstart);

	/* glibc's own lookup of the function in the vDSO it loaded. */
	h = dlopen("linux-vdso.so.1", RTLD_NOW | RTLD_NOLOAD);
	cr_assert_not_null(h, "dlopen(linux-vdso.so.1): %s", dlerror());
	fn = dlsym(h, "__vdso_clock_gettime");
	cr_assert_not_null(fn, "%s", dlerror());
	off = (uint64_t)(uintptr_t)fn - base;

	name = sym_vdso__resolve(v, off, &size);
	cr_assert_not_null(name);
	cr_expect_str_eq(name, "__vdso_clock_gettime");
	cr_expect_eq(size, 0);
	name = sym_vdso__resolve(v, off + 5, &size);
	cr_assert_not_null(name);
	cr_expect_str_eq(name, "__vdso_clock_gettime");
	cr_expect_eq(size, 5);
	/* The weak alias resolves to the same place. */
	cr_expect_eq(dlsym(h, "clock_gettime"), fn);

	cr_expect_null(sym_vdso__resolve(v, 0, NULL), "the ELF header is no function");
	cr_expect_null(sym_vdso__resolve(v, mend - mstart, NULL));
	cr_expect_null(sym_vdso__resolve(NULL, off, NULL));
	dlclose(h);
	sym_vdso__free(v);
	sym_vdso__free(NULL);
}

/*
 * Every FUNC symbol readelf finds in a copy of the image resolves, at its
 * first and last byte, to a function readelf lists at that same address,
 * and to a global one when it has a global alias.
 */
Test(vdso, every_function_against_readelf)
{
	struct rsym {
		unsigned long long value, size;
		bool global;
		char name[128];
	} syms[64];
	const void *base = (const void *)getauxval(AT_SYSINFO_EHDR);
	struct sym_vdso *v = sym_vdso__load_self();
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
	char dir[] = "/tmp/bpfprof-vdso-XXXXXX", path[64], *line, *save = NULL;
	int n = 0;

	cr_assert_not_null(v);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vdso.so", dir);
	put_bytes(path, "w", base, sym_vdso__size(v));
	{
		char *argv[] = {"/usr/bin/readelf", "-W", "--dyn-syms", path, NULL};

		cr_assert_eq(test_run(argv, &out, &err, 30000), 0, "%s", err.buf);
	}
	/* "     5: 0000000000000c10   325 FUNC    WEAK   DEFAULT   13 clock_gettime@@LINUX_2.6" */
	for (line = strtok_r(out.buf, "\n", &save); line && n < (int)ARRAY_SIZE(syms);
	     line = strtok_r(NULL, "\n", &save)) {
		struct rsym *r = &syms[n];
		char type[16], bind[16];

		if (sscanf(line, " %*d: %llx %llu %15s %15s %*s %*s %127s", &r->value, &r->size,
			   type, bind, r->name) != 5 ||
		    strcmp(type, "FUNC") || !r->value || !r->size)
			continue;
		*strchrnul(r->name, '@') = '\0';
		r->global = !strcmp(bind, "GLOBAL");
		n++;
	}
	cr_assert_geq(n, 4, "readelf listed %d functions", n);
	for (int i = 0; i < n; i++) {
		/* x86-64 links the vDSO at 0 and maps it from offset 0: vaddr == offset. */
		uint64_t offs[2] = {syms[i].value, syms[i].value + syms[i].size - 1};

		for (int k = 0; k < 2; k++) {
			const char *got = sym_vdso__resolve(v, offs[k], NULL);
			bool listed = false, global_alias = false, got_global = false;

			cr_assert_not_null(got, "%s+%" PRIu64, syms[i].name,
					   offs[k] - syms[i].value);
			for (int j = 0; j < n; j++) {
				if (syms[j].value != syms[i].value)
					continue;
				global_alias |= syms[j].global;
				if (!strcmp(syms[j].name, got)) {
					listed = true;
					got_global = syms[j].global;
				}
			}
			cr_expect(listed, "%s: got '%s', not at its address", syms[i].name, got);
			cr_expect(got_global || !global_alias, "%s: got '%s', not the global alias",
				  syms[i].name, got);
		}
	}
	unlink(path);
	rmdir(dir);
	strbuf_release(&out);
	strbuf_release(&err);
	sym_vdso__free(v);
}
