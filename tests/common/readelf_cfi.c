// SPDX-License-Identifier: MIT
/*
 * tests/common/readelf_cfi.c — parses `readelf --debug-dump=frames-interp`
 * (binutils' display_debug_frames(), "frames-interp" mode) into rows. See
 * readelf_cfi.h for the format and the API.
 */
#include "readelf_cfi.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define MAX_COLS 64
#define MAX_TOKS (MAX_COLS + 8)

struct cie_init {
	uint64_t off;
	bool debug_frame;
	struct rcfi_row row; /* start/end unused */
};

struct readelf_cfi {
	struct rcfi_row *rows;
	size_t nrows, cap;
	size_t *sorted; /* row indices by (debug_frame, start), for lookups */
	struct cie_init *cies;
	size_t ncies, ciecap;
};

/* The block being read: a CIE's initial rules or an FDE's table. */
struct block {
	bool active, is_cie, debug_frame;
	uint64_t off, cie, pc_start, pc_end;
	int ncols, col_reg[MAX_COLS]; /* DWARF number of each register column */
	struct rcfi_row *pend; /* rows read, end not known yet */
	size_t npend, pendcap;
};

/* readelf's x86-64 register names (binutils dwarf.c, dwarf_regnames_x86_64). */
static int reg_number(const char *name, size_t len)
{
	static const char *const names[] = {"rax", "rdx", "rcx", "rbx", "rsi", "rdi",
					    "rbp", "rsp", "r8",	 "r9",	"r10", "r11",
					    "r12", "r13", "r14", "r15", "rip"};

	if (len == 2 && !strncmp(name, "ra", 2))
		return RCFI_REG_RA;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strlen(names[i]) == len && !strncmp(names[i], name, len))
			return (int)i;
	return -2; /* a column we do not track (xmm, segment registers, ...) */
}

static bool is_hex(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return false;
	return true;
}

/* Splits @line on blanks; "(rbx)" after "r3" is joined to it (one rule). */
static int tokenize(char *line, char *tok[MAX_TOKS])
{
	int n = 0;
	char *save, *t;

	for (t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (t[0] == '(' && n > 0)
			continue;
		if (n == MAX_TOKS)
			return -EINVAL;
		tok[n++] = t;
	}
	return n;
}

static int parse_cfa(const char *s, struct rcfi_row *r)
{
	const char *sign;
	char *end;

	if (!strcmp(s, "exp")) {
		r->cfa_reg = RCFI_CFA_EXPR;
		r->cfa_off = 0;
		return 0;
	}
	sign = strpbrk(s, "+-");
	if (!sign || sign == s)
		return -EINVAL;
	r->cfa_reg = reg_number(s, sign - s);
	r->cfa_off = strtoll(sign, &end, 10);
	return *end ? -EINVAL : 0;
}

static int parse_rule(const char *s, enum rcfi_rule *rule, int64_t *off)
{
	char *end;

	*off = 0;
	if (!strcmp(s, "u")) {
		*rule = RCFI_UNDEFINED;
	} else if (!strcmp(s, "s")) {
		*rule = RCFI_SAME;
	} else if (!strcmp(s, "exp")) {
		*rule = RCFI_EXPR;
	} else if (!strcmp(s, "vexp")) {
		*rule = RCFI_VAL_EXPR;
	} else if ((s[0] == 'c' || s[0] == 'v') && (s[1] == '+' || s[1] == '-')) {
		*rule = s[0] == 'c' ? RCFI_OFFSET : RCFI_VAL_OFFSET;
		*off = strtoll(s + 1, &end, 10);
		if (*end)
			return -EINVAL;
	} else if (s[0] == 'r' && isdigit((unsigned char)s[1])) {
		*rule = RCFI_REGISTER;
		*off = strtoll(s + 1, &end, 10);
		if (*end)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	return 0;
}

static void add_row(struct readelf_cfi *t, const struct rcfi_row *r)
{
	if (r->start >= r->end)
		return;
	xgrow((void **)&t->rows, &t->cap, t->nrows + 1, sizeof(*t->rows));
	t->rows[t->nrows++] = *r;
}

/* Ends the block: an FDE's rows get their ends, a CIE's initial row is kept. */
static void block_end(struct readelf_cfi *t, struct block *b)
{
	if (!b->active)
		return;
	if (b->is_cie) {
		if (b->npend) {
			xgrow((void **)&t->cies, &t->ciecap, t->ncies + 1, sizeof(*t->cies));
			t->cies[t->ncies++] = (struct cie_init){.off = b->off,
								.debug_frame = b->debug_frame,
								.row = b->pend[b->npend - 1]};
		}
	} else if (b->npend == 0) {
		/* No instructions: the CIE's initial rules hold for the whole range. */
		for (size_t i = 0; i < t->ncies; i++) {
			struct rcfi_row r;

			if (t->cies[i].off != b->cie || t->cies[i].debug_frame != b->debug_frame)
				continue;
			r = t->cies[i].row;
			r.start = b->pc_start;
			r.end = b->pc_end;
			r.fde_start = b->pc_start;
			r.fde_end = b->pc_end;
			r.debug_frame = b->debug_frame;
			add_row(t, &r);
			break;
		}
	} else {
		for (size_t i = 0; i < b->npend; i++) {
			struct rcfi_row r = b->pend[i];

			r.end = i + 1 < b->npend ? b->pend[i + 1].start : b->pc_end;
			if (r.end > b->pc_end)
				r.end = b->pc_end;
			add_row(t, &r);
		}
	}
	b->active = false;
	b->npend = 0;
	b->ncols = 0;
}

static int parse_row(struct block *b, char **tok, int n)
{
	struct rcfi_row r = {.rbp_rule = RCFI_SAME, .ra_rule = RCFI_SAME};
	int err;

	if (!b->active || n != 2 + b->ncols)
		return -EINVAL;
	r.start = strtoull(tok[0], NULL, 16);
	r.fde_start = b->pc_start;
	r.fde_end = b->pc_end;
	r.debug_frame = b->debug_frame;
	err = parse_cfa(tok[1], &r);
	for (int c = 0; c < b->ncols && !err; c++) {
		enum rcfi_rule rule;
		int64_t off;

		err = parse_rule(tok[2 + c], &rule, &off);
		if (b->col_reg[c] == RCFI_REG_RBP) {
			/*
			 * readelf prints "u" both for DW_CFA_undefined and for a
			 * column no instruction has touched yet (DW_CFA_unreferenced
			 * in binutils): for rbp that is "not saved yet", i.e. the same
			 * value. Only ra is taken at its word (_start's CIE).
			 */
			r.rbp_rule = rule == RCFI_UNDEFINED ? RCFI_SAME : rule;
			r.rbp_off = off;
		} else if (b->col_reg[c] == RCFI_REG_RA) {
			r.ra_rule = rule;
			r.ra_off = off;
		}
	}
	if (err)
		return err;
	xgrow((void **)&b->pend, &b->pendcap, b->npend + 1, sizeof(*b->pend));
	b->pend[b->npend++] = r;
	return 0;
}

static const struct readelf_cfi *sort_ctx;

static int cmp_row(const void *a, const void *b)
{
	const struct rcfi_row *x = &sort_ctx->rows[*(const size_t *)a];
	const struct rcfi_row *y = &sort_ctx->rows[*(const size_t *)b];

	if (x->debug_frame != y->debug_frame)
		return x->debug_frame ? 1 : -1;
	return x->start < y->start ? -1 : x->start > y->start;
}

int readelf_cfi__parse(const char *text, struct readelf_cfi **out)
{
	struct readelf_cfi *t = xcalloc(1, sizeof(*t));
	struct block b = {0};
	bool debug_frame = false;
	char *copy = xstrdup(text), *line, *save;
	int err = 0;

	for (line = strtok_r(copy, "\n", &save); line && !err; line = strtok_r(NULL, "\n", &save)) {
		char *tok[MAX_TOKS];
		int n;

		if (!strncmp(line, "Contents of the ", 16)) {
			block_end(t, &b);
			debug_frame = strstr(line, ".debug_frame") != NULL;
			continue;
		}
		n = tokenize(line, tok);
		if (n < 0) {
			err = n;
		} else if (n == 0) {
			block_end(t, &b); /* a blank line ends a CIE or FDE */
		} else if (!strcmp(tok[0], "LOC")) {
			if (n < 2 || strcmp(tok[1], "CFA") || n - 2 > MAX_COLS)
				err = -EINVAL;
			b.ncols = n > 2 ? n - 2 : 0;
			for (int c = 0; c < b.ncols; c++)
				b.col_reg[c] = reg_number(tok[2 + c], strlen(tok[2 + c]));
		} else if (n >= 4 && is_hex(tok[0]) && is_hex(tok[1]) &&
			   (!strcmp(tok[3], "CIE") || !strcmp(tok[3], "FDE"))) {
			block_end(t, &b);
			b.active = true;
			b.debug_frame = debug_frame;
			b.off = strtoull(tok[0], NULL, 16);
			b.is_cie = !strcmp(tok[3], "CIE");
			if (!b.is_cie) {
				unsigned long long cie, lo, hi;

				if (n < 6 || sscanf(tok[4], "cie=%llx", &cie) != 1 ||
				    sscanf(tok[5], "pc=%llx..%llx", &lo, &hi) != 2)
					err = -EINVAL;
				else
					b.cie = cie, b.pc_start = lo, b.pc_end = hi;
			}
		} else if (n >= 2 && is_hex(tok[0]) && !strcmp(tok[1], "ZERO")) {
			block_end(t, &b); /* "ZERO terminator" */
		} else if (is_hex(tok[0]) && n >= 2) {
			err = parse_row(&b, tok, n);
		}
		/* Anything else (augmentation data, DW_CFA_ lines) is not a table. */
	}
	if (!err)
		block_end(t, &b);
	free(b.pend);
	free(copy);
	if (!err && t->nrows == 0)
		err = -ENODATA;
	if (err) {
		readelf_cfi__free(t);
		return err;
	}
	t->sorted = xmalloc(t->nrows * sizeof(*t->sorted));
	for (size_t i = 0; i < t->nrows; i++)
		t->sorted[i] = i;
	sort_ctx = t;
	qsort(t->sorted, t->nrows, sizeof(*t->sorted), cmp_row);
	sort_ctx = NULL;
	*out = t;
	return 0;
}

int readelf_cfi__load(const char *path, struct readelf_cfi **out)
{
	char *argv[] = {"readelf", "--debug-dump=frames-interp", (char *)path, NULL};
	struct strbuf text = STRBUF_INIT;
	int rc;

	if (access("/usr/bin/readelf", X_OK))
		return -ENOENT;
	argv[0] = "/usr/bin/readelf";
	/*
	 * readelf 2.40 exits 1 on libc and ld.so after printing every table (it
	 * fails to follow their .gnu_debuglink, silently): the text decides.
	 */
	rc = test_run(argv, &text, NULL, 120000);
	if (rc < 0 || (rc > 0 && text.len == 0)) {
		strbuf_release(&text);
		return rc < 0 ? rc : -EIO;
	}
	rc = readelf_cfi__parse(text.buf ? text.buf : "", out);
	strbuf_release(&text);
	return rc;
}

void readelf_cfi__free(struct readelf_cfi *t)
{
	if (!t)
		return;
	free(t->rows);
	free(t->sorted);
	free(t->cies);
	free(t);
}

size_t readelf_cfi__nrows(const struct readelf_cfi *t)
{
	return t->nrows;
}

const struct rcfi_row *readelf_cfi__row(const struct readelf_cfi *t, size_t i)
{
	return i < t->nrows ? &t->rows[i] : NULL;
}

/* Binary search among the rows of one section; O(log rows). */
static const struct rcfi_row *find_in(const struct readelf_cfi *t, bool debug_frame, uint64_t addr)
{
	size_t lo = 0, hi = t->nrows;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct rcfi_row *r = &t->rows[t->sorted[mid]];

		if (r->debug_frame != debug_frame ? !r->debug_frame : r->start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	{
		const struct rcfi_row *r = &t->rows[t->sorted[lo - 1]];

		return r->debug_frame == debug_frame && addr >= r->start && addr < r->end ? r
											  : NULL;
	}
}

const struct rcfi_row *readelf_cfi__row_at(const struct readelf_cfi *t, uint64_t addr)
{
	const struct rcfi_row *r = find_in(t, false, addr);

	return r ? r : find_in(t, true, addr);
}

int readelf_cfa_at(const struct readelf_cfi *t, uint64_t addr, int *cfa_reg, int64_t *cfa_off,
		   enum rcfi_rule *rbp_rule, int64_t *rbp_off)
{
	const struct rcfi_row *r = readelf_cfi__row_at(t, addr);

	if (!r)
		return -ENOENT;
	*cfa_reg = r->cfa_reg;
	*cfa_off = r->cfa_off;
	*rbp_rule = r->rbp_rule;
	*rbp_off = r->rbp_off;
	return 0;
}
