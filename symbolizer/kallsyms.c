// SPDX-License-Identifier: MIT
/*
 * symbolizer/kallsyms.c — kernel text symbols from /proc/kallsyms.
 *
 * The table is two parallel arrays sorted by address plus one string arena:
 *
 *   syms[i]  struct sym_ksym (24 bytes), name/module point into the arena
 *   pad[i]   bytes of __pfx_/__cfi_ padding in front of syms[i] (see below)
 *
 * On kernel 6.18 x86 /proc/kallsyms has ~122k text lines of which ~58k are
 * __pfx_ padding symbols; folding those and duplicate addresses away leaves
 * ~64k entries, about 3 MB in all (measured: see sym_kallsyms__bytes()).
 *
 * __pfx_ (and __cfi_) symbols: since 6.2, x86 kernels built with
 * CONFIG_FUNCTION_PADDING_ALIGNMENT put 16 bytes in front of every function
 * and name them "__pfx_<func>" (kCFI builds: "__cfi_<func>"). That code is
 * NOPs, a call-depth-tracking thunk or a FineIBT hash check, and it always
 * falls through into <func> (objtool relies on this, see check.c "Ignore
 * KCFI type preambles, which always fall through"). So a sample in there is
 * spent entering <func>, and we attribute it to <func>: the prefix symbol
 * is dropped and pad[] records how far below syms[i].addr the function's
 * range starts. Dropping it instead of keeping it as its own entry also
 * saves ~40% of the table. A prefix symbol with no function right after it
 * (an "orphan") is kept under its own name: that is the truth we know.
 */
#include "symbolizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

/* KSYM_NAME_LEN is 512 since 6.1 (include/linux/kallsyms.h). */
#define KSYM_NAME_MAX 512
/* MODULE_NAME_LEN is 56; BPF programs and ftrace use "[bpf]", "[__builtin__ftrace]". */
#define KSYM_MODULE_MAX 255
/* "%px %c %s\t[%s]\n" with the longest name and module, generously rounded. */
#define KSYM_LINE_MAX 1024
/* Largest prefix padding we fold into the next function (x86 uses 16). */
#define KSYM_PAD_MAX 64
/* How far past the last symbol of vmlinux or a module an address may lie. */
#define KSYM_LAST_SPAN (1ULL << 20)

struct sym_kallsyms {
	struct sym_ksym *syms;
	uint8_t *pad;
	size_t n;
	char *arena;
	size_t arena_len;
};

/* One parsed line, before sorting and folding; indexes into the parse arena. */
struct kent {
	uint64_t addr;
	uint32_t name; /* offset into the parse arena */
	uint16_t mod; /* 0 = vmlinux, else index + 1 into the module list */
	uint8_t rank; /* symbol type preference, see type_rank(); 0xff = dropped */
	uint8_t pad;
};

#define RANK_DROPPED 0xff

/*
 * Preference among symbols at one address, lower is better: global over
 * weak over local, as in dso.c. 'w' comes last: nm(1) uses it for weak
 * symbols that were not defined where they were linked.
 */
static int type_rank(char t)
{
	switch (t) {
	case 'T':
		return 0;
	case 'W':
		return 1;
	case 't':
		return 2;
	case 'w':
		return 3;
	default:
		return -1;
	}
}
static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static const char *skip_blanks(const char *p)
{
	while (is_blank(*p))
		p++;
	return p;
}

static bool is_prefix_sym(const char *name)
{
	return strncmp(name, "__pfx_", 6) == 0 || strncmp(name, "__cfi_", 6) == 0;
}

static int leading_underscores(const char *s)
{
	int n = 0;

	while (s[n] == '_')
		n++;
	return n;
}

/* Everything the parser accumulates; freed once the final table is built. */
struct kparse {
	struct kent *ents;
	size_t n, cap;
	struct strbuf names; /* NUL-separated names */
	uint32_t *mods; /* module name offsets into @names */
	size_t nmods, modcap;
	uint16_t last_mod; /* modules come in runs: try the previous one first */
	size_t nbad;
	size_t nlines; /* well-formed lines, text or not */
	size_t nnonzero; /* ... of which have a non-zero address */
};

static uint32_t arena_add(struct strbuf *sb, const char *s, size_t len)
{
	uint32_t off = (uint32_t)sb->len;

	strbuf_add(sb, s, len);
	strbuf_addc(sb, '\0');
	return off;
}

/* Module index (1-based) for a module name, interned; 0 when the list is full. */
static uint16_t intern_module(struct kparse *ps, const char *m, size_t len)
{
	size_t i;

	if (ps->last_mod) {
		const char *s = ps->names.buf + ps->mods[ps->last_mod - 1];

		if (strlen(s) == len && memcmp(s, m, len) == 0)
			return ps->last_mod;
	}
	/* O(modules) on each change of module; there are a few hundred at most. */
	for (i = 0; i < ps->nmods; i++) {
		const char *s = ps->names.buf + ps->mods[i];

		if (strlen(s) == len && memcmp(s, m, len) == 0)
			return ps->last_mod = (uint16_t)(i + 1);
	}
	if (ps->nmods >= UINT16_MAX)
		return 0;
	xgrow((void **)&ps->mods, &ps->modcap, ps->nmods + 1, sizeof(*ps->mods));
	ps->mods[ps->nmods++] = arena_add(&ps->names, m, len);
	return ps->last_mod = (uint16_t)ps->nmods;
}

/*
 * Parses one line "ADDR TYPE NAME [MODULE]" (without its newline).
 * Returns false for a malformed line.
 */
static bool parse_line(struct kparse *ps, const char *line, size_t len)
{
	const char *p = line, *name, *mod = NULL;
	size_t name_len, mod_len = 0;
	uint64_t addr;
	struct kent *e;
	uint16_t modidx = 0;
	uint8_t pad = 0;
	char type;
	int rank;

	if (len > KSYM_LINE_MAX || strlen(line) != len)
		return false; /* overlong, or a NUL inside the line */
	p = parse_hex_u64(p, &addr);
	if (!p || !is_blank(*p))
		return false;
	p = skip_blanks(p);
	type = *p++;
	if (!type || !is_blank(*p))
		return false;
	name = skip_blanks(p);
	for (p = name; *p && !is_blank(*p); p++)
		;
	name_len = (size_t)(p - name);
	if (!name_len || name_len > KSYM_NAME_MAX)
		return false;
	p = skip_blanks(p);
	if (*p == '[') {
		mod = ++p;
		while (*p && *p != ']' && !is_blank(*p))
			p++;
		mod_len = (size_t)(p - mod);
		if (*p != ']' || !mod_len || mod_len > KSYM_MODULE_MAX)
			return false;
		p = skip_blanks(p + 1);
	}
	if (*p)
		return false; /* trailing garbage */

	ps->nlines++;
	if (addr)
		ps->nnonzero++;
	rank = type_rank(type);
	/* Data symbols are not an error, just not ours; a text symbol at 0 is unusable. */
	if (rank < 0 || !addr)
		return true;

	if (mod) {
		modidx = intern_module(ps, mod, mod_len);
		if (!modidx)
			return false;
	}
	/*
	 * The kernel prints __pfx_F right before F: fold it now rather than
	 * in fold_prefixes(), which halves the memory the parse needs.
	 */
	if (ps->n) {
		struct kent *prev = &ps->ents[ps->n - 1];
		const char *pn = ps->names.buf + prev->name;

		if (prev->mod == modidx && addr > prev->addr && addr - prev->addr <= KSYM_PAD_MAX &&
		    is_prefix_sym(pn) && strlen(pn + 6) == name_len &&
		    !memcmp(pn + 6, name, name_len)) {
			pad = (uint8_t)(addr - prev->addr);
			if (ps->names.len == prev->name + strlen(pn) + 1) {
				ps->names.len = prev->name;
				ps->names.buf[ps->names.len] = '\0';
			}
			ps->n--;
		}
	}
	xgrow((void **)&ps->ents, &ps->cap, ps->n + 1, sizeof(*ps->ents));
	e = &ps->ents[ps->n];
	memset(e, 0, sizeof(*e));
	e->addr = addr;
	e->rank = (uint8_t)rank;
	e->mod = modidx;
	e->pad = pad;
	e->name = arena_add(&ps->names, name, name_len);
	ps->n++;
	return true;
}

/* Sorting needs the arena; qsort has no context argument, qsort_r does (glibc). */
static int cmp_kent(const void *a, const void *b, void *arg)
{
	const struct kent *x = a, *y = b;
	const char *names = arg;
	const char *nx = names + x->name, *ny = names + y->name;
	int d;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/*
	 * Which of several symbols at one address names it, best first:
	 *  1. not a __pfx_/__cfi_ padding symbol: those name the bytes in front
	 *     of a function (only orphans are still here, see fold_prefixes());
	 *  2. global T over weak W over local t over w;
	 *  3. fewer leading underscores: "_text" and "__split_text_start" are
	 *     section markers sharing the address of a real function;
	 *  4. the name, so that the choice never depends on the input order.
	 */
	d = is_prefix_sym(nx) - is_prefix_sym(ny);
	if (d)
		return d;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	d = leading_underscores(nx) - leading_underscores(ny);
	if (d)
		return d;
	return strcmp(nx, ny);
}

/*
 * Drops each __pfx_<f>/__cfi_<f> that has <f> right after it (within
 * KSYM_PAD_MAX bytes, same module) and records the distance as <f>'s pad.
 * Not when another symbol starts between the two: that one keeps its
 * bytes, and the prefix stays an orphan. This also keeps addr - pad sorted,
 * which the binary search in sym_kallsyms__find() relies on.
 * Needs ents sorted by address. O(n): the inner scan sees a few entries.
 */
static void fold_prefixes(struct kparse *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		struct kent *p = &ps->ents[i];
		const char *pname = ps->names.buf + p->name;
		uint64_t other = UINT64_MAX; /* first unrelated symbol above the prefix */

		if (!is_prefix_sym(pname))
			continue;
		for (size_t j = i + 1; j < ps->n; j++) {
			struct kent *f = &ps->ents[j];
			const char *fname = ps->names.buf + f->name;
			uint64_t dist = f->addr - p->addr;

			if (dist > KSYM_PAD_MAX)
				break;
			if (!dist || f->rank == RANK_DROPPED)
				continue;
			if (f->mod == p->mod && !strcmp(fname, pname + 6)) {
				if (other >= f->addr) {
					if (dist > f->pad)
						f->pad = (uint8_t)dist;
					p->rank = RANK_DROPPED;
				}
				break;
			}
			/* __pfx_f and __cfi_f may both precede f */
			if (!(is_prefix_sym(fname) && !strcmp(fname + 6, pname + 6)) &&
			    f->addr < other)
				other = f->addr;
		}
	}
}

static struct sym_kallsyms *build_table(struct kparse *ps)
{
	struct sym_kallsyms *k = xcalloc(1, sizeof(*k));
	const char **modptr = NULL;
	size_t n = 0, bytes = 0, i, j;
	char *w;

	/* Keep the first (best) entry of each address; its pad is the group's largest. */
	for (i = 0; i < ps->n; i = j) {
		struct kent *best = NULL;
		uint8_t pad = 0;

		for (j = i; j < ps->n && ps->ents[j].addr == ps->ents[i].addr; j++) {
			struct kent *e = &ps->ents[j];

			if (e->pad > pad)
				pad = e->pad;
			if (e->rank != RANK_DROPPED && !best)
				best = e;
		}
		if (!best)
			continue;
		best->pad = pad;
		ps->ents[n++] = *best;
		bytes += strlen(ps->names.buf + best->name) + 1;
	}
	for (i = 0; i < ps->nmods; i++)
		bytes += strlen(ps->names.buf + ps->mods[i]) + 1;

	k->n = n;
	k->syms = xcalloc(n, sizeof(*k->syms));
	k->pad = xcalloc(n, sizeof(*k->pad));
	k->arena = xmalloc(bytes);
	k->arena_len = bytes;
	w = k->arena;
	if (ps->nmods) {
		modptr = xcalloc(ps->nmods, sizeof(*modptr));
		for (i = 0; i < ps->nmods; i++) {
			size_t l = strlen(ps->names.buf + ps->mods[i]) + 1;

			memcpy(w, ps->names.buf + ps->mods[i], l);
			modptr[i] = w;
			w += l;
		}
	}
	for (i = 0; i < n; i++) {
		const struct kent *e = &ps->ents[i];
		size_t l = strlen(ps->names.buf + e->name) + 1;

		memcpy(w, ps->names.buf + e->name, l);
		k->syms[i].addr = e->addr;
		k->syms[i].name = w;
		k->syms[i].module = e->mod ? modptr[e->mod - 1] : NULL;
		w += l;
		/*
		 * fold_prefixes() keeps addr - pad sorted; a prefix folded while
		 * parsing may not, when unsorted input has a symbol between it
		 * and its function. That symbol keeps its bytes, as in
		 * fold_prefixes(), and the binary search keeps sorted starts.
		 */
		k->pad[i] = i && e->addr - e->pad < ps->ents[i - 1].addr ? 0 : e->pad;
	}
	free(modptr);
	return k;
}

struct sym_kallsyms *sym_kallsyms__load(const char *path, size_t *nbad)
{
	struct kparse ps = {0};
	struct sym_kallsyms *k = NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int err = 0;

	if (nbad)
		*nbad = 0;
	f = fopen(path, "re");
	if (!f)
		return NULL; /* errno from fopen */
	for (;;) {
		errno = 0;
		len = getline(&line, &cap, f);
		if (len < 0) {
			err = errno;
			break;
		}
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (!parse_line(&ps, line, (size_t)len))
			ps.nbad++;
	}
	if (ferror(f)) {
		err = err ? err : EIO;
		goto out;
	}
	err = 0;
	if (ps.nlines && !ps.nnonzero) {
		err = EPERM; /* kptr_restrict, or no CAP_SYSLOG */
		goto out;
	}
	if (!ps.n) {
		err = ENODATA;
		goto out;
	}
	qsort_r(ps.ents, ps.n, sizeof(*ps.ents), cmp_kent, ps.names.buf);
	fold_prefixes(&ps);
	k = build_table(&ps);
	pr_debug("kallsyms '%s': %zu text symbols kept of %zu, %zu malformed lines", path, k->n,
		 ps.n, ps.nbad);
out:
	if (nbad)
		*nbad = ps.nbad;
	free(line);
	fclose(f);
	free(ps.ents);
	free(ps.mods);
	strbuf_release(&ps.names);
	if (!k)
		errno = err;
	return k;
}

void sym_kallsyms__free(struct sym_kallsyms *k)
{
	if (!k)
		return;
	free(k->syms);
	free(k->pad);
	free(k->arena);
	free(k);
}

size_t sym_kallsyms__count(const struct sym_kallsyms *k)
{
	return k ? k->n : 0;
}

size_t sym_kallsyms__bytes(const struct sym_kallsyms *k)
{
	if (!k)
		return 0;
	return sizeof(*k) + k->n * (sizeof(*k->syms) + sizeof(*k->pad)) + k->arena_len;
}

const struct sym_ksym *sym_kallsyms__find(const struct sym_kallsyms *k, uint64_t addr)
{
	size_t lo = 0, hi, i;

	if (!k || !k->n)
		return NULL;
	/* Highest i whose range start (addr - pad) is <= addr; starts are sorted. */
	hi = k->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->syms[mid].addr - k->pad[mid] <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	i = lo - 1;
	/*
	 * The next symbol bounds this one; the last one of vmlinux or of a
	 * module has nothing after it in its own text, so allow it 1 MiB
	 * rather than swallowing the gap up to the next module.
	 */
	if (addr >= k->syms[i].addr && addr - k->syms[i].addr >= KSYM_LAST_SPAN &&
	    (i + 1 == k->n || k->syms[i + 1].module != k->syms[i].module))
		return NULL;
	return &k->syms[i];
}
