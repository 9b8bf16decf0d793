// SPDX-License-Identifier: MIT
/*
 * Unit tests for symbolizer/: kallsyms and /proc/PID/maps parsing on canned
 * input, and ELF symbol lookup checked against binutils (nm, readelf) on the
 * fixtures built from tests/fixtures/elfsyms.c, on this test binary, on libc
 * and on whatever other fixtures are built.
 */
#include <criterion/criterion.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "symbolizer/symbolizer.h"
#include "tests/common/testutil.h"

#define TOOL_TIMEOUT_MS 30000

/* ---- small helpers ------------------------------------------------------- */

static void write_bytes(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static char *write_tmp_text(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	write_bytes(path, text, strlen(text));
	return xstrdup(path);
}

static const char *fixture(const char *name, char *buf, size_t len)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "fixtures/%s", name);
	test_build_path(rel, buf, len);
	cr_assert_eq(access(buf, R_OK), 0, "fixture %s missing (make fixtures): %s", buf,
		     strerror(errno));
	return buf;
}

/* Runs a tool and returns its stdout; the test fails when it does not exit 0. */
static char *run_tool(char *const argv[])
{
	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
	int rc = test_run(argv, &out, &err, TOOL_TIMEOUT_MS);

	cr_assert_eq(rc, 0, "%s exited %d: %s", argv[0], rc, err.buf ? err.buf : "");
	strbuf_release(&err);
	return out.buf ? strbuf_detach(&out, NULL) : xstrdup("");
}

/* ---- ground truth from binutils -------------------------------------------- */

struct nm_sym {
	uint64_t addr, size;
	char type;
	char name[256];
};

struct nm_table {
	struct nm_sym *v;
	size_t n, cap;
};

/* Defined symbols from `nm -S [-D]`; version suffixes ("@@GLIBC_2.14") cut off. */
static void nm_load(const char *path, bool dynamic, struct nm_table *t)
{
	char *mode = dynamic ? "-D" : "--";
	char *argv[] = {"/usr/bin/nm", "-S", "--defined-only", mode, (char *)path, NULL};
	char *out = run_tool(argv), *line, *save = NULL;

	memset(t, 0, sizeof(*t));
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct nm_sym s = {0};
		unsigned long long a, sz;
		char *at;

		if (sscanf(line, "%llx %llx %c %255s", &a, &sz, &s.type, s.name) == 4) {
			s.size = sz;
		} else if (sscanf(line, "%llx %c %255s", &a, &s.type, s.name) != 3) {
			continue;
		}
		s.addr = a;
		at = strchr(s.name, '@');
		if (at)
			*at = '\0';
		xgrow((void **)&t->v, &t->cap, t->n + 1, sizeof(*t->v));
		t->v[t->n++] = s;
	}
	free(out);
}

static const struct nm_sym *nm_find(const struct nm_table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].name, name))
			return &t->v[i];
	cr_assert_fail("nm lists no symbol '%s'", name);
	return NULL;
}

static bool nm_is_text(char type)
{
	return type == 'T' || type == 't' || type == 'W' || type == 'w' || type == 'i';
}

struct seg {
	uint64_t off, vaddr, filesz;
};

struct phdrs {
	struct seg v[32];
	size_t n;
};

/* PT_LOAD segments from `readelf -lW`. */
static void phdrs_load(const char *path, struct phdrs *p)
{
	char *argv[] = {"/usr/bin/readelf", "-lW", (char *)path, NULL};
	char *out = run_tool(argv), *line, *save = NULL;

	memset(p, 0, sizeof(*p));
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long off, va, pa, fsz, msz;

		if (sscanf(line, " LOAD %llx %llx %llx %llx %llx", &off, &va, &pa, &fsz, &msz) ==
			    5 &&
		    p->n < 32)
			p->v[p->n++] = (struct seg){off, va, fsz};
	}
	free(out);
	cr_assert_gt(p->n, 0, "readelf shows no PT_LOAD in %s", path);
}

static uint64_t vaddr_to_off(const struct phdrs *p, uint64_t va)
{
	for (size_t i = 0; i < p->n; i++)
		if (va >= p->v[i].vaddr && va < p->v[i].vaddr + p->v[i].filesz)
			return va - p->v[i].vaddr + p->v[i].off;
	cr_assert_fail("vaddr 0x%llx in no PT_LOAD", (unsigned long long)va);
	return 0;
}

static uint64_t off_to_vaddr(const struct phdrs *p, uint64_t off)
{
	for (size_t i = 0; i < p->n; i++)
		if (off >= p->v[i].off && off < p->v[i].off + p->v[i].filesz)
			return off - p->v[i].off + p->v[i].vaddr;
	cr_assert_fail("offset 0x%llx in no PT_LOAD", (unsigned long long)off);
	return 0;
}

/* The build-id `readelf -n` prints into out[128], or "" when there is none. */
static void readelf_build_id(const char *path, char *out)
{
	char *argv[] = {"/usr/bin/readelf", "-n", (char *)path, NULL};
	char *txt = run_tool(argv);
	char *p = strstr(txt, "Build ID: ");

	out[0] = '\0';
	if (p)
		sscanf(p + strlen("Build ID: "), "%127[0-9a-f]", out);
	free(txt);
}

/* The fixture's own report: NAME RUNTIME_ADDR FILE_OFFSET per function. */
static uint64_t fixture_offset(const char *bin, const char *fn)
{
	char *argv[] = {(char *)bin, "print", NULL};
	char *out = run_tool(argv), *line, *save = NULL;
	uint64_t found = UINT64_MAX;

	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];
		unsigned long long addr, off;

		if (sscanf(line, "%127s %llx %llx", name, &addr, &off) == 3 && !strcmp(name, fn))
			found = off;
	}
	free(out);
	cr_assert_neq(found, UINT64_MAX, "%s did not report %s", bin, fn);
	return found;
}

/* ---- kallsyms -------------------------------------------------------------- */

/* Out of order on purpose: the loader sorts. Tabs before modules, as the kernel prints. */
static const char kallsyms_text[] =
	"ffffffffc0001100 T mod_fn_b\t[ext4]\n"
	"ffffffffc0001000 t mod_fn_a\t[ext4]\n"
	"ffffffffc0002000 t bpf_prog_6deef7357e7b4530_sd_fw_ingress\t[bpf]\n"
	"ffffffff81000000 T _stext\n"
	"ffffffff81000000 T _text\n"
	"ffffffff81000000 T srso_alias_untrain_ret\n"
	"ffffffff81000100 t local_fn\n"
	"ffffffff81000100 T global_fn\n"
	"ffffffff81000200 D some_data\n"
	"ffffffff81000300 t local_same_as_weak\n"
	"ffffffff81000300 W weak_fn\n"
	"ffffffff810003f0 T __pfx_padded_fn\n"
	"ffffffff81000400 T padded_fn\n"
	"ffffffff81000480 t __pfx_orphan\n"
	"ffffffff81000500 T after_orphan\n"
	"ffffffff81000600 T __pfx_lonely\n"
	"ffffffff81000600 t lonely_marker\n"
	"ffffffff81000700 t __pfx_blocked_fn\n"
	"ffffffff81000708 t inside_padding\n"
	"ffffffff81000710 T blocked_fn\n"
	"ffffffff81100000 t __pfx_run_init_process\n"
	"ffffffff81100000 T __split_text_end\n"
	"ffffffff81100010 t run_init_process\n"
	"ffffffff81100080 T __cfi_cfi_fn\n"
	"ffffffff81100090 T cfi_fn\n"
	"ffffffff81000800 t __pfx_late_fn\n"
	"ffffffff81000810 T late_fn\n"
	"ffffffff81000808 t sneaky_fn\n";

struct ksym_case {
	uint64_t addr;
	const char *name; /* NULL: no symbol */
	uint64_t sym_addr;
	const char *module;
};

static const struct ksym_case ksym_cases[] = {
	{0xffffffff80ffffffULL, NULL, 0, NULL},
	/* three names at one address: no leading underscore wins */
	{0xffffffff81000000ULL, "srso_alias_untrain_ret", 0xffffffff81000000ULL, NULL},
	{0xffffffff810000ffULL, "srso_alias_untrain_ret", 0xffffffff81000000ULL, NULL},
	/* T over t */
	{0xffffffff81000100ULL, "global_fn", 0xffffffff81000100ULL, NULL},
	/* data symbols are not boundaries: some_data is no text */
	{0xffffffff810002ffULL, "global_fn", 0xffffffff81000100ULL, NULL},
	/* W over t */
	{0xffffffff81000300ULL, "weak_fn", 0xffffffff81000300ULL, NULL},
	{0xffffffff810003efULL, "weak_fn", 0xffffffff81000300ULL, NULL},
	/* __pfx_ padding belongs to the function it falls through into */
	{0xffffffff810003f0ULL, "padded_fn", 0xffffffff81000400ULL, NULL},
	{0xffffffff810003ffULL, "padded_fn", 0xffffffff81000400ULL, NULL},
	{0xffffffff81000400ULL, "padded_fn", 0xffffffff81000400ULL, NULL},
	{0xffffffff8100047fULL, "padded_fn", 0xffffffff81000400ULL, NULL},
	/* an orphan __pfx_ keeps its name */
	{0xffffffff81000480ULL, "__pfx_orphan", 0xffffffff81000480ULL, NULL},
	{0xffffffff81000500ULL, "after_orphan", 0xffffffff81000500ULL, NULL},
	/* an orphan __pfx_ loses to any other name at its address, even a local one */
	{0xffffffff81000600ULL, "lonely_marker", 0xffffffff81000600ULL, NULL},
	/* a symbol between a __pfx_ and its function keeps its bytes */
	{0xffffffff81000704ULL, "__pfx_blocked_fn", 0xffffffff81000700ULL, NULL},
	{0xffffffff81000708ULL, "inside_padding", 0xffffffff81000708ULL, NULL},
	{0xffffffff8100070fULL, "inside_padding", 0xffffffff81000708ULL, NULL},
	{0xffffffff81000710ULL, "blocked_fn", 0xffffffff81000710ULL, NULL},
	/* ... also when it comes later in the file */
	{0xffffffff81000808ULL, "sneaky_fn", 0xffffffff81000808ULL, NULL},
	{0xffffffff8100080fULL, "sneaky_fn", 0xffffffff81000808ULL, NULL},
	{0xffffffff81000810ULL, "late_fn", 0xffffffff81000810ULL, NULL},
	{0xffffffff810fffffULL, "late_fn", 0xffffffff81000810ULL, NULL},
	/* a marker sharing the __pfx_ address loses to the padded function */
	{0xffffffff81100000ULL, "run_init_process", 0xffffffff81100010ULL, NULL},
	{0xffffffff81100010ULL, "run_init_process", 0xffffffff81100010ULL, NULL},
	{0xffffffff81100080ULL, "cfi_fn", 0xffffffff81100090ULL, NULL},
	/* the last vmlinux symbol spans 1 MiB at most */
	{0xffffffff81100090ULL + 0xfffff, "cfi_fn", 0xffffffff81100090ULL, NULL},
	{0xffffffff81100090ULL + 0x100000, NULL, 0, NULL},
	{0xffffffffbfffffffULL, NULL, 0, NULL},
	{0xffffffffc0001000ULL, "mod_fn_a", 0xffffffffc0001000ULL, "ext4"},
	{0xffffffffc00010ffULL, "mod_fn_a", 0xffffffffc0001000ULL, "ext4"},
	{0xffffffffc0001fffULL, "mod_fn_b", 0xffffffffc0001100ULL, "ext4"},
	{0xffffffffc0002000ULL, "bpf_prog_6deef7357e7b4530_sd_fw_ingress", 0xffffffffc0002000ULL,
	 "bpf"},
	{0xffffffffc0102000ULL, NULL, 0, NULL},
	{UINT64_MAX, NULL, 0, NULL},
};

Test(sym_kallsyms, canned_lookup)
{
	char *dir = test_tmp_dir("sym");
	char *path = write_tmp_text(dir, "kallsyms", kallsyms_text);
	size_t nbad = 99;
	struct sym_kallsyms *k = sym_kallsyms__load(path, &nbad);
	const struct sym_ksym *a, *b;

	cr_assert_not_null(k, "load: %s", strerror(errno));
	cr_assert_eq(nbad, 0);
	/*
	 * 28 lines: one data symbol, 4 __pfx_/__cfi_ folded, 2 + 1 + 1 + 1
	 * duplicates of an address: 18 entries (__split_text_end stays, with
	 * an empty range: run_init_process's padding starts where it does).
	 */
	cr_assert_eq(sym_kallsyms__count(k), 18, "count %zu", sym_kallsyms__count(k));
	cr_assert_gt(sym_kallsyms__bytes(k), 11 * sizeof(struct sym_ksym));
	for (size_t i = 0; i < ARRAY_SIZE(ksym_cases); i++) {
		const struct ksym_case *c = &ksym_cases[i];
		const struct sym_ksym *s = sym_kallsyms__find(k, c->addr);

		if (!c->name) {
			cr_expect_null(s, "0x%llx: expected nothing, got %s",
				       (unsigned long long)c->addr, s ? s->name : "");
			continue;
		}
		cr_assert_not_null(s, "0x%llx: expected %s", (unsigned long long)c->addr, c->name);
		cr_expect_str_eq(s->name, c->name, "0x%llx", (unsigned long long)c->addr);
		cr_expect_eq(s->addr, c->sym_addr, "0x%llx", (unsigned long long)c->addr);
		if (c->module)
			cr_expect(s->module && !strcmp(s->module, c->module), "0x%llx: module %s",
				  (unsigned long long)c->addr, s->module ? s->module : "(null)");
		else
			cr_expect_null(s->module, "0x%llx", (unsigned long long)c->addr);
	}
	/* module names are interned: one string per module */
	a = sym_kallsyms__find(k, 0xffffffffc0001000ULL);
	b = sym_kallsyms__find(k, 0xffffffffc0001100ULL);
	cr_assert(a && b);
	cr_expect_eq(a->module, b->module);
	sym_kallsyms__free(k);
	sym_kallsyms__free(NULL);
	free(path);
	test_rm_tree(dir);
}

Test(sym_kallsyms, malformed_lines_counted)
{
	char *dir = test_tmp_dir("sym");
	char path[PATH_MAX], longname[700];
	struct strbuf sb = STRBUF_INIT;
	struct sym_kallsyms *k;
	size_t nbad = 0;

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	strbuf_adds(&sb, "ffffffff81000000 T good_one\n");
	strbuf_adds(&sb, "zzzzzzzz T bad_hex\n"); /* 1 */
	strbuf_adds(&sb, "ffffffff81000010 T\n"); /* 2: no name */
	strbuf_adds(&sb, "ffffffff81000010\n"); /* 3: no type */
	strbuf_adds(&sb, "\n"); /* 4: empty */
	strbuf_adds(&sb, "ffffffff81000010 TT two_letter_type\n"); /* 5 */
	strbuf_adds(&sb, "ffffffff81000010 T name trailing junk\n"); /* 6 */
	strbuf_adds(&sb, "ffffffff81000010 T name [unterminated\n"); /* 7 */
	strbuf_adds(&sb, "ffffffff81000010 T name []\n"); /* 8 */
	strbuf_addf(&sb, "ffffffff81000010 T %s\n", longname); /* 9: name > 512 */
	strbuf_adds(&sb, "1ffffffff81000010 T seventeen_digits\n"); /* 10: > 64 bits */
	strbuf_adds(&sb, "ffffffff81000010T glued\n"); /* 11 */
	strbuf_add(&sb, "ffffffff81000010 T nul\0inside\n", 30); /* 12 */
	strbuf_adds(&sb, "ffffffff81000020 t good_two\t[mod]\n");
	strbuf_adds(&sb, "00000000000000000000ffffffff81000030 T leading_zeros_ok\n");
	strbuf_adds(&sb, "ffffffff81000040 T last_no_newline");
	snprintf(path, sizeof(path), "%s/kallsyms", dir);
	write_bytes(path, sb.buf, sb.len);

	k = sym_kallsyms__load(path, &nbad);
	cr_assert_not_null(k, "load: %s", strerror(errno));
	cr_expect_eq(nbad, 12);
	cr_expect_eq(sym_kallsyms__count(k), 4);
	cr_expect_str_eq(sym_kallsyms__find(k, 0xffffffff81000005ULL)->name, "good_one");
	cr_expect_str_eq(sym_kallsyms__find(k, 0xffffffff81000020ULL)->module, "mod");
	cr_expect_str_eq(sym_kallsyms__find(k, 0xffffffff81000030ULL)->name, "leading_zeros_ok");
	cr_expect_str_eq(sym_kallsyms__find(k, 0xffffffff81000041ULL)->name, "last_no_newline");
	sym_kallsyms__free(k);
	strbuf_release(&sb);
	test_rm_tree(dir);
}

Test(sym_kallsyms, errors)
{
	char *dir = test_tmp_dir("sym");
	char *zero = write_tmp_text(dir, "zero",
				    "0000000000000000 T a\n"
				    "0000000000000000 t b\n"
				    "0000000000000000 D c\t[mod]\n");
	char *data = write_tmp_text(dir, "data", "ffffffff82000000 D only_data\n");
	char *empty = write_tmp_text(dir, "empty", "");
	char *junk = write_tmp_text(dir, "junk", "hello\nworld\n");
	size_t nbad = 99;

	errno = 0;
	cr_expect_null(sym_kallsyms__load(zero, &nbad));
	cr_expect_eq(errno, EPERM, "all-zero addresses: errno %d", errno);
	cr_expect_eq(nbad, 0);
	errno = 0;
	cr_expect_null(sym_kallsyms__load(data, NULL));
	cr_expect_eq(errno, ENODATA);
	errno = 0;
	cr_expect_null(sym_kallsyms__load(empty, NULL));
	cr_expect_eq(errno, ENODATA);
	errno = 0;
	cr_expect_null(sym_kallsyms__load(junk, &nbad));
	cr_expect_eq(errno, ENODATA);
	cr_expect_eq(nbad, 2);
	errno = 0;
	cr_expect_null(sym_kallsyms__load("/nonexistent/kallsyms", NULL));
	cr_expect_eq(errno, ENOENT);
	cr_expect_null(sym_kallsyms__find(NULL, 0x1000));
	free(zero);
	free(data);
	free(empty);
	free(junk);
	test_rm_tree(dir);
}

struct kline {
	uint64_t addr;
	char name[128];
	bool pfx;
};

static int cmp_kline(const void *a, const void *b)
{
	const struct kline *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/*
 * The real file, against an independent sscanf() parse: every 97th text
 * symbol, and every __pfx_ padding followed by its function. Skipped when
 * kptr_restrict hides the addresses.
 */
Test(sym_kallsyms, real_proc_kallsyms)
{
	uint64_t t0 = now_mono_ns(), t1;
	size_t nbad = 0, checked = 0, pfx_checked = 0, n = 0, cap = 0;
	struct sym_kallsyms *k = sym_kallsyms__load("/proc/kallsyms", &nbad);
	struct kline *v = NULL;
	char line[1024];
	FILE *f;

	t1 = now_mono_ns();
	if (!k && errno == EPERM)
		cr_skip_test("/proc/kallsyms addresses are hidden (kptr_restrict)");
	cr_assert_not_null(k, "load /proc/kallsyms: %s", strerror(errno));
	cr_expect_eq(nbad, 0);
	cr_assert_gt(sym_kallsyms__count(k), 1000);
	cr_log_info("kallsyms: %zu entries, %zu bytes, loaded in %.1f ms", sym_kallsyms__count(k),
		    sym_kallsyms__bytes(k), (t1 - t0) / 1e6);
	/* Memory budget: the whole agent gets 30 MB. */
	cr_expect_lt(sym_kallsyms__bytes(k), 12u << 20);

	f = fopen("/proc/kallsyms", "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;
		char type;
		struct kline l = {0};

		if (sscanf(line, "%llx %c %127s", &a, &type, l.name) != 3 || !strchr("tTwW", type))
			continue;
		l.addr = a;
		l.pfx = !strncmp(l.name, "__pfx_", 6) || !strncmp(l.name, "__cfi_", 6);
		xgrow((void **)&v, &cap, n + 1, sizeof(*v));
		v[n++] = l;
	}
	fclose(f);
	qsort(v, n, sizeof(*v), cmp_kline);
	for (size_t i = 0; i < n; i++) {
		const struct sym_ksym *s;
		bool shares_pfx = false;

		if (v[i].pfx) {
			/* a function right after its __pfx_: the padding resolves to it */
			for (size_t j = i + 1; j < n && v[j].addr - v[i].addr <= 64; j++) {
				if (v[j].addr == v[i].addr || strcmp(v[j].name, v[i].name + 6))
					continue;
				s = sym_kallsyms__find(k, v[i].addr);
				cr_assert_not_null(s);
				cr_expect_eq(s->addr, v[j].addr, "%s: padding at 0x%llx gives %s",
					     v[j].name, (unsigned long long)v[i].addr, s->name);
				pfx_checked++;
				break;
			}
			continue;
		}
		if (i % 97)
			continue;
		/* a name sharing its address with a __pfx_ is shadowed by design */
		for (size_t j = i; j > 0 && v[j - 1].addr == v[i].addr; j--)
			shares_pfx |= v[j - 1].pfx;
		for (size_t j = i + 1; j < n && v[j].addr == v[i].addr; j++)
			shares_pfx |= v[j].pfx;
		if (shares_pfx)
			continue;
		s = sym_kallsyms__find(k, v[i].addr);
		cr_assert_not_null(s, "%s at 0x%llx not found", v[i].name,
				   (unsigned long long)v[i].addr);
		/* An alias may win, but never a symbol at another address. */
		cr_expect_eq(s->addr, v[i].addr, "%s at 0x%llx resolved to %s at 0x%llx", v[i].name,
			     (unsigned long long)v[i].addr, s->name, (unsigned long long)s->addr);
		checked++;
	}
	cr_expect_gt(checked, 100);
	cr_log_info("kallsyms: %zu symbols and %zu __pfx_ paddings checked", checked, pfx_checked);
	free(v);
	sym_kallsyms__free(k);
}

/* ---- /proc/PID/maps ---------------------------------------------------------- */

struct map_case {
	uint64_t start, end, pgoff, inode;
	uint32_t maj, min, perms;
	bool deleted;
	const char *path;
};

static const struct map_case map_cases[] = {
	{0x55cd2d52f000, 0x55cd2d531000, 0, 247134, 0xfe, 0, SYM_MAP_R | SYM_MAP_P, false,
	 "/usr/bin/cat"},
	{0x55cd2d531000, 0x55cd2d536000, 0x2000, 247134, 0xfe, 0, SYM_MAP_R | SYM_MAP_X | SYM_MAP_P,
	 false, "/usr/bin/cat"},
	{0x55cd6a525000, 0x55cd6a546000, 0, 0, 0, 0, SYM_MAP_R | SYM_MAP_W | SYM_MAP_P, false,
	 "[heap]"},
	{0x7f870fadd000, 0x7f870fba1000, 0, 0, 0, 0, SYM_MAP_R | SYM_MAP_W | SYM_MAP_P, false, ""},
	{0x7f870fde7000, 0x7f870fdee000, 0, 332280, 0xfe, 0, SYM_MAP_R, false,
	 "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache"},
	{0x5653c8e2f000, 0x5653c8e34000, 0x2000, 10952914, 0xfe, 0,
	 SYM_MAP_R | SYM_MAP_X | SYM_MAP_P, true, "/tmp/a b/sl eep (x)"},
	{0x7f0000000000, 0x7f0000001000, 0x1000, 42, 0x103, 0x2, SYM_MAP_R | SYM_MAP_X | SYM_MAP_P,
	 false, "/path/with  two  spaces "},
	{0x7f0000002000, 0x7f0000003000, 0, 43, 8, 1, SYM_MAP_R | SYM_MAP_X | SYM_MAP_P, true,
	 "/x (deleted)"},
	{0x7f0000004000, 0x7f0000005000, 0, 0, 0, 0, SYM_MAP_R | SYM_MAP_W | SYM_MAP_P, false,
	 "[anon:glibc malloc]"},
	{0x7ffd1b1f3000, 0x7ffd1b1f5000, 0, 0, 0, 0, SYM_MAP_R | SYM_MAP_X | SYM_MAP_P, false,
	 "[vdso]"},
	{0x7ffd1b1d3000, 0x7ffd1b1f3000, 0, 0, 0, 0, SYM_MAP_R | SYM_MAP_W | SYM_MAP_P, false,
	 "[stack]"},
	{0xffffffffff600000, 0xffffffffff601000, 0, 0, 0, 0, SYM_MAP_X | SYM_MAP_P, false,
	 "[vsyscall]"},
};

static const char maps_text[] =
	"55cd2d52f000-55cd2d531000 r--p 00000000 fe:00 247134                     /usr/bin/cat\n"
	"55cd2d531000-55cd2d536000 r-xp 00002000 fe:00 247134                     /usr/bin/cat\n"
	"garbage line\n"
	"55cd6a525000-55cd6a546000 rw-p 00000000 00:00 0                          [heap]\n"
	"7f870fadd000-7f870fba1000 rw-p 00000000 00:00 0 \n"
	"7f00-7e00 r-xp 00000000 00:00 0\n" /* start > end */
	"7f870fde7000-7f870fdee000 r--s 00000000 fe:00 332280                     "
	"/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache\n"
	"7f00-7f10 rwzp 00000000 00:00 0\n" /* bad perms */
	"5653c8e2f000-5653c8e34000 r-xp 00002000 fe:00 10952914                   "
	"/tmp/a b/sl eep (x) (deleted)\n"
	"7f00-7f10 r-xp 0000000g 00:00 0\n" /* bad offset */
	"7f0000000000-7f0000001000 r-xp 00001000 103:02 42 /path/with  two  spaces \n"
	"7f00-7f10 r-xp 00000000 00-00 0\n" /* bad device */
	"7f0000002000-7f0000003000 r-xp 00000000 08:01 43     /x (deleted) (deleted)\n"
	"7f00-7f10 r-xp 00000000 00:00 abc\n" /* bad inode */
	"7f0000004000-7f0000005000 rw-p 00000000 00:00 0  [anon:glibc malloc]\n"
	"7f00-7f10 r-xp 00000000 00:00\n" /* no inode */
	"\n" /* empty */
	"7ffd1b1f3000-7ffd1b1f5000 r-xp 00000000 00:00 0                          [vdso]\n"
	"7ffd1b1d3000-7ffd1b1f3000 rw-p 00000000 00:00 0                          [stack]\n"
	"1ffffffffffffffff-2 r-xp 00000000 00:00 0\n" /* overflow */
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";

Test(sym_procmaps, canned)
{
	FILE *f = fmemopen((void *)maps_text, strlen(maps_text), "r");
	struct sym_map_entry *e = NULL;
	size_t n = 0, nbad = 0;

	cr_assert_not_null(f);
	cr_assert_eq(sym_procmaps__parse(f, &e, &n, &nbad), 0);
	fclose(f);
	cr_expect_eq(nbad, 9, "nbad %zu", nbad);
	cr_assert_eq(n, ARRAY_SIZE(map_cases));
	for (size_t i = 0; i < n; i++) {
		const struct map_case *c = &map_cases[i];

		cr_expect_eq(e[i].start, c->start, "line %zu", i);
		cr_expect_eq(e[i].end, c->end, "line %zu", i);
		cr_expect_eq(e[i].pgoff, c->pgoff, "line %zu", i);
		cr_expect_eq(e[i].inode, c->inode, "line %zu", i);
		cr_expect_eq(e[i].dev_major, c->maj, "line %zu", i);
		cr_expect_eq(e[i].dev_minor, c->min, "line %zu", i);
		cr_expect_eq(e[i].perms, c->perms, "line %zu", i);
		cr_expect_eq(e[i].deleted, c->deleted, "line %zu", i);
		cr_expect_str_eq(e[i].path, c->path, "line %zu", i);
	}
	sym_procmaps__free(e, n);
	sym_procmaps__free(NULL, 0);
}

Test(sym_procmaps, overlong_and_empty)
{
	struct strbuf sb = STRBUF_INIT;
	struct sym_map_entry *e = NULL;
	size_t n = 99, nbad = 99;
	FILE *f;

	strbuf_adds(&sb, "1000-2000 r-xp 00000000 00:00 1 /");
	for (int i = 0; i < PATH_MAX + 200; i++)
		strbuf_addc(&sb, 'a');
	strbuf_adds(&sb, "\n3000-4000 r-xp 00000000 00:00 1 /ok\n");
	f = fmemopen(sb.buf, sb.len, "r");
	cr_assert_eq(sym_procmaps__parse(f, &e, &n, &nbad), 0);
	fclose(f);
	cr_expect_eq(n, 1);
	cr_expect_eq(nbad, 1);
	cr_expect_str_eq(e[0].path, "/ok");
	sym_procmaps__free(e, n);

	f = fmemopen((void *)"", 0, "r");
	cr_assert_eq(sym_procmaps__parse(f, &e, &n, NULL), 0);
	fclose(f);
	cr_expect_eq(n, 0);
	sym_procmaps__free(e, n);
	strbuf_release(&sb);
}

static __attribute__((noinline, used
#if defined(__GNUC__) && !defined(__clang__)
		      ,
		      noipa
#endif
		      )) int
test_sym_self_marker(int x)
{
	volatile unsigned v = (unsigned)x;

	for (int i = 0; i < 8; i++)
		v = v * 31 + i;
	return v;
}

/* The mapping of this process that contains @addr. */
static const struct sym_map_entry *self_map(struct sym_map_entry *e, size_t n, uint64_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= e[i].start && addr < e[i].end)
			return &e[i];
	cr_assert_fail("0x%llx in no mapping", (unsigned long long)addr);
	return NULL;
}

Test(sym_procmaps, read_self)
{
	uint64_t addr = (uint64_t)(uintptr_t)test_sym_self_marker;
	char exe[PATH_MAX];
	struct sym_map_entry *e = NULL;
	const struct sym_map_entry *m;
	struct stat st;
	ssize_t l;
	size_t n = 0;

	cr_assert_eq(sym_procmaps__read(getpid(), &e, &n), 0);
	cr_assert_gt(n, 3);
	m = self_map(e, n, addr);
	l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert_gt(l, 0);
	exe[l] = '\0';
	cr_expect_str_eq(m->path, exe);
	cr_expect(m->perms & SYM_MAP_X);
	cr_assert_eq(stat(exe, &st), 0);
	cr_expect_eq(m->inode, st.st_ino);
	sym_procmaps__free(e, n);

	cr_expect_eq(sym_procmaps__read(0, &e, &n), -EINVAL);
	/* pid_max is at most 2^22: this one never exists */
	cr_expect_eq(sym_procmaps__read(1 << 30, &e, &n), -ENOENT);
}

/* ---- ELF: fixtures against nm/readelf -------------------------------------- */

static struct sym_dsos *new_cache(void)
{
	struct sym_dsos *c = sym_dsos__new();

	cr_assert_not_null(c);
	return c;
}

/* Resolves the vaddr @va of @d (layout @ph) and expects @name at @sym_va. */
static void expect_at(struct sym_dso *d, const struct phdrs *ph, uint64_t va, const char *name,
		      uint64_t sym_va)
{
	struct sym_result r;
	enum sym_fail why = SYM_FAIL__COUNT;
	uint64_t off = vaddr_to_off(ph, va);
	int err = sym_dso__resolve(d, off, &r, &why);

	cr_assert_eq(err, 0, "%s: vaddr 0x%llx (offset 0x%llx): %s (why %d)", name,
		     (unsigned long long)va, (unsigned long long)off, strerror(-err), why);
	cr_expect_eq(why, SYM_FAIL_NONE);
	cr_expect_eq(r.vaddr, va);
	cr_expect_str_eq(r.name, name, "vaddr 0x%llx", (unsigned long long)va);
	cr_expect_eq(r.sym_addr, sym_va, "%s", name);
}

/* First, middle and last byte of each function; the names are the rule choices. */
static void check_fixture(const char *bin, bool dynamic)
{
	static const char *const fns[] = {"elfsyms_alpha",    "elfsyms_beta",
					  "elfsyms_gamma",    "elfsyms_after_nosize",
					  "elfsyms_resolver", "main"};
	struct sym_dsos *c = new_cache();
	struct nm_table nm;
	struct phdrs ph;
	struct sym_dso *d;
	const struct nm_sym *s, *after;

	nm_load(bin, dynamic, &nm);
	phdrs_load(bin, &ph);
	d = sym_dsos__get_path(c, bin);
	cr_assert_not_null(d, "get %s: %s", bin, strerror(errno));
	cr_expect_str_eq(sym_dso__path(d), bin);
	for (size_t i = 0; i < ARRAY_SIZE(fns); i++) {
		s = nm_find(&nm, fns[i]);
		cr_assert_gt(s->size, 1, "%s has no size", fns[i]);
		expect_at(d, &ph, s->addr, fns[i], s->addr);
		expect_at(d, &ph, s->addr + s->size / 2, fns[i], s->addr);
		expect_at(d, &ph, s->addr + s->size - 1, fns[i], s->addr);
		/* the truth from the running program agrees with nm + readelf */
		cr_expect_eq(fixture_offset(bin, fns[i]), vaddr_to_off(&ph, s->addr), "%s", fns[i]);
	}
	/* a weak alias and an underscore alias share addresses with the winners */
	cr_expect_eq(nm_find(&nm, "elfsyms_b_weak")->addr, nm_find(&nm, "elfsyms_beta")->addr);
	cr_expect_eq(nm_find(&nm, "__elfsyms_gamma")->addr, nm_find(&nm, "elfsyms_gamma")->addr);
	cr_expect_eq(nm_find(&nm, "elfsyms_ifunc")->addr, nm_find(&nm, "elfsyms_resolver")->addr);
	cr_expect_eq(nm_find(&nm, "elfsyms_ifunc")->type, 'i');
	/* zero-size: extends to the next symbol, which nm shows right after it */
	s = nm_find(&nm, "elfsyms_nosize");
	after = nm_find(&nm, "elfsyms_after_nosize");
	cr_assert_eq(s->size, 0);
	cr_assert_gt(after->addr, s->addr + 1);
	expect_at(d, &ph, s->addr, "elfsyms_nosize", s->addr);
	expect_at(d, &ph, s->addr + (after->addr - s->addr) / 2, "elfsyms_nosize", s->addr);
	expect_at(d, &ph, after->addr - 1, "elfsyms_nosize", s->addr);
	expect_at(d, &ph, after->addr, "elfsyms_after_nosize", after->addr);
	/* ... and stops there: the nops after elfsyms_after_nosize are nobody's */
	{
		struct sym_result r;
		enum sym_fail why;
		uint64_t gap = after->addr + after->size;

		cr_expect_eq(sym_dso__resolve(d, vaddr_to_off(&ph, gap), &r, &why), -ENOENT,
			     "gap after elfsyms_after_nosize resolved to %s", r.name);
		cr_expect_eq(why, SYM_FAIL_NOSYM);
		cr_expect_eq(r.vaddr, gap);
	}
	/* a sized local beats a zero-size global at the same address */
	s = nm_find(&nm, "elfsyms_zero_global");
	cr_assert_eq(s->size, 0);
	expect_at(d, &ph, s->addr, dynamic ? "elfsyms_zero_global" : "elfsyms_sized_local",
		  s->addr);
	if (!dynamic) {
		cr_expect_eq(nm_find(&nm, "elfsyms_sized_local")->addr, s->addr);
		s = nm_find(&nm, "elfsyms_hidden");
		cr_expect(s->type == 't');
		expect_at(d, &ph, s->addr, "elfsyms_hidden", s->addr);
		expect_at(d, &ph, s->addr + s->size - 1, "elfsyms_hidden", s->addr);
	}
	sym_dso__put(d);
	sym_dsos__free(c);
	free(nm.v);
}

Test(sym_dso, fixture_symtab)
{
	char bin[PATH_MAX];

	check_fixture(fixture("elfsyms", bin, sizeof(bin)), false);
}

Test(sym_dso, fixture_dynsym_only)
{
	char bin[PATH_MAX];
	struct sym_dsos *c = new_cache();
	struct sym_result r;
	enum sym_fail why;
	struct phdrs ph;
	struct sym_dso *d;
	uint64_t off;
	int err;

	fixture("elfsyms-stripped", bin, sizeof(bin));
	check_fixture(bin, true);

	/* The static function is not in .dynsym: a clean miss, not a wrong name. */
	phdrs_load(bin, &ph);
	off = fixture_offset(bin, "elfsyms_hidden");
	d = sym_dsos__get_path(c, bin);
	cr_assert_not_null(d);
	err = sym_dso__resolve(d, off, &r, &why);
	cr_expect_eq(err, -ENOENT, "elfsyms_hidden resolved to %s", r.name ? r.name : "?");
	cr_expect_eq(why, SYM_FAIL_NOSYM);
	cr_expect_null(r.name);
	cr_expect_eq(r.vaddr, off_to_vaddr(&ph, off));
	sym_dso__put(d);
	sym_dsos__free(c);
}

Test(sym_dso, build_id_matches_readelf)
{
	static const char *const names[] = {"elfsyms", "elfsyms-stripped"};
	struct sym_dsos *c = new_cache();

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char bin[PATH_MAX], want[128];
		struct sym_dso *d;

		fixture(names[i], bin, sizeof(bin));
		readelf_build_id(bin, want);
		cr_assert_eq(strlen(want), 40, "%s: readelf shows no sha1 build-id", bin);
		d = sym_dsos__get_path(c, bin);
		cr_assert_not_null(d);
		cr_assert_not_null(sym_dso__build_id(d));
		cr_expect_str_eq(sym_dso__build_id(d), want, "%s", bin);
		sym_dso__put(d);
	}
	sym_dsos__free(c);
}

static void copy_file(const char *from, const char *to)
{
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(read_file(from, &sb, 0), 0);
	write_bytes(to, sb.buf, sb.len);
	strbuf_release(&sb);
}

Test(sym_dso, identity)
{
	struct sym_dsos *c = new_cache();
	char bin[PATH_MAX], abs[PATH_MAX], cp[PATH_MAX], ln[PATH_MAX], j1[PATH_MAX], j2[PATH_MAX];
	char *dir = test_tmp_dir("sym");
	struct sym_dso *a, *b, *x, *y, *z;
	struct sym_stats st;

	fixture("elfsyms", bin, sizeof(bin));
	snprintf(cp, sizeof(cp), "%s/copy", dir);
	snprintf(ln, sizeof(ln), "%s/link", dir);
	snprintf(j1, sizeof(j1), "%s/junk1", dir);
	snprintf(j2, sizeof(j2), "%s/junk2", dir);
	copy_file(bin, cp);
	cr_assert_not_null(realpath(bin, abs));
	cr_assert_eq(symlink(abs, ln), 0);
	write_bytes(j1, "not an ELF file", 15);
	write_bytes(j2, "not an ELF file", 15);

	a = sym_dsos__get_path(c, bin);
	b = sym_dsos__get_path(c, bin); /* same file */
	x = sym_dsos__get_path(c, cp); /* other file, same build-id */
	y = sym_dsos__get_path(c, ln); /* same file through a symlink */
	cr_assert(a && b && x && y, "get: %s", strerror(errno));
	cr_expect_eq(a, b);
	cr_expect_eq(a, x);
	cr_expect_eq(a, y);
	/* no build-id: the file identity decides, and equal bytes are not enough */
	x = sym_dsos__get_path(c, j1);
	y = sym_dsos__get_path(c, j2);
	z = sym_dsos__get_path(c, j1);
	cr_assert(x && y && z);
	cr_expect_null(sym_dso__build_id(x));
	cr_expect_neq(x, y);
	cr_expect_eq(x, z);
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 3);
	sym_dso__get(a);
	for (int i = 0; i < 5; i++)
		sym_dso__put(a);
	sym_dso__put(x);
	sym_dso__put(y);
	sym_dso__put(z);
	sym_dso__put(NULL);
	/* all idle now, still cached */
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 3);
	sym_dsos__free(c);
	sym_dsos__free(NULL);
	test_rm_tree(dir);
}

static size_t count_fds(void)
{
	size_t n = 0;

	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

Test(sym_dso, idle_lru_bounded)
{
	struct sym_dsos *c = new_cache();
	char *dir = test_tmp_dir("sym");
	size_t fds0 = count_fds();
	struct sym_dso *d;
	struct sym_stats st;
	char path[PATH_MAX];

	for (int i = 0; i < 70; i++) {
		snprintf(path, sizeof(path), "%s/f%d", dir, i);
		write_bytes(path, path, strlen(path));
		d = sym_dsos__get_path(c, path);
		cr_assert_not_null(d);
		sym_dso__put(d);
	}
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 64, "idle dsos: %llu", (unsigned long long)st.dsos);
	cr_expect_eq(count_fds(), fds0 + 64);
	/* the most recent one is still cached */
	snprintf(path, sizeof(path), "%s/f69", dir);
	d = sym_dsos__get_path(c, path);
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 64);
	sym_dso__put(d);
	/* the oldest was evicted: a new dso */
	snprintf(path, sizeof(path), "%s/f0", dir);
	d = sym_dsos__get_path(c, path);
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 65);
	sym_dso__put(d);
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 64);
	sym_dsos__free(c);
	cr_expect_eq(count_fds(), fds0, "descriptors leaked");
	test_rm_tree(dir);
}

Test(sym_dso, put_after_cache_free)
{
	struct sym_dsos *c = new_cache();
	char bin[PATH_MAX];
	struct sym_result r;
	struct sym_dso *d = sym_dsos__get_path(c, fixture("elfsyms", bin, sizeof(bin)));

	cr_assert_not_null(d);
	log_level = 0; /* the warning below is expected */
	sym_dsos__free(c); /* warns; d stays usable until its last put */
	cr_expect_eq(sym_dso__resolve(d, 0, &r, NULL), -ENOENT);
	sym_dso__put(d);
}

Test(sym_dso, get_mapped_self)
{
	uint64_t addr = (uint64_t)(uintptr_t)test_sym_self_marker;
	struct sym_dsos *c = new_cache();
	struct sym_map_entry *e = NULL, fake;
	const struct sym_map_entry *m;
	enum sym_fail why;
	struct sym_result r;
	struct sym_dso *d, *d2;
	size_t n = 0;
	int err;

	cr_expect_neq(test_sym_self_marker(1), 0);
	cr_assert_eq(sym_procmaps__read(getpid(), &e, &n), 0);
	m = self_map(e, n, addr);
	d = sym_dsos__get_mapped(c, getpid(), m);
	cr_assert_not_null(d, "get_mapped: %s", strerror(errno));
	err = sym_dso__resolve(d, addr - m->start + m->pgoff, &r, &why);
	cr_assert_eq(err, 0, "%s (why %d)", strerror(-err), why);
	cr_expect_str_eq(r.name, "test_sym_self_marker");
	cr_expect_eq(sym_dso__resolve(d, addr + 5 - m->start + m->pgoff, &r, NULL), 0);
	cr_expect_str_eq(r.name, "test_sym_self_marker");

	/* No such mapping: map_files fails, the path (same inode) is used. */
	fake = *m;
	fake.start = 0x1000;
	fake.end = 0x2000;
	d2 = sym_dsos__get_mapped(c, getpid(), &fake);
	cr_assert_not_null(d2, "path fallback: %s", strerror(errno));
	cr_expect_eq(d2, d);
	sym_dso__put(d2);
	/* ... but not when the path now names another inode */
	fake.inode = m->inode + 1;
	errno = 0;
	cr_expect_null(sym_dsos__get_mapped(c, getpid(), &fake));
	cr_expect_eq(errno, ESTALE);
	/* ... nor for a deleted file, whose path names something else now */
	fake.inode = m->inode;
	fake.deleted = true;
	errno = 0;
	cr_expect_null(sym_dsos__get_mapped(c, getpid(), &fake));
	cr_expect_eq(errno, ENOENT);
	/* anonymous memory */
	fake.deleted = false;
	fake.path = (char *)"";
	cr_expect_null(sym_dsos__get_mapped(c, getpid(), &fake));
	sym_dso__put(d);
	sym_procmaps__free(e, n);
	sym_dsos__free(c);
}

/*
 * Whatever was done to the file: an error with a reason, or the right
 * name. Never a crash (the ASan build runs this too), never a wrong name.
 */
static void expect_sane(struct sym_dsos *c, const char *path, uint64_t off, const char *want,
			bool must_fail_elf)
{
	struct sym_dso *d = sym_dsos__get_path(c, path);
	enum sym_fail why = SYM_FAIL__COUNT;
	struct sym_result r;
	int err;

	if (!d)
		return;
	err = sym_dso__resolve(d, off, &r, &why);
	if (!err) {
		cr_expect_eq(why, SYM_FAIL_NONE);
		if (want)
			cr_expect_str_eq(r.name, want, "%s", path);
	} else {
		cr_expect(why > SYM_FAIL_NONE && why < SYM_FAIL__COUNT, "%s: why %d", path, why);
	}
	if (must_fail_elf) {
		cr_expect_eq(err, -ENOEXEC, "%s: %d", path, err);
		cr_expect_eq(why, SYM_FAIL_ELF, "%s: why %d", path, why);
	}
	sym_dso__put(d);
}

Test(sym_dso, corrupt_files)
{
	char bin[PATH_MAX], path[PATH_MAX];
	struct strbuf sb = STRBUF_INIT;
	char *dir = test_tmp_dir("sym");
	struct sym_dsos *c;
	struct nm_table nm;
	struct phdrs ph;
	unsigned seed = 12345;
	uint64_t off;
	size_t cuts[] = {0, 1, 4, 16, 52, 63, 64, 65, 100, 500, 1000, 2000, 4096, 0, 0, 0};
	struct sym_stats st;

	fixture("elfsyms", bin, sizeof(bin));
	nm_load(bin, false, &nm);
	phdrs_load(bin, &ph);
	off = vaddr_to_off(&ph, nm_find(&nm, "elfsyms_alpha")->addr);
	cr_assert_eq(read_file(bin, &sb, 0), 0);
	cuts[13] = sb.len / 2;
	cuts[14] = sb.len - 100;
	cuts[15] = sb.len - 1;
	c = new_cache();
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		snprintf(path, sizeof(path), "%s/cut%zu", dir, i);
		write_bytes(path, sb.buf, cuts[i]);
		/* without a whole ELF header there is nothing to read */
		expect_sane(c, path, off, "elfsyms_alpha", cuts[i] < 64);
	}
	/* random bytes */
	{
		char junk[8192];

		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (char)rand_r(&seed);
		snprintf(path, sizeof(path), "%s/random", dir);
		write_bytes(path, junk, sizeof(junk));
		expect_sane(c, path, off, NULL, true);
		/* an ELF magic in front of junk */
		memcpy(junk, sb.buf, 16);
		snprintf(path, sizeof(path), "%s/magic", dir);
		write_bytes(path, junk, sizeof(junk));
		expect_sane(c, path, off, NULL, false);
	}
	/* flipped bytes in the headers and tables: only "no crash, a reason" holds */
	for (int i = 0; i < 300; i++) {
		char *buf = xmalloc(sb.len);

		memcpy(buf, sb.buf, sb.len);
		for (int k = 0; k < 8; k++) {
			size_t at =
				i % 2 ? (size_t)rand_r(&seed) % 1024 /* ELF and program headers */
				      : (size_t)rand_r(&seed) % sb.len;
			buf[at] = (char)rand_r(&seed);
		}
		snprintf(path, sizeof(path), "%s/flip%d", dir, i);
		write_bytes(path, buf, sb.len);
		expect_sane(c, path, off, NULL, false);
		expect_sane(c, path, 0x100000000ULL, NULL, false);
		free(buf);
		unlink(path);
	}
	sym_dsos__stats(c, &st);
	cr_expect_gt(st.fail[SYM_FAIL_ELF], 0);
	sym_dsos__free(c);
	strbuf_release(&sb);
	free(nm.v);
	test_rm_tree(dir);
}

Test(sym_dso, refuses_non_regular_files)
{
	struct sym_dsos *c = new_cache();
	char *dir = test_tmp_dir("sym");
	char fifo[PATH_MAX], big[PATH_MAX];
	struct sym_stats st;
	int fd;

	/*
	 * A hang on the FIFO kills the worker (reported as a crash). Not
	 * .timeout: criterion 2.4.1's runner leaks its timeout record when
	 * such tests run in parallel, which LeakSanitizer reports.
	 */
	alarm(20);
	errno = 0;
	cr_expect_null(sym_dsos__get_path(c, dir));
	cr_expect_eq(errno, EISDIR);

	/* A FIFO with no writer: must neither hang nor be read. */
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	errno = 0;
	cr_expect_null(sym_dsos__get_path(c, fifo));
	cr_expect_eq(errno, EINVAL);

	errno = 0;
	cr_expect_null(sym_dsos__get_path(c, "/dev/null"));
	cr_expect_eq(errno, EINVAL);

	/* sparse: costs no disk */
	snprintf(big, sizeof(big), "%s/big", dir);
	fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)SYM_DSO_MAX_FILE_SIZE + 1), 0);
	close(fd);
	errno = 0;
	cr_expect_null(sym_dsos__get_path(c, big));
	cr_expect_eq(errno, EFBIG);

	errno = 0;
	cr_expect_null(sym_dsos__get_path(c, "/nonexistent/file"));
	cr_expect_eq(errno, ENOENT);

	sym_dsos__stats(c, &st);
	cr_expect_eq(st.fail[SYM_FAIL_OPEN], 1);
	cr_expect_eq(st.fail[SYM_FAIL_ELF], 4);
	cr_expect_eq(st.dsos, 0);
	sym_dsos__free(c);
	test_rm_tree(dir);
}

/* An ELF header and one PT_LOAD, no section headers: valid, but no symbols. */
Test(sym_dso, no_symbol_tables)
{
	struct {
		Elf64_Ehdr eh;
		Elf64_Phdr ph;
		unsigned char code[64];
	} f;
	struct sym_dsos *c = new_cache();
	char *dir = test_tmp_dir("sym");
	char path[PATH_MAX];
	struct sym_result r;
	enum sym_fail why;
	struct sym_dso *d;
	uint64_t va = 0;

	memset(&f, 0, sizeof(f));
	memcpy(f.eh.e_ident, ELFMAG, SELFMAG);
	f.eh.e_ident[EI_CLASS] = ELFCLASS64;
	f.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	f.eh.e_ident[EI_VERSION] = EV_CURRENT;
	f.eh.e_type = ET_EXEC;
	f.eh.e_machine = EM_X86_64;
	f.eh.e_version = EV_CURRENT;
	f.eh.e_entry = 0x400000 + offsetof(typeof(f), code);
	f.eh.e_phoff = offsetof(typeof(f), ph);
	f.eh.e_ehsize = sizeof(f.eh);
	f.eh.e_phentsize = sizeof(f.ph);
	f.eh.e_phnum = 1;
	f.ph.p_type = PT_LOAD;
	f.ph.p_flags = PF_R | PF_X;
	f.ph.p_vaddr = 0x400000;
	f.ph.p_filesz = f.ph.p_memsz = sizeof(f);
	f.ph.p_align = 0x1000;
	snprintf(path, sizeof(path), "%s/tiny", dir);
	write_bytes(path, &f, sizeof(f));

	d = sym_dsos__get_path(c, path);
	cr_assert_not_null(d);
	cr_expect_null(sym_dso__build_id(d));
	/* ET_EXEC: vaddr = offset + 0x400000 */
	cr_expect_eq(sym_dso__offset_to_vaddr(d, offsetof(typeof(f), code), &va), 0);
	cr_expect_eq(va, 0x400000 + offsetof(typeof(f), code));
	cr_expect_eq(sym_dso__offset_to_vaddr(d, sizeof(f), &va), -ENOENT);
	cr_expect_eq(sym_dso__resolve(d, offsetof(typeof(f), code), &r, &why), -ENODATA);
	cr_expect_eq(why, SYM_FAIL_NOSYMS);
	cr_expect_eq(r.vaddr, 0x400000 + offsetof(typeof(f), code));
	sym_dso__put(d);
	sym_dsos__free(c);
	test_rm_tree(dir);
}

Test(sym_dso, offsets_and_stats)
{
	struct sym_dsos *c = new_cache();
	char bin[PATH_MAX];
	struct sym_result r;
	struct sym_stats st;
	enum sym_fail why;
	struct phdrs ph;
	struct sym_dso *d;
	uint64_t va;

	fixture("elfsyms", bin, sizeof(bin));
	phdrs_load(bin, &ph);
	d = sym_dsos__get_path(c, bin);
	cr_assert_not_null(d);
	/* every segment, including the data one, where vaddr != offset */
	for (size_t i = 0; i < ph.n; i++) {
		uint64_t off = ph.v[i].off + ph.v[i].filesz - 1;

		cr_expect_eq(sym_dso__offset_to_vaddr(d, off, &va), 0);
		cr_expect_eq(va, off_to_vaddr(&ph, off), "segment %zu", i);
	}
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos_loaded, 0, "symbols are loaded lazily");

	cr_expect_eq(sym_dso__resolve(d, 1ULL << 40, &r, &why), -ERANGE);
	cr_expect_eq(why, SYM_FAIL_NOLOAD);
	/* the ELF header: mapped, but no function there */
	cr_expect_eq(sym_dso__resolve(d, 0x10, &r, &why), -ENOENT);
	cr_expect_eq(why, SYM_FAIL_NOSYM);
	cr_expect_eq(r.vaddr, off_to_vaddr(&ph, 0x10));
	cr_expect_eq(sym_dso__resolve(d, fixture_offset(bin, "main"), &r, NULL), 0);
	cr_expect_str_eq(r.name, "main");

	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 1);
	cr_expect_eq(st.dsos_loaded, 1);
	cr_expect_eq(st.lookups, 3);
	cr_expect_eq(st.hits, 1);
	cr_expect_eq(st.fail[SYM_FAIL_NOLOAD], 1);
	cr_expect_eq(st.fail[SYM_FAIL_NOSYM], 1);
	cr_expect_geq(st.symbols, 8);
	cr_expect_gt(st.bytes, st.symbols * 8);
	sym_dso__put(d);
	sym_dsos__free(c);
}

/*
 * Every sized text symbol nm lists must resolve, at its first and last
 * byte, to a symbol whose nm range holds the address: at the start, to one
 * of the names nm gives that address. Runs on the fixtures (the ET_EXEC
 * ones, built -no-pie, have vaddr != offset), this binary, and libc.
 */
static void crosscheck(const char *path, bool dynamic)
{
	struct sym_dsos *c = new_cache();
	struct sym_dso *d = sym_dsos__get_path(c, path);
	size_t checked = 0;
	struct nm_table nm;
	struct phdrs ph;

	cr_assert_not_null(d, "%s: %s", path, strerror(errno));
	nm_load(path, dynamic, &nm);
	phdrs_load(path, &ph);
	for (size_t i = 0; i < nm.n; i++) {
		const struct nm_sym *s = &nm.v[i];
		uint64_t probes[2] = {s->addr, s->addr + s->size - 1};

		if (!nm_is_text(s->type) || !s->size || !s->addr)
			continue;
		for (int p = 0; p < 2; p++) {
			struct sym_result r;
			enum sym_fail why;
			bool ok = false;
			int err = sym_dso__resolve(d, vaddr_to_off(&ph, probes[p]), &r, &why);

			cr_assert_eq(err, 0, "%s: %s+%llu: %s (why %d)", path, s->name,
				     (unsigned long long)(probes[p] - s->addr), strerror(-err),
				     why);
			/* a symbol nm shows at the answer's address, containing the probe */
			for (size_t j = 0; j < nm.n && !ok; j++) {
				const struct nm_sym *t = &nm.v[j];

				if (!nm_is_text(t->type) || t->addr != r.sym_addr)
					continue;
				if (p == 0)
					ok = t->addr == s->addr && !strcmp(t->name, r.name);
				else
					ok = !t->size || probes[p] - t->addr < t->size;
			}
			cr_expect(ok, "%s: %s+%llu resolved to %s at 0x%llx", path, s->name,
				  (unsigned long long)(probes[p] - s->addr), r.name,
				  (unsigned long long)r.sym_addr);
		}
		checked++;
	}
	cr_log_info("%s: %zu symbols agree with nm", path, checked);
	cr_expect_gt(checked, 3);
	free(nm.v);
	sym_dso__put(d);
	sym_dsos__free(c);
}

Test(sym_dso, agrees_with_nm)
{
	static const char *const others[] = {"fpchains", "burn"};
	char path[PATH_MAX], rel[64];
	struct sym_map_entry *e = NULL;
	size_t n = 0;
	ssize_t l;

	crosscheck(fixture("elfsyms", path, sizeof(path)), false);
	crosscheck(fixture("elfsyms-stripped", path, sizeof(path)), true);
	for (size_t i = 0; i < ARRAY_SIZE(others); i++) {
		snprintf(rel, sizeof(rel), "fixtures/%s", others[i]);
		test_build_path(rel, path, sizeof(path));
		if (access(path, R_OK))
			cr_log_warn("%s not built: ET_EXEC lookups not checked with it", path);
		else
			crosscheck(path, false);
	}
	l = readlink("/proc/self/exe", path, sizeof(path) - 1);
	cr_assert_gt(l, 0);
	path[l] = '\0';
	crosscheck(path, false);
	/* libc as this process maps it: .dynsym only on Debian */
	cr_assert_eq(sym_procmaps__read(getpid(), &e, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strstr(e[i].path, "/libc.so")) {
			snprintf(path, sizeof(path), "%s", e[i].path);
			crosscheck(path, true);
			break;
		}
	sym_procmaps__free(e, n);
}

/*
 * libc with its full .symtab (libc6-dbg's debug file put back with
 * eu-unstrip): glibc is where aliases pile up, so this checks the alias
 * rules on names everybody knows. Skipped without the debug file.
 */
Test(sym_dso, libc_full_symtab_names)
{
	static const char *const names[] = {"malloc", "free", "memcpy", "printf", "write"};
	struct sym_map_entry *e = NULL;
	char libc[PATH_MAX] = "", dbg[PATH_MAX], full[PATH_MAX];
	struct sym_dsos *c = new_cache();
	char *dir = test_tmp_dir("sym");
	struct sym_dso *d;
	struct nm_table nm;
	struct phdrs ph;
	const char *bid;
	size_t n = 0;

	cr_assert_eq(sym_procmaps__read(getpid(), &e, &n), 0);
	for (size_t i = 0; i < n && !libc[0]; i++)
		if (strstr(e[i].path, "/libc.so"))
			snprintf(libc, sizeof(libc), "%s", e[i].path);
	sym_procmaps__free(e, n);
	cr_assert(libc[0], "libc not mapped");
	d = sym_dsos__get_path(c, libc);
	cr_assert_not_null(d);
	bid = sym_dso__build_id(d);
	cr_assert_not_null(bid);
	snprintf(dbg, sizeof(dbg), "/usr/lib/debug/.build-id/%.2s/%s.debug", bid, bid + 2);
	sym_dso__put(d);
	sym_dsos__free(c);
	if (access(dbg, R_OK) || access("/usr/bin/eu-unstrip", X_OK)) {
		test_rm_tree(dir);
		cr_skip_test("no %s or eu-unstrip (packages libc6-dbg, elfutils)", dbg);
	}
	snprintf(full, sizeof(full), "%s/libc-full.so", dir);
	{
		char *argv[] = {"/usr/bin/eu-unstrip", "-o", full, libc, dbg, NULL};

		free(run_tool(argv));
	}

	c = new_cache();
	d = sym_dsos__get_path(c, full);
	cr_assert_not_null(d);
	nm_load(full, false, &nm);
	phdrs_load(full, &ph);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const struct nm_sym *s = nm_find(&nm, names[i]);

		expect_at(d, &ph, s->addr, names[i], s->addr);
	}
	free(nm.v);
	sym_dso__put(d);
	sym_dsos__free(c);
	crosscheck(full, false);
	test_rm_tree(dir);
}
