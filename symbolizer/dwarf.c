// SPDX-License-Identifier: MIT
/*
 * symbolizer/dwarf.c — source lines and inline chains from DWARF, via libdw.
 *
 * One libdw session per dso, opened on the first sym_dso__frames() and kept
 * until the dso is destroyed (like perf's util/libdw.c). The DWARF comes
 * from the file itself, else from a separate debug file:
 *
 *   1. ROOT/.build-id/xx/rest.debug for each debug root;
 *   2. the .gnu_debuglink name, in DIR, DIR/.debug and ROOT/DIR for each
 *      root (DIR is the dso's directory), accepted only when the CRC32 of
 *      the whole file matches the one in the link (gdb's rule, see
 *      "Separate Debug Files" in the gdb manual).
 *
 * What a lookup answers is what `eu-addr2line -i -f` (elfutils
 * src/addr2line.c) prints, which the oracle test holds us to:
 *  - the CU from .debug_aranges (dwarf_addrdie), else from a table of CU
 *    ranges built once per dso when the aranges do not cover the address;
 *  - the DIE path to the innermost scope holding the address, found as
 *    dwarf_getscopes() finds it (see descend());
 *  - frame 0: the innermost DW_TAG_subprogram or DW_TAG_inlined_subroutine
 *    on that path for the name, the line table row for file:line;
 *  - every DW_TAG_inlined_subroutine on the path adds a frame: the
 *    enclosing inlined subroutine or subprogram, at the inline's
 *    DW_AT_call_file/line/column;
 *  - names are DW_AT_linkage_name (or DW_AT_MIPS_linkage_name), else
 *    DW_AT_name, following DW_AT_abstract_origin/DW_AT_specification;
 *  - a relative file name is joined to the CU's DW_AT_comp_dir.
 *
 * Cost: libdw decompresses every compressed .debug_* section when the
 * session opens (~30 MB of RSS for Debian's libc debug file after 1,000
 * lookups) and reads abbreviations, line tables and DIEs lazily. The first
 * lookup in a CU walks its DIEs once into a scope index (see "scope index"
 * below: ~27 KB per CU of CPython, ~1 KB per CU of libc, 3-10 % of the
 * session), which answers the following ones by binary search; recent
 * answers are kept in a small direct-mapped cache per dso (~40 KiB).
 *
 * The debug file is located separately from the libdw session, so that
 * dso.c can take a stripped file's .symtab from it without paying for the
 * session (dso_dwarf__debug_elf()).
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../common/util.h"
#include "dso_priv.h"
#include "symbolizer.h"

/* Recent answers kept per dso; a slot holds a chain of up to DW_CACHE_FRAMES. */
#define DW_CACHE_SLOTS 256
#define DW_CACHE_FRAMES 6
/* Deeper inline chains than this are cut (innermost kept, physical frame last). */
#define DW_MAX_FRAMES 64
/* Deeper DIE nesting than this (a crafted file) ends the descent. */
#define DW_MAX_DEPTH 128
/* What a crafted file may make us allocate for the CU range table. */
#define DW_MAX_CU_RANGES (1u << 20)
/*
 * Caps on one CU's scope index (see "scope index" below); a CU over them
 * (a crafted file) is searched by the DIE walk instead. The largest CUs we
 * know (CPython's, libc's) have under 10,000 scopes.
 */
#define DW_IX_MAX_SCOPES (1u << 17)
#define DW_IX_MAX_RANGES (1u << 18)
#define DW_IX_MAX_VISITS (1u << 22) /* DIEs looked at while building, imported units included */
#define DW_IX_NONE UINT32_MAX
/* All the indexes of a dso take at most a quarter of its session's estimate (plus 1 MiB). */
#define DW_IX_SHARE 4

struct cache_slot {
	uint64_t vaddr;
	int n; /* frames, or -errno; 0 = empty slot */
	struct sym_frame fr[DW_CACHE_FRAMES];
};

/* A relative source name joined to its CU's comp_dir, interned. */
struct path_ent {
	const char *dir, *src; /* libdw's strings: the key */
	char *full; /* owned */
};

struct cu_range {
	uint64_t lo, hi; /* [lo, hi) */
	Dwarf_Off off; /* the CU DIE */
};

struct addr_range {
	uint64_t lo, hi; /* [lo, hi) */
};

/*
 * The scope index of a CU: every DIE that descend() could put on a path
 * (each with a non-empty range), with its parent, in DIE order (imported
 * units spliced in place), so that "the first child holding pc" is the
 * holding child with the lowest index.
 */
struct ix_scope {
	uint32_t parent; /* DW_IX_NONE for the CU's children */
	uint32_t kids, nkids; /* its children's ranges: ix->iv[kids, kids + nkids) */
	uint32_t die; /* ix->dies index for function-like tags, else DW_IX_NONE */
	int tag;
};

/*
 * A range of a scope, relative to ix->base: [lo, hi). The ranges of one
 * parent's children are contiguous and sorted by lo; maxhi is the largest
 * hi from the start of that group to here, which bounds the search back.
 */
struct ix_range {
	uint32_t lo, hi, maxhi, scope;
};

struct cu_index {
	Dwarf_Off off; /* the CU DIE: the key */
	bool failed; /* over a cap: use the DIE walk */
	uint64_t base;
	struct ix_scope *sc;
	struct ix_range *iv;
	Dwarf_Die *dies; /* of the function-like scopes, for names and call sites */
	uint32_t nsc, niv, ndies;
	uint32_t top, ntop; /* the CU's children's ranges */
	struct addr_range *cu_iv; /* the CU's own ranges, merged and sorted */
	size_t ncu_iv;
	const char *comp_dir;
	size_t bytes;
};

/* A range as the walk finds it, before ix_finish() groups it by parent. */
struct ix_raw {
	uint64_t lo, hi;
	uint32_t parent, scope;
};

struct dso_dwarf {
	/* Step 1, locate: the ELF file with .debug_info (the dso or its debug file). */
	Elf *elf; /* NULL when there is none */
	int fd; /* the separate debug file's, owned; -1 when the DWARF is in the dso */
	char *debug_path; /* owned; NULL when the DWARF is in the dso */
	/* Step 2, the libdw session on it, opened on the first lookup. */
	bool session_tried;
	int err; /* 0 when dw is usable, else -ENODATA, or -ENOBUFS over budget */
	uint64_t reserved; /* budget bytes taken for the session */
	uint64_t refused_at; /* dso__dwarf_releases() when the budget refused us */
	uint64_t used_ns; /* CLOCK_MONOTONIC of the last sym_dso__frames() */
	Dwarf *dw;
	bool has_lines; /* a non-empty .debug_line */

	struct cu_range *cus; /* sorted by lo; built on the first aranges miss */
	size_t ncus;
	bool cus_built;

	struct cache_slot *cache; /* DW_CACHE_SLOTS, allocated on the first lookup */

	struct path_ent *paths; /* open addressing, npaths < paths_cap / 2 */
	size_t npaths, paths_cap;

	struct cu_index **ix; /* open addressing by CU offset, nix < ix_cap / 2 */
	size_t nix, ix_cap;
	size_t ix_bytes; /* held by the indexes; at most DW_IX_SHARE of the session */
	/* Scratch for building an index, kept for the next CU. */
	struct ix_raw *ix_raw;
	struct ix_scope *ix_sc;
	Dwarf_Die *ix_dies;
	uint32_t *ix_count;
	size_t ix_raw_cap, ix_sc_cap, ix_dies_cap, ix_count_cap;
};

/* ---- interned paths ---------------------------------------------------- */

static uint64_t path_hash(const char *dir, const char *src)
{
	return hash_u64((uintptr_t)dir * 31 + (uintptr_t)src, 0x3c6ef372fe94f82bULL);
}

static void paths_grow(struct dso_dwarf *dw)
{
	struct path_ent *old = dw->paths;
	size_t ocap = dw->paths_cap;

	dw->paths_cap = ocap ? ocap * 2 : 64;
	dw->paths = xcalloc(dw->paths_cap, sizeof(*dw->paths));
	for (size_t i = 0; i < ocap; i++) {
		size_t j;

		if (!old[i].full)
			continue;
		j = path_hash(old[i].dir, old[i].src) & (dw->paths_cap - 1);
		while (dw->paths[j].full)
			j = (j + 1) & (dw->paths_cap - 1);
		dw->paths[j] = old[i];
	}
	free(old);
}

/*
 * "DIR/SRC", as addr2line prints a relative name (print_src()). The keys
 * are libdw's string pointers, which are stable while the session is open;
 * the number of entries is bounded by the file tables of the DWARF.
 */
static const char *path_join(struct dso_dwarf *dw, const char *dir, const char *src)
{
	struct path_ent *e;
	size_t j, ld, ls;

	if (2 * (dw->npaths + 1) > dw->paths_cap)
		paths_grow(dw);
	j = path_hash(dir, src) & (dw->paths_cap - 1);
	for (; dw->paths[j].full; j = (j + 1) & (dw->paths_cap - 1))
		if (dw->paths[j].dir == dir && dw->paths[j].src == src)
			return dw->paths[j].full;
	e = &dw->paths[j];
	ld = strlen(dir);
	ls = strlen(src);
	e->dir = dir;
	e->src = src;
	e->full = xmalloc(ld + ls + 2);
	memcpy(e->full, dir, ld);
	e->full[ld] = '/';
	memcpy(e->full + ld + 1, src, ls + 1);
	dw->npaths++;
	return e->full;
}

/* @src joined to @dir (the CU's comp_dir, may be NULL) when it is relative; NULL stays NULL. */
static const char *full_path(struct dso_dwarf *dw, const char *dir, const char *src)
{
	if (!src || src[0] == '/')
		return src;
	return dir ? path_join(dw, dir, src) : src;
}

/* ---- opening the DWARF ------------------------------------------------- */

static void session_end(struct dso_dwarf *dw)
{
	if (dw->dw)
		dwarf_end(dw->dw);
	if (dw->elf)
		elf_end(dw->elf);
	if (dw->fd >= 0)
		close(dw->fd);
	dw->dw = NULL;
	dw->elf = NULL;
	dw->fd = -1;
}

static void cu_index_free(struct cu_index *ci)
{
	if (!ci)
		return;
	free(ci->sc);
	free(ci->iv);
	free(ci->dies);
	free(ci->cu_iv);
	free(ci);
}

uint64_t dso_dwarf__bytes(const struct dso_dwarf *dw)
{
	return dw ? dw->reserved : 0;
}

bool dso_dwarf__unused_since(const struct dso_dwarf *dw, uint64_t before_ns)
{
	return dw && dw->used_ns < before_ns;
}

void dso_dwarf__free(struct dso_dwarf *dw, struct sym_stats *st)
{
	if (!dw)
		return;
	if (st && dw->dw)
		st->dwarf_loaded--;
	if (st && dw->reserved)
		dso_dwarf__released(st, dw->reserved);
	if (dw->nix)
		pr_debug("DWARF %s: scope indexes of %zu CUs, %zu bytes (session estimate %" PRIu64
			 " bytes)",
			 dw->debug_path ? dw->debug_path : "in the dso", dw->nix, dw->ix_bytes,
			 dw->reserved);
	session_end(dw);
	for (size_t i = 0; i < dw->paths_cap; i++)
		free(dw->paths[i].full);
	free(dw->paths);
	for (size_t i = 0; i < dw->ix_cap; i++)
		cu_index_free(dw->ix[i]);
	free(dw->ix);
	free(dw->ix_raw);
	free(dw->ix_sc);
	free(dw->ix_dies);
	free(dw->ix_count);
	free(dw->cus);
	free(dw->cache);
	free(dw->debug_path);
	free(dw);
}

/* The section named @name with file bytes (not SHT_NOBITS), or NULL. */
static Elf_Scn *find_section(Elf *elf, const char *name)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS || !sh.sh_size)
			continue;
		n = elf_strptr(elf, shstrndx, sh.sh_name);
		if (n && !strcmp(n, name))
			return scn;
	}
	return NULL;
}

static bool has_debug_info(Elf *elf)
{
	return find_section(elf, ".debug_info") || find_section(elf, ".zdebug_info");
}

/* CRC32 (zlib's, which is the one .gnu_debuglink uses) of the whole file. */
static int file_crc32(int fd, uint32_t *crc)
{
	unsigned char buf[1 << 16];
	uLong c = crc32(0L, Z_NULL, 0);
	off_t off = 0;
	ssize_t n;

	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		c = crc32(c, buf, (uInt)n);
		off += n;
	}
	if (n < 0)
		return -errno;
	*crc = (uint32_t)c;
	return 0;
}

/*
 * Tries @path as a debug file for @d: a regular ELF file with DWARF, not @d
 * itself, and when @want_crc, with that CRC32. True when the session is open.
 */
static bool try_debug_file(struct dso_dwarf *dw, struct sym_dso *d, const char *path, bool want_crc,
			   uint32_t crc)
{
	struct stat st, self;
	uint32_t got;
	Elf *elf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > SYM_DSO_MAX_FILE_SIZE ||
	    (!fstat(dso__fd(d), &self) && self.st_dev == st.st_dev && self.st_ino == st.st_ino))
		goto fail;
	if (want_crc) {
		if (file_crc32(fd, &got))
			goto fail;
		if (got != crc) {
			pr_debug("dso '%s': debug file '%s' has CRC %08x, the link wants %08x",
				 sym_dso__path(d), path, got, crc);
			goto fail;
		}
	}
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || !has_debug_info(elf)) {
		elf_end(elf);
		goto fail;
	}
	dw->fd = fd;
	dw->elf = elf;
	dw->debug_path = xstrdup(path);
	return true;
fail:
	close(fd);
	return false;
}

/*
 * The .gnu_debuglink name and CRC: the name NUL-terminated, padded to 4
 * bytes, then the CRC32 in the file's byte order. False when absent or
 * malformed, or when the name is not a plain file name.
 */
static bool read_debuglink(Elf *elf, char *name, size_t len, uint32_t *crc)
{
	Elf_Scn *scn = find_section(elf, ".gnu_debuglink");
	Elf_Data *data = scn ? elf_rawdata(scn, NULL) : NULL;
	const unsigned char *p, *c;
	GElf_Ehdr eh;
	size_t l, crc_off;

	if (!data || !data->d_buf || !gelf_getehdr(elf, &eh))
		return false;
	p = data->d_buf;
	l = strnlen((const char *)p, data->d_size);
	crc_off = (l + 4) & ~(size_t)3;
	if (!l || l >= len || crc_off + 4 > data->d_size || memchr(p, '/', l) ||
	    !strcmp((const char *)p, ".") || !strcmp((const char *)p, ".."))
		return false;
	memcpy(name, p, l + 1);
	c = p + crc_off;
	if (eh.e_ident[EI_DATA] == ELFDATA2MSB)
		*crc = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
	else
		*crc = (uint32_t)c[3] << 24 | (uint32_t)c[2] << 16 | (uint32_t)c[1] << 8 | c[0];
	return true;
}

/* Step 1 for a file without DWARF: a separate debug file. True when dw->elf is set. */
static bool find_separate(struct dso_dwarf *dw, struct sym_dso *d, Elf *self)
{
	const char *bid = sym_dso__build_id(d), *path = sym_dso__path(d), *slash;
	const char *const *roots;
	char buf[PATH_MAX], name[NAME_MAX + 1], dir[PATH_MAX];
	size_t nroots;
	uint32_t crc;

	roots = dso__debug_roots(d, &nroots);
	if (bid && strlen(bid) > 2) {
		for (size_t i = 0; i < nroots; i++) {
			if ((size_t)snprintf(buf, sizeof(buf), "%s/.build-id/%.2s/%s.debug",
					     roots[i], bid, bid + 2) >= sizeof(buf))
				continue;
			if (try_debug_file(dw, d, buf, /*want_crc=*/false, 0))
				return true;
		}
	}
	if (!read_debuglink(self, name, sizeof(name), &crc))
		return false;
	slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		dir[0] = '\0'; /* "/foo": DIR is the root, written as "" so that DIR/name is "/name"
				*/
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return false;
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", dir, name) < sizeof(buf) &&
	    try_debug_file(dw, d, buf, true, crc))
		return true;
	if ((size_t)snprintf(buf, sizeof(buf), "%s/.debug/%s", dir, name) < sizeof(buf) &&
	    try_debug_file(dw, d, buf, true, crc))
		return true;
	/* ROOT/DIR/name only makes sense for an absolute DIR. */
	if (path[0] != '/')
		return false;
	for (size_t i = 0; i < nroots; i++)
		if ((size_t)snprintf(buf, sizeof(buf), "%s%s/%s", roots[i], dir, name) <
			    sizeof(buf) &&
		    try_debug_file(dw, d, buf, true, crc))
			return true;
	return false;
}

/* The dso's DWARF state with step 1 done: dw->elf is the file with .debug_info, or NULL. */
static struct dso_dwarf *dwarf_locate(struct sym_dso *d)
{
	struct dso_dwarf **slot = dso__dwarf_slot(d), *dw = *slot;
	Elf *elf;

	if (dw)
		return dw;
	dw = xcalloc(1, sizeof(*dw));
	dw->fd = -1;
	dw->err = -ENODATA;
	dw->used_ns = now_mono_ns(); /* located for a reason: not unused since before */
	*slot = dw;
	if (!dso__elf_ok(d) || dso__fd(d) < 0)
		return dw;
	elf = elf_begin(dso__fd(d), ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		elf_end(elf);
		return dw;
	}
	if (has_debug_info(elf)) {
		/* On the dso's own fd, which the dso keeps open longer than this. */
		dw->elf = elf;
		return dw;
	}
	find_separate(dw, d, elf);
	elf_end(elf);
	return dw;
}

/*
 * What a libdw session on @elf will cost: three times the uncompressed size
 * of its .debug_* sections (see sym_dsos__set_dwarf_budget for the
 * measurement behind the factor).
 */
static uint64_t session_cost(Elf *elf)
{
	Elf_Scn *scn = NULL;
	uint64_t sum = 0;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return 0;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		GElf_Chdr ch;
		const char *name;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name || (strncmp(name, ".debug_", 7) && strncmp(name, ".zdebug_", 8)))
			continue;
		if ((sh.sh_flags & SHF_COMPRESSED) && gelf_getchdr(scn, &ch))
			sum += ch.ch_size;
		else
			sum += sh.sh_size;
	}
	/* Saturating: a crafted ch_size must not wrap into a small cost. */
	return sum > UINT64_MAX / 3 ? UINT64_MAX : 3 * sum;
}

/* The dso's DWARF state with the libdw session open if possible; dw->err says. */
static struct dso_dwarf *dwarf_get(struct sym_dso *d)
{
	struct dso_dwarf *dw = dwarf_locate(d);
	uint64_t cost;
	struct sym_stats *st = dso__stats(d);
	const char *from = dw->debug_path ? dw->debug_path : "the file itself";

	/*
	 * Refused for the budget: try again once memory was given back (a file
	 * freed, an idle session evicted), not forever.
	 */
	if (dw->session_tried && !(dw->err == -ENOBUFS && dso__dwarf_releases(d) != dw->refused_at))
		return dw;
	dw->session_tried = true;
	if (!dw->elf) {
		pr_debug("dso '%s': no DWARF", sym_dso__path(d));
		return dw;
	}
	cost = session_cost(dw->elf);
	if (!dso__dwarf_reserve(d, cost)) {
		dw->err = -ENOBUFS;
		dw->refused_at = dso__dwarf_releases(d);
		pr_debug("dso '%s': DWARF session (about %" PRIu64 " MB) over the budget",
			 sym_dso__path(d), cost >> 20);
		return dw;
	}
	dw->dw = dwarf_begin_elf(dw->elf, DWARF_C_READ, NULL);
	if (!dw->dw) {
		/* Nothing is held: give the budget back at once. */
		dso__dwarf_release(d, cost);
		dw->err = -ENODATA;
		pr_debug("dso '%s': bad DWARF in %s: %s", sym_dso__path(d), from, dwarf_errmsg(-1));
		return dw;
	}
	dw->reserved = cost;
	dw->err = 0;
	dw->has_lines =
		find_section(dw->elf, ".debug_line") || find_section(dw->elf, ".zdebug_line");
	if (st)
		st->dwarf_loaded++;
	pr_debug("dso '%s': DWARF from %s", sym_dso__path(d), from);
	return dw;
}

Elf *dso_dwarf__debug_elf(struct sym_dso *d, uint64_t *size)
{
	struct dso_dwarf *dw = dwarf_locate(d);
	struct stat st;

	if (!dw->elf || dw->fd < 0 || fstat(dw->fd, &st))
		return NULL;
	*size = (uint64_t)st.st_size;
	return dw->elf;
}

bool sym_dso__has_lines(struct sym_dso *d)
{
	struct dso_dwarf *dw = dwarf_get(d);

	return !dw->err && dw->has_lines;
}

/* ---- CUs by address -------------------------------------------------------- */

static int cmp_cu_range(const void *a, const void *b)
{
	const struct cu_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

/*
 * The ranges of every CU, for files whose .debug_aranges is missing (clang
 * emits none by default) or does not cover every CU. O(CUs) once.
 */
static void build_cu_ranges(struct dso_dwarf *dw)
{
	Dwarf_Off off = 0, next;
	size_t hsize, cap = 0;

	dw->cus_built = true;
	while (dwarf_nextcu(dw->dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Addr base, lo, hi;
		Dwarf_Die cu;
		ptrdiff_t r = 0;

		if (dwarf_offdie(dw->dw, off + hsize, &cu)) {
			while ((r = dwarf_ranges(&cu, r, &base, &lo, &hi)) > 0) {
				if (hi <= lo)
					continue;
				if (dw->ncus >= DW_MAX_CU_RANGES)
					goto out;
				xgrow((void **)&dw->cus, &cap, dw->ncus + 1, sizeof(*dw->cus));
				dw->cus[dw->ncus++] = (struct cu_range){lo, hi, off + hsize};
			}
		}
		if (next <= off)
			break;
		off = next;
	}
out:
	if (dw->ncus)
		qsort(dw->cus, dw->ncus, sizeof(*dw->cus), cmp_cu_range);
}

static bool find_cu(struct dso_dwarf *dw, uint64_t vaddr, Dwarf_Die *cu)
{
	size_t lo = 0, hi;

	if (dwarf_addrdie(dw->dw, vaddr, cu))
		return true;
	if (!dw->cus_built)
		build_cu_ranges(dw);
	hi = dw->ncus;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (dw->cus[mid].lo <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Ranges of different CUs should not overlap; look back a little in case they do. */
	for (size_t k = 0; k < 4 && k < lo; k++) {
		const struct cu_range *r = &dw->cus[lo - 1 - k];

		if (vaddr < r->hi)
			return dwarf_offdie(dw->dw, r->off, cu) != NULL;
	}
	return false;
}

/* ---- lookups ---------------------------------------------------------------- */

/* addr2line's get_diename(): the linkage name, else the name; NULL when none. */
static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name;

	name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr)
					?: dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
	return name ? name : dwarf_diename(die);
}

static bool is_function(int tag)
{
	return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
	       tag == DW_TAG_entry_point;
}

static int attr_udata(Dwarf_Die *die, unsigned int name, Dwarf_Word *val)
{
	Dwarf_Attribute attr;

	return dwarf_formudata(dwarf_attr(die, name, &attr), val);
}

/* The symbol table's name for @file_offset, for addresses DWARF has a line but no scope for. */
static const char *symtab_name(struct sym_dso *d, uint64_t file_offset)
{
	struct sym_result r;

	return sym_dso__resolve(d, file_offset, &r, NULL) == 0 ? r.name : "??";
}

/* The tags descend() enters: the scopes that can hold a function or an inline. */
static bool is_scope(int tag)
{
	switch (tag) {
	case DW_TAG_module:
	case DW_TAG_lexical_block:
	case DW_TAG_with_stmt:
	case DW_TAG_catch_block:
	case DW_TAG_try_block:
	case DW_TAG_entry_point:
	case DW_TAG_inlined_subroutine:
	case DW_TAG_subprogram:
		return true;
	default:
		return false;
	}
}

/*
 * The DIE path from @parent's children down to the innermost DIE whose
 * ranges hold @pc, appended to @path (innermost last): at each level the
 * first child holding @pc, as dwarf_getscopes() finds it (libdw's
 * pc_match()/pc_record()), but without its second walk, and without the
 * whole-CU walk of dwarf_getscopes_die() that eu-addr2line adds to get the
 * concrete chain: this visits only the siblings along the path. An
 * imported unit (dwz) is searched in place, adding no level. Returns the
 * new depth. The scope index answers the same from memory; this walk is
 * for the CUs over its caps.
 */
static int descend(Dwarf_Die *parent, uint64_t pc, Dwarf_Die *path, int depth, int hops)
{
	Dwarf_Die child;

	if (depth >= DW_MAX_DEPTH || hops > 8 || dwarf_child(parent, &child) != 0)
		return depth;
	do {
		int tag = dwarf_tag(&child);

		if (tag == DW_TAG_imported_unit) {
			Dwarf_Attribute attr;
			Dwarf_Die unit;
			int d;

			if (dwarf_formref_die(dwarf_attr(&child, DW_AT_import, &attr), &unit) &&
			    (d = descend(&unit, pc, path, depth, hops + 1)) > depth)
				return d;
			continue;
		}
		/* Errors (no ranges, bad ranges) count as "not here", as in pc_match(). */
		if (dwarf_haspc(&child, pc) <= 0)
			continue;
		path[depth++] = child;
		if (is_scope(tag))
			return descend(&child, pc, path, depth, hops);
		return depth;
	} while (dwarf_siblingof(&child, &child) == 0);
	return depth;
}

/* ---- scope index ------------------------------------------------------------ */

/*
 * descend() costs a walk over the siblings along the path in libdw for
 * every address (dwarf_siblingof, dwarf_ranges, and libdw's locks), which
 * was most of the time of a lookup. The index does that walk once per CU,
 * on the first lookup landing in it, and keeps what descend() looks at:
 * every DIE it could put on a path, with its ranges. A lookup is then a
 * binary search per level of the path. It costs ~40 bytes per scope, a few
 * percent of the libdw session (see DW_IX_SHARE).
 */

struct ix_build {
	struct cu_index *ci;
	struct ix_raw *raw;
	size_t nraw, raw_cap, sc_cap, dies_cap, visits;
	bool over;
};

/* descend() over every pc at once: the same DIEs, levels, order and limits. */
static void ix_walk(struct ix_build *b, Dwarf_Die *parent, uint32_t pidx, int depth, int hops)
{
	struct cu_index *ci = b->ci;
	Dwarf_Die child;

	if (depth >= DW_MAX_DEPTH || hops > 8 || dwarf_child(parent, &child) != 0)
		return;
	do {
		int tag = dwarf_tag(&child);
		Dwarf_Addr base, lo, hi;
		size_t first = b->nraw;
		uint32_t idx = ci->nsc;
		ptrdiff_t r = 0;

		if (b->over || ++b->visits > DW_IX_MAX_VISITS) {
			b->over = true;
			return;
		}
		if (tag == DW_TAG_imported_unit) {
			Dwarf_Attribute attr;
			Dwarf_Die unit;

			if (dwarf_formref_die(dwarf_attr(&child, DW_AT_import, &attr), &unit))
				ix_walk(b, &unit, pidx, depth, hops + 1);
			continue;
		}
		/* The ranges read before an error count, as in dwarf_haspc(). */
		while ((r = dwarf_ranges(&child, r, &base, &lo, &hi)) > 0) {
			if (hi <= lo)
				continue;
			if (b->nraw >= DW_IX_MAX_RANGES) {
				b->over = true;
				return;
			}
			xgrow((void **)&b->raw, &b->raw_cap, b->nraw + 1, sizeof(*b->raw));
			b->raw[b->nraw++] = (struct ix_raw){lo, hi, pidx, idx};
		}
		if (b->nraw == first)
			continue;
		if (ci->nsc >= DW_IX_MAX_SCOPES) {
			b->over = true;
			return;
		}
		xgrow((void **)&ci->sc, &b->sc_cap, ci->nsc + 1, sizeof(*ci->sc));
		ci->sc[idx] = (struct ix_scope){pidx, 0, 0, DW_IX_NONE, tag};
		if (is_function(tag)) {
			xgrow((void **)&ci->dies, &b->dies_cap, ci->ndies + 1, sizeof(*ci->dies));
			ci->sc[idx].die = ci->ndies;
			ci->dies[ci->ndies++] = child;
		}
		ci->nsc++;
		if (is_scope(tag))
			ix_walk(b, &child, idx, depth + 1, hops);
	} while (dwarf_siblingof(&child, &child) == 0);
}

static int cmp_ix_range(const void *a, const void *b)
{
	const struct ix_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->scope < y->scope ? -1 : x->scope > y->scope;
}

static int cmp_addr_range(const void *a, const void *b)
{
	const struct addr_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Shrinks @p to @n elements of @size (an allocation of 0 becomes NULL). */
static void *shrink(void *p, size_t n, size_t size)
{
	if (!n) {
		free(p);
		return NULL;
	}
	return xrealloc(p, n * size);
}

/* A copy of @n elements of @size from @p, NULL when none. */
static void *dup_array(const void *p, size_t n, size_t size)
{
	return n ? memcpy(xmalloc(n * size), p, n * size) : NULL;
}

/*
 * The ranges into ci->iv, grouped by parent (a counting sort: the walk
 * gives them in DIE order, which within a group is nearly always address
 * order already), each group sorted by lo. False when they span 4 GiB or
 * more.
 */
static bool ix_finish(struct dso_dwarf *dw, struct cu_index *ci, const struct ix_raw *raw, size_t n)
{
	uint64_t base = UINT64_MAX, top = 0;
	uint32_t *at, ngroups = ci->nsc + 1; /* group nsc: the CU's children */

	for (size_t i = 0; i < n; i++) {
		base = raw[i].lo < base ? raw[i].lo : base;
		top = raw[i].hi > top ? raw[i].hi : top;
	}
	if (!n || top - base > UINT32_MAX)
		return !n;
	ci->base = base;
	ci->iv = xmalloc(n * sizeof(*ci->iv));
	ci->niv = (uint32_t)n;
	xgrow((void **)&dw->ix_count, &dw->ix_count_cap, ngroups + 1, sizeof(*dw->ix_count));
	at = dw->ix_count;
	memset(at, 0, (ngroups + 1) * sizeof(*at));
	for (size_t i = 0; i < n; i++)
		at[(raw[i].parent == DW_IX_NONE ? ci->nsc : raw[i].parent) + 1]++;
	for (uint32_t g = 0; g < ngroups; g++)
		at[g + 1] += at[g];
	/* at[g] is the start of group g; it moves to its end as the group fills. */
	for (size_t i = 0; i < n; i++) {
		uint32_t g = raw[i].parent == DW_IX_NONE ? ci->nsc : raw[i].parent;

		ci->iv[at[g]++] = (struct ix_range){(uint32_t)(raw[i].lo - base),
						    (uint32_t)(raw[i].hi - base), 0, raw[i].scope};
	}
	for (uint32_t g = 0, b = 0; g < ngroups; b = at[g++]) {
		struct ix_range *v = ci->iv + b;
		uint32_t len = at[g] - b;
		bool sorted = true;

		for (uint32_t i = 1; i < len && sorted; i++)
			sorted = v[i - 1].lo < v[i].lo ||
				 (v[i - 1].lo == v[i].lo && v[i - 1].scope < v[i].scope);
		if (!sorted)
			qsort(v, len, sizeof(*v), cmp_ix_range);
		for (uint32_t i = 0; i < len; i++)
			v[i].maxhi = i && v[i - 1].maxhi > v[i].hi ? v[i - 1].maxhi : v[i].hi;
		if (g == ci->nsc) {
			ci->top = b;
			ci->ntop = len;
		} else {
			ci->sc[g].kids = b;
			ci->sc[g].nkids = len;
		}
	}
	return true;
}

/* The CU's own ranges, merged, for "does the CU hold pc" (dwarf_haspc() on it). */
static void ix_cu_ranges(struct cu_index *ci, Dwarf_Die *cu)
{
	Dwarf_Addr base, lo, hi;
	size_t cap = 0, n = 0;
	ptrdiff_t r = 0;

	while ((r = dwarf_ranges(cu, r, &base, &lo, &hi)) > 0) {
		if (hi <= lo)
			continue;
		if (ci->ncu_iv >= DW_IX_MAX_RANGES) {
			ci->failed = true;
			return;
		}
		xgrow((void **)&ci->cu_iv, &cap, ci->ncu_iv + 1, sizeof(*ci->cu_iv));
		ci->cu_iv[ci->ncu_iv++] = (struct addr_range){lo, hi};
	}
	if (!ci->ncu_iv)
		return;
	qsort(ci->cu_iv, ci->ncu_iv, sizeof(*ci->cu_iv), cmp_addr_range);
	for (size_t i = 1; i < ci->ncu_iv; i++) {
		if (ci->cu_iv[i].lo <= ci->cu_iv[n].hi) {
			if (ci->cu_iv[i].hi > ci->cu_iv[n].hi)
				ci->cu_iv[n].hi = ci->cu_iv[i].hi;
		} else {
			ci->cu_iv[++n] = ci->cu_iv[i];
		}
	}
	ci->ncu_iv = n + 1;
	ci->cu_iv = shrink(ci->cu_iv, ci->ncu_iv, sizeof(*ci->cu_iv));
}

/*
 * Builds the index of @cu; ci->failed when over a cap. The walk fills
 * scratch arrays kept with the dso (no reallocation per CU); the index
 * keeps exact-size copies.
 */
static struct cu_index *ix_build(struct dso_dwarf *dw, Dwarf_Die *cu, Dwarf_Off off)
{
	struct cu_index *ci = xcalloc(1, sizeof(*ci));
	struct ix_build b = {.ci = ci};
	Dwarf_Attribute attr;
	bool ok;

	ci->off = off;
	ci->comp_dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
	if (dw->ix_bytes >= dw->reserved / DW_IX_SHARE + (1u << 20)) {
		ci->failed = true;
		return ci;
	}
	b.raw = dw->ix_raw;
	b.raw_cap = dw->ix_raw_cap;
	ci->sc = dw->ix_sc;
	b.sc_cap = dw->ix_sc_cap;
	ci->dies = dw->ix_dies;
	b.dies_cap = dw->ix_dies_cap;
	ix_cu_ranges(ci, cu);
	if (!ci->failed)
		ix_walk(&b, cu, DW_IX_NONE, 1, 0);
	ok = !ci->failed && !b.over && ix_finish(dw, ci, b.raw, b.nraw);
	/* Give the scratch back, and copy out what the index keeps. */
	dw->ix_raw = b.raw;
	dw->ix_raw_cap = b.raw_cap;
	dw->ix_sc = ci->sc;
	dw->ix_sc_cap = b.sc_cap;
	dw->ix_dies = ci->dies;
	dw->ix_dies_cap = b.dies_cap;
	ci->sc = dup_array(dw->ix_sc, ci->nsc, sizeof(*ci->sc));
	ci->dies = dup_array(dw->ix_dies, ci->ndies, sizeof(*ci->dies));
	if (!ok) {
		const char *dir = ci->comp_dir;

		cu_index_free(ci);
		ci = xcalloc(1, sizeof(*ci));
		ci->off = off;
		ci->comp_dir = dir;
		ci->failed = true;
		pr_debug("DWARF %s: CU at %#" PRIx64 " over the scope index caps, walked instead",
			 dw->debug_path ? dw->debug_path : "in the dso", (uint64_t)off);
		return ci;
	}
	ci->bytes = sizeof(*ci) + ci->nsc * sizeof(*ci->sc) + ci->niv * sizeof(*ci->iv) +
		    ci->ndies * sizeof(*ci->dies) + ci->ncu_iv * sizeof(*ci->cu_iv);
	dw->ix_bytes += ci->bytes;
	return ci;
}

static uint64_t ix_hash(Dwarf_Off off)
{
	return hash_u64(off, 0x510e527fade682d1ULL);
}

/* The index of @cu, built on the first call; one entry per CU (a failed one says so). */
static struct cu_index *cu_index_get(struct dso_dwarf *dw, Dwarf_Die *cu)
{
	Dwarf_Off off = dwarf_dieoffset(cu);
	size_t j;

	if (2 * (dw->nix + 1) > dw->ix_cap) {
		struct cu_index **old = dw->ix;
		size_t ocap = dw->ix_cap;

		dw->ix_cap = ocap ? ocap * 2 : 64;
		dw->ix = xcalloc(dw->ix_cap, sizeof(*dw->ix));
		for (size_t i = 0; i < ocap; i++) {
			if (!old[i])
				continue;
			j = ix_hash(old[i]->off) & (dw->ix_cap - 1);
			while (dw->ix[j])
				j = (j + 1) & (dw->ix_cap - 1);
			dw->ix[j] = old[i];
		}
		free(old);
	}
	j = ix_hash(off) & (dw->ix_cap - 1);
	for (; dw->ix[j]; j = (j + 1) & (dw->ix_cap - 1))
		if (dw->ix[j]->off == off)
			return dw->ix[j];
	dw->ix[j] = ix_build(dw, cu, off);
	dw->nix++;
	return dw->ix[j];
}

/* The scope with the lowest index among those of iv[0, n) holding @pc, or DW_IX_NONE. */
static uint32_t ix_first_holding(const struct ix_range *iv, uint32_t n, uint32_t pc)
{
	uint32_t lo = 0, hi = n, best = DW_IX_NONE;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (iv[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* iv[0, lo) start at or before pc; those before maxhi <= pc all end before it. */
	while (lo-- > 0 && iv[lo].maxhi > pc)
		if (iv[lo].hi > pc && iv[lo].scope < best)
			best = iv[lo].scope;
	return best;
}

static bool ix_cu_holds(const struct cu_index *ci, uint64_t pc)
{
	size_t lo = 0, hi = ci->ncu_iv;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ci->cu_iv[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && pc < ci->cu_iv[lo - 1].hi;
}

/* A DIE on the path to an address, with its tag; die is NULL for scopes that are no function. */
struct step {
	int tag;
	Dwarf_Die *die;
};

/* descend() from the CU on the index: the scopes into @path[1, ...); returns the depth. */
static int ix_descend(struct cu_index *ci, uint64_t vaddr, struct step *path)
{
	uint32_t kids = ci->top, nkids = ci->ntop, pc;
	int depth = 1;

	if (vaddr < ci->base || vaddr - ci->base > UINT32_MAX)
		return depth;
	pc = (uint32_t)(vaddr - ci->base);
	while (depth < DW_MAX_DEPTH) {
		uint32_t k = ix_first_holding(ci->iv + kids, nkids, pc);
		struct ix_scope *s;

		if (k == DW_IX_NONE)
			break;
		s = &ci->sc[k];
		path[depth].tag = s->tag;
		path[depth++].die = s->die != DW_IX_NONE ? &ci->dies[s->die] : NULL;
		if (!is_scope(s->tag))
			break;
		kids = s->kids;
		nkids = s->nkids;
	}
	return depth;
}

/*
 * The frames at @vaddr into @fr (room for DW_MAX_FRAMES). Returns how many,
 * -ENOENT when no DWARF covers it. *@broken is set when the CU that holds
 * @vaddr has no readable line table (truncated or corrupt DWARF).
 */
static int lookup(struct sym_dso *d, struct dso_dwarf *dw, uint64_t file_offset, uint64_t vaddr,
		  struct sym_frame *fr, bool *broken)
{
	Dwarf_Die cu, dies[DW_MAX_DEPTH];
	struct step path[DW_MAX_DEPTH];
	struct cu_index *ci;
	Dwarf_Files *files;
	Dwarf_Lines *lines;
	Dwarf_Line *line;
	size_t nlines;
	int depth, n, col = 0;

	if (!find_cu(dw, vaddr, &cu))
		return -ENOENT;
	ci = cu_index_get(dw, &cu);
	/* libdw reads a CU's line table once and keeps it with the session. */
	if (dwarf_getsrclines(&cu, &lines, &nlines) != 0)
		*broken = true;
	line = dwarf_getsrc_die(&cu, vaddr);
	memset(&fr[0], 0, sizeof(fr[0]));
	if (line) {
		fr[0].file = full_path(dw, ci->comp_dir, dwarf_linesrc(line, NULL, NULL));
		dwarf_lineno(line, &fr[0].line);
		dwarf_linecol(line, &col);
		fr[0].column = col;
	}
	/* path[0] is the CU (when it holds vaddr), path[depth - 1] the innermost scope. */
	if (!ci->failed) {
		depth = ix_cu_holds(ci, vaddr) ? ix_descend(ci, vaddr, path) : 0;
	} else {
		depth = dwarf_haspc(&cu, vaddr) > 0 ? descend(&cu, vaddr, dies, 1, 0) : 0;
		for (int i = 1; i < depth; i++)
			path[i] = (struct step){dwarf_tag(&dies[i]), &dies[i]};
	}
	/* The innermost function-like scope names frame 0; outside any, the symbol table. */
	for (int i = depth - 1; i > 0 && !fr[0].function; i--)
		if (is_function(path[i].tag))
			fr[0].function = die_name(path[i].die) ?: "??";
	if (!fr[0].function) {
		/* In a CU but in none of its functions: addr2line names the symbol. */
		if (!line)
			return -ENOENT;
		fr[0].function = symtab_name(d, file_offset);
		return 1;
	}
	n = 1;
	if (dwarf_getsrcfiles(&cu, &files, NULL) != 0)
		return n;
	/* Each inlined subroutine adds its caller, at the call site. */
	for (int i = depth - 1; i > 0; i--) {
		struct sym_frame *f;
		Dwarf_Word val;

		if (path[i].tag != DW_TAG_inlined_subroutine)
			continue;
		if (n == DW_MAX_FRAMES)
			n--; /* keep the physical frame last: overwrite the outermost inline */
		f = &fr[n++];
		memset(f, 0, sizeof(*f));
		/* The function it was inlined into: the next function-like scope out. */
		for (int j = i - 1; j > 0 && !f->function; j--)
			if (is_function(path[j].tag))
				f->function = die_name(path[j].die) ?: "??";
		if (!f->function)
			f->function = "??";
		if (attr_udata(path[i].die, DW_AT_call_file, &val) == 0)
			f->file =
				full_path(dw, ci->comp_dir, dwarf_filesrc(files, val, NULL, NULL));
		if (attr_udata(path[i].die, DW_AT_call_line, &val) == 0 && val <= INT_MAX)
			f->line = (int)val;
		if (attr_udata(path[i].die, DW_AT_call_column, &val) == 0 && val <= INT_MAX)
			f->column = (int)val;
	}
	return n;
}

/*
 * Copies @n frames to @out (room for @max): all of them when they fit,
 * else the innermost @max - 1 and the physical frame, which pprof and the
 * flame graphs need most; with @max 1 only the physical frame.
 */
static int copy_out(const struct sym_frame *fr, int n, struct sym_frame *out, int max)
{
	if (n <= max) {
		memcpy(out, fr, (size_t)n * sizeof(*fr));
		return n;
	}
	memcpy(out, fr, (size_t)(max - 1) * sizeof(*fr));
	out[max - 1] = fr[n - 1];
	return max;
}

int sym_dso__frames(struct sym_dso *d, uint64_t file_offset, struct sym_frame *out, int max)
{
	struct sym_stats *st = dso__stats(d);
	struct sym_frame fr[DW_MAX_FRAMES];
	struct cache_slot *slot;
	struct dso_dwarf *dw;
	bool broken = false;
	uint64_t vaddr;
	int n;

	if (st)
		st->dwarf_lookups++;
	if (max <= 0)
		return -EINVAL;
	dw = dwarf_get(d);
	dw->used_ns = now_mono_ns();
	if (dw->err)
		return dw->err;
	if (sym_dso__offset_to_vaddr(d, file_offset, &vaddr))
		return -ENOENT;
	if (!dw->cache)
		dw->cache = xcalloc(DW_CACHE_SLOTS, sizeof(*dw->cache));
	slot = &dw->cache[hash_u64(vaddr, 0xa54ff53a5f1d36f1ULL) & (DW_CACHE_SLOTS - 1)];
	if (slot->n && slot->vaddr == vaddr) {
		if (st) {
			st->dwarf_cache_hits++;
			if (slot->n > 0)
				st->dwarf_hits++;
		}
		return slot->n > 0 ? copy_out(slot->fr, slot->n, out, max) : slot->n;
	}
	n = lookup(d, dw, file_offset, vaddr, fr, &broken);
	if (broken) {
		if (st)
			st->dwarf_errors++;
		pr_debug("dso '%s': broken DWARF at %#" PRIx64, sym_dso__path(d), vaddr);
	}
	if (n <= DW_CACHE_FRAMES) {
		slot->vaddr = vaddr;
		slot->n = n;
		if (n > 0)
			memcpy(slot->fr, fr, (size_t)n * sizeof(*fr));
	}
	if (n < 0)
		return n;
	if (st)
		st->dwarf_hits++;
	return copy_out(fr, n, out, max);
}
