// SPDX-License-Identifier: MIT
/*
 * symbolizer/dso.c — ELF files: identity, PT_LOAD layout and symbol tables,
 * and the cache that shares them between processes.
 *
 * A dso is opened in two steps, so that a process mapping 50 libraries
 * costs 50 small reads and not 50 symbol tables:
 *
 *   get:     open + fstat; the ELF header, the PT_LOAD segments and the
 *            build-id are read (libelf maps the file, we copy what we keep
 *            and release the Elf handle). The fd stays open.
 *   resolve: on first use the symbol table is read into a sorted array and
 *            a string arena, and the Elf handle is released again.
 *
 * Held per loaded dso: 16 bytes per function symbol plus its name, e.g.
 * ~3000 symbols and ~100 KiB for Debian's libc (only .dynsym there). A
 * file without .symtab takes the one of its separate debug file when there
 * is one (libc6-dbg's has all of libc's local functions too).
 *
 * DWARF (lines, inline chains) is dwarf.c's; the dso only keeps its state
 * and frees it (dso_priv.h).
 */
#include "symbolizer.h"
#include "dso_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"

/* Dsos nobody references that stay cached, least recently used evicted first. */
#define DSO_IDLE_MAX 64
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
/* Nested or overlapping sized symbols: how many lower ones a lookup also tries. */
#define DSO_NESTED_MAX 4
/* Build-ids are 8 to 20 bytes in practice (--build-id=sha1 is 20). */
#define DSO_BUILD_ID_MAX 64
/*
 * Sanity bounds for what a crafted file may make us allocate. Linked
 * binaries have ~40 sections; a browser built with symbols ~1M functions.
 */
#define DSO_MAX_SECTIONS (1u << 16)
#define DSO_MAX_SYMS (1u << 22)

struct file_key {
	uint64_t dev, ino, size;
	int64_t mtime_sec, mtime_nsec;
};

/* One PT_LOAD segment: file bytes [off, off + filesz) are mapped at vaddr. */
struct dso_seg {
	uint64_t off, filesz, vaddr;
	bool exec;
};

/* A function: [start, start + len); name is an offset into the dso's arena. */
struct dso_sym {
	uint64_t start;
	uint32_t len;
	uint32_t name;
};

enum dso_syms_state {
	DSO_SYMS_UNLOADED = 0,
	DSO_SYMS_LOADED,
	DSO_SYMS_FAILED, /* sym_fail/sym_err say why; not retried */
};

struct sym_dso {
	struct sym_dsos *owner; /* NULL once the cache was freed under a live reference */
	int refcnt;
	int fd; /* owned, open for the life of the dso */
	char *path; /* owned: the path it was opened as */
	char *build_id; /* owned, lowercase hex, NULL when none */
	struct file_key key;
	uint64_t file_size;
	bool elf_ok; /* the ELF header and program headers could be read */

	struct dso_seg *segs;
	size_t nsegs;

	enum dso_syms_state state;
	enum sym_fail sym_fail;
	int sym_err;
	struct dso_sym *syms; /* sorted by start, starts unique */
	size_t nsyms;
	char *names; /* the arena: NUL-terminated names */
	size_t names_len;

	/* CFI (.eh_frame/.debug_frame) through libdw, opened on first sym_dso__cfa() */
	Elf *cfi_elf;
	Dwarf_CFI *cfi;
	bool cfi_tried;

	/* DWARF lines and inline chains (dwarf.c), loaded on first sym_dso__frames() */
	struct dso_dwarf *dwarf;

	/* cache links, private to this file */
	struct sym_dso *next_file; /* chain in by_file: every cached dso */
	struct sym_dso *next_bid; /* chain in by_bid: cached dsos with a build-id */
	struct sym_dso *idle_prev, *idle_next;
	bool idle;
	uint64_t idle_charge; /* dso_bytes() when it went idle, in sym_dsos.idle_bytes */
	uint64_t idle_since_ns; /* CLOCK_MONOTONIC when it went idle */
};

struct sym_dsos {
	struct sym_dso **by_file;
	struct sym_dso **by_bid;
	size_t nbuckets; /* power of two, shared by both tables */
	size_t ndsos;
	/* refcount 0, oldest first */
	struct sym_dso *idle_head, *idle_tail;
	size_t nidle;
	uint64_t idle_bytes; /* memory held by idle dsos (see dso_bytes) */
	uint64_t idle_budget; /* bound on idle_bytes (sym_dsos__set_idle_budget) */
	struct sym_stats st;
	/* owned: where separate debug files are looked for; NULL = the default */
	char **debug_roots;
	size_t ndebug_roots;
	uint64_t dwarf_budget; /* bytes that open libdw sessions may take (estimated) */
};

/* Debian, Fedora and gdb's default for separate debug files. */
static const char *const default_debug_roots[] = {"/usr/lib/debug"};

/* ---- hashing and the cache tables --------------------------------------- */

static uint64_t hash_key(const struct file_key *k)
{
	return hash_bytes(k, sizeof(*k), 0x6a09e667f3bcc908ULL);
}

static uint64_t hash_bid(const char *bid)
{
	return hash_bytes(bid, strlen(bid), 0xbb67ae8584caa73bULL);
}

static bool key_eq(const struct file_key *a, const struct file_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

static void tables_insert(struct sym_dsos *c, struct sym_dso *d)
{
	size_t b = hash_key(&d->key) & (c->nbuckets - 1);

	d->next_file = c->by_file[b];
	c->by_file[b] = d;
	if (d->build_id) {
		b = hash_bid(d->build_id) & (c->nbuckets - 1);
		d->next_bid = c->by_bid[b];
		c->by_bid[b] = d;
	}
}

static void tables_grow(struct sym_dsos *c)
{
	struct sym_dso **old = c->by_file;
	size_t ob = c->nbuckets;

	c->nbuckets *= 2;
	c->by_file = xcalloc(c->nbuckets, sizeof(*c->by_file));
	free(c->by_bid);
	c->by_bid = xcalloc(c->nbuckets, sizeof(*c->by_bid));
	for (size_t b = 0; b < ob; b++) {
		struct sym_dso *d = old[b], *next;

		for (; d; d = next) {
			next = d->next_file;
			tables_insert(c, d);
		}
	}
	free(old);
}

static void tables_remove(struct sym_dsos *c, struct sym_dso *d)
{
	struct sym_dso **pp = &c->by_file[hash_key(&d->key) & (c->nbuckets - 1)];

	while (*pp && *pp != d)
		pp = &(*pp)->next_file;
	if (*pp)
		*pp = d->next_file;
	if (!d->build_id)
		return;
	pp = &c->by_bid[hash_bid(d->build_id) & (c->nbuckets - 1)];
	while (*pp && *pp != d)
		pp = &(*pp)->next_bid;
	if (*pp)
		*pp = d->next_bid;
}

static struct sym_dso *find_by_file(const struct sym_dsos *c, const struct file_key *k)
{
	struct sym_dso *d = c->by_file[hash_key(k) & (c->nbuckets - 1)];

	while (d && !key_eq(&d->key, k))
		d = d->next_file;
	return d;
}

static struct sym_dso *find_by_bid(const struct sym_dsos *c, const char *bid)
{
	struct sym_dso *d = c->by_bid[hash_bid(bid) & (c->nbuckets - 1)];

	while (d && strcmp(d->build_id, bid))
		d = d->next_bid;
	return d;
}

static uint64_t dso_bytes(const struct sym_dso *d);

static void idle_unlink(struct sym_dsos *c, struct sym_dso *d)
{
	if (!d->idle)
		return;
	c->idle_bytes -= d->idle_charge;
	if (d->idle_prev)
		d->idle_prev->idle_next = d->idle_next;
	else
		c->idle_head = d->idle_next;
	if (d->idle_next)
		d->idle_next->idle_prev = d->idle_prev;
	else
		c->idle_tail = d->idle_prev;
	d->idle_prev = d->idle_next = NULL;
	d->idle = false;
	c->nidle--;
}

static void idle_append(struct sym_dsos *c, struct sym_dso *d)
{
	d->idle_prev = c->idle_tail;
	d->idle_next = NULL;
	if (c->idle_tail)
		c->idle_tail->idle_next = d;
	else
		c->idle_head = d;
	c->idle_tail = d;
	d->idle = true;
	c->nidle++;
	d->idle_since_ns = now_mono_ns();
	/* What it holds cannot change while idle: nobody has a reference to look up with. */
	d->idle_charge = dso_bytes(d);
	c->idle_bytes += d->idle_charge;
}

/* ---- dso lifetime -------------------------------------------------------- */

static size_t syms_bytes(const struct sym_dso *d)
{
	return d->nsyms * sizeof(*d->syms) + d->names_len;
}

/* Memory a dso holds: its symbol table and the estimate of its DWARF session. */
static uint64_t dso_bytes(const struct sym_dso *d)
{
	uint64_t b = d->state == DSO_SYMS_LOADED ? syms_bytes(d) : 0;

	return b + dso_dwarf__bytes(d->dwarf);
}

/* Frees @d; when it is still in a cache, removes it from there first. */
static void dso_destroy(struct sym_dso *d)
{
	struct sym_dsos *c = d->owner;

	if (c) {
		idle_unlink(c, d);
		tables_remove(c, d);
		c->ndsos--;
		c->st.dsos--;
		if (d->state == DSO_SYMS_LOADED) {
			c->st.dsos_loaded--;
			c->st.symbols -= d->nsyms;
			c->st.bytes -= syms_bytes(d);
		}
	}
	dso_dwarf__free(d->dwarf, c ? &c->st : NULL);
	if (d->cfi)
		dwarf_cfi_end(d->cfi);
	if (d->cfi_elf)
		elf_end(d->cfi_elf);
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
	free(d->build_id);
	free(d->segs);
	free(d->syms);
	free(d->names);
	free(d);
}

static void dso_grab(struct sym_dsos *c, struct sym_dso *d)
{
	idle_unlink(c, d);
	d->refcnt++;
}

void sym_dso__get(struct sym_dso *d)
{
	if (d)
		d->refcnt++;
}

void sym_dso__put(struct sym_dso *d)
{
	struct sym_dsos *c;

	if (!d || --d->refcnt > 0)
		return;
	c = d->owner;
	if (!c) {
		dso_destroy(d);
		return;
	}
	/*
	 * Keep it around: a library used by short-lived processes (a shell
	 * script's children) would otherwise be opened and parsed again for
	 * each of them.
	 */
	idle_append(c, d);
	while (c->nidle > DSO_IDLE_MAX || (c->nidle && c->idle_bytes > c->idle_budget))
		dso_destroy(c->idle_head);
}

void sym_dsos__set_idle_budget(struct sym_dsos *c, uint64_t bytes)
{
	c->idle_budget = bytes;
	while (c->nidle && c->idle_bytes > c->idle_budget)
		dso_destroy(c->idle_head);
}

size_t sym_dsos__expire_idle(struct sym_dsos *c, uint64_t idle_before_ns)
{
	size_t n = 0;

	/* The idle list is in the order files went idle: the expired ones lead. */
	while (c->idle_head && c->idle_head->idle_since_ns < idle_before_ns) {
		dso_destroy(c->idle_head);
		n++;
	}
	c->st.idle_expired += n;
	return n;
}

size_t sym_dsos__expire_dwarf(struct sym_dsos *c, uint64_t unused_before_ns)
{
	size_t n = 0;

	for (size_t b = 0; b < c->nbuckets; b++)
		for (struct sym_dso *d = c->by_file[b]; d; d = d->next_file) {
			/* Idle dsos have their DWARF charged to idle_bytes: they expire whole. */
			if (d->idle || !dso_dwarf__unused_since(d->dwarf, unused_before_ns))
				continue;
			dso_dwarf__free(d->dwarf, &c->st);
			d->dwarf = NULL;
			n++;
		}
	c->st.dwarf_expired += n;
	return n;
}

const char *sym_dso__path(const struct sym_dso *d)
{
	return d->path;
}

const char *sym_dso__build_id(const struct sym_dso *d)
{
	return d->build_id;
}

uint64_t sym_dso__identity(const struct sym_dso *d)
{
	return d->build_id ? hash_bid(d->build_id) : hash_key(&d->key);
}

/* ---- hooks for dwarf.c (dso_priv.h) ---------------------------------------- */

int dso__fd(const struct sym_dso *d)
{
	return d->fd;
}

bool dso__elf_ok(const struct sym_dso *d)
{
	return d->elf_ok;
}

struct dso_dwarf **dso__dwarf_slot(struct sym_dso *d)
{
	return &d->dwarf;
}

const char *const *dso__debug_roots(const struct sym_dso *d, size_t *n)
{
	const struct sym_dsos *c = d->owner;

	if (!c || !c->ndebug_roots) {
		*n = ARRAY_SIZE(default_debug_roots);
		return default_debug_roots;
	}
	*n = c->ndebug_roots;
	return (const char *const *)c->debug_roots;
}

struct sym_stats *dso__stats(struct sym_dso *d)
{
	return d->owner ? &d->owner->st : NULL;
}

/* The oldest idle dso that holds a DWARF session, or NULL. */
static struct sym_dso *idle_with_dwarf(const struct sym_dsos *c, const struct sym_dso * not )
{
	for (struct sym_dso *d = c->idle_head; d; d = d->idle_next)
		if (d != not &&dso_dwarf__bytes(d->dwarf))
			return d;
	return NULL;
}

bool dso__dwarf_reserve(struct sym_dso *d, uint64_t bytes)
{
	struct sym_dsos *c = d->owner;
	struct sym_dso *victim;

	if (!c)
		return false;
	/*
	 * Files no process maps any more make room first, oldest first: an
	 * idle dso has no reference, so none of its strings is in use.
	 */
	while (bytes > c->dwarf_budget - MIN(c->st.dwarf_bytes, c->dwarf_budget) &&
	       (victim = idle_with_dwarf(c, d)))
		dso_destroy(victim);
	if (bytes > c->dwarf_budget - MIN(c->st.dwarf_bytes, c->dwarf_budget)) {
		c->st.dwarf_over_budget++;
		return false;
	}
	c->st.dwarf_bytes += bytes;
	return true;
}

void dso_dwarf__released(struct sym_stats *st, uint64_t bytes)
{
	st->dwarf_bytes -= MIN(bytes, st->dwarf_bytes);
	st->dwarf_releases++;
}

void dso__dwarf_release(struct sym_dso *d, uint64_t bytes)
{
	if (d->owner)
		dso_dwarf__released(&d->owner->st, bytes);
}

uint64_t dso__dwarf_releases(const struct sym_dso *d)
{
	return d->owner ? d->owner->st.dwarf_releases : 0;
}

void sym_dsos__set_dwarf_budget(struct sym_dsos *c, uint64_t bytes)
{
	c->dwarf_budget = bytes;
	c->st.dwarf_releases++; /* files refused before may fit now */
}

/* ---- ELF header, segments and build-id ------------------------------------ */

static char *hex_string(const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *s = xmalloc(2 * n + 1);

	for (size_t i = 0; i < n; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 0xf];
	}
	s[2 * n] = '\0';
	return s;
}

/* The NT_GNU_BUILD_ID note in @data, as hex; NULL when there is none. */
static char *note_build_id(Elf_Data *data)
{
	size_t off = 0, next, name_off, desc_off;
	GElf_Nhdr nh;

	/* gelf_getnote() checks every header and payload against d_size. */
	while ((next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const unsigned char *base = data->d_buf;

		if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == sizeof(ELF_NOTE_GNU) &&
		    !memcmp(base + name_off, ELF_NOTE_GNU, sizeof(ELF_NOTE_GNU)) && nh.n_descsz &&
		    nh.n_descsz <= DSO_BUILD_ID_MAX)
			return hex_string(base + desc_off, nh.n_descsz);
		off = next;
	}
	return NULL;
}

/*
 * The build-id from a PT_NOTE segment (present even when the section
 * headers were stripped), else from an SHT_NOTE section.
 */
static char *read_build_id(Elf *elf, size_t phnum)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	char *bid;

	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		Elf_Data *data;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE || !ph.p_filesz)
			continue;
		data = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
					    ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
		if (data && (bid = note_build_id(data)))
			return bid;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		data = elf_getdata(scn, NULL);
		if (data && (bid = note_build_id(data)))
			return bid;
	}
	return NULL;
}

/* Reads what get needs: segments and build-id. Sets d->elf_ok. */
static void dso_read_header(struct sym_dso *d)
{
	Elf *elf = elf_begin(d->fd, ELF_C_READ_MMAP, NULL);
	size_t phnum, cap = 0;
	GElf_Ehdr eh;

	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    elf_getphdrnum(elf, &phnum)) {
		pr_debug("dso '%s': not an ELF file: %s", d->path, elf_errmsg(-1));
		goto out;
	}
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph)) {
			pr_debug("dso '%s': bad program header %zu: %s", d->path, i,
				 elf_errmsg(-1));
			goto out;
		}
		if (ph.p_type != PT_LOAD || !ph.p_filesz || ph.p_offset + ph.p_filesz < ph.p_offset)
			continue;
		xgrow((void **)&d->segs, &cap, d->nsegs + 1, sizeof(*d->segs));
		d->segs[d->nsegs++] = (struct dso_seg){
			.off = ph.p_offset,
			.filesz = ph.p_filesz,
			.vaddr = ph.p_vaddr,
			.exec = ph.p_flags & PF_X,
		};
	}
	d->build_id = read_build_id(elf, phnum);
	d->elf_ok = true;
out:
	elf_end(elf);
}

int sym_dso__offset_to_vaddr(struct sym_dso *d, uint64_t file_offset, uint64_t *vaddr)
{
	const struct dso_seg *hit = NULL;

	if (!d->elf_ok)
		return -EINVAL;
	/*
	 * Segments do not share file bytes in linked output; should a broken
	 * one overlap, the executable segment is the one code runs from.
	 */
	for (size_t i = 0; i < d->nsegs; i++) {
		const struct dso_seg *s = &d->segs[i];

		if (file_offset >= s->off && file_offset - s->off < s->filesz &&
		    (!hit || (s->exec && !hit->exec)))
			hit = s;
	}
	if (!hit)
		return -ENOENT;
	*vaddr = file_offset - hit->off + hit->vaddr;
	return 0;
}

int sym_dso__load_bias(struct sym_dso *d, uint64_t start, uint64_t end, uint64_t pgoff,
		       uint64_t *bias)
{
	if (!d->elf_ok)
		return -EINVAL;
	/*
	 * The segment whose file bytes this mapping starts in or covers. Linkers
	 * that do not page-align segments in the file (lld) have the mapping
	 * start in the page that also holds the end of the previous segment:
	 * the executable segment whose first page is pgoff is the one mapped.
	 */
	for (size_t i = 0; i < d->nsegs; i++) {
		const struct dso_seg *s = &d->segs[i];
		uint64_t page = s->off & ~4095ULL;

		/* The mapping's file range overlaps the segment's. */
		if (!s->exec || page >= pgoff + (end - start) || s->off + s->filesz <= pgoff)
			continue;
		*bias = start + (s->off - pgoff) - s->vaddr;
		return 0;
	}
	return -ENOENT;
}

/* ---- symbol tables ----------------------------------------------------------- */

/* A function symbol read from the table, before aliases are folded. */
struct cand {
	uint64_t start, size;
	uint64_t sec_end; /* end address of its (executable) section */
	const char *name; /* in the Elf handle's string table */
	uint8_t bind_rank; /* 0 global, 1 weak, 2 local */
	uint8_t ifunc;
};

static int bind_rank(unsigned char bind)
{
	switch (bind) {
	case STB_GLOBAL:
	case STB_GNU_UNIQUE:
		return 0;
	case STB_WEAK:
		return 1;
	default:
		return 2;
	}
}

static int leading_underscores(const char *s)
{
	int n = 0;

	while (s[n] == '_')
		n++;
	return n;
}

/*
 * Sorts by address, and among aliases (same address) best first, so that
 * the first of each run is the one we keep. The rules, in order:
 *
 *  1. sized over zero-size: a size is where the function really ends;
 *  2. global over weak over local: the exported name is the one users
 *     know, and a weak alias is usually the secondary name of a function;
 *  3. STT_FUNC over STT_GNU_IFUNC: an IFUNC symbol names what the
 *     resolver selects, but the code at its address is the resolver;
 *  4. no symbol version in the name: .symver leaves "memcpy@@GLIBC_2.14"
 *     and "cfree@GLIBC_2.2.5" in .symtab next to "memcpy" and "free"
 *     (the version is cut off the name we keep, see build_syms());
 *  5. fewer leading underscores: "__GI_foo", "__foo" and "_foo" are
 *     internal aliases of "foo";
 *  6. the larger size, which covers more of the code;
 *  7. the name, so that the choice never depends on the table order.
 *
 * Like perf's choose_best_symbol() (tools/perf/util/symbol.c), except that
 * perf ends on "longest name"; any fixed order would do there.
 */
static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int d;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (!x->size != !y->size)
		return !x->size ? 1 : -1;
	if (x->bind_rank != y->bind_rank)
		return x->bind_rank - y->bind_rank;
	if (x->ifunc != y->ifunc)
		return x->ifunc - y->ifunc;
	d = !!strchr(x->name, '@') - !!strchr(y->name, '@');
	if (d)
		return d;
	d = leading_underscores(x->name) - leading_underscores(y->name);
	if (d)
		return d;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return strcmp(x->name, y->name);
}

/*
 * Collects the function symbols of one symbol table. Only STT_FUNC and
 * STT_GNU_IFUNC: STT_NOTYPE symbols in code sections are, with GCC, clang,
 * Rust and Go output, linker markers ("etext", "__start_SEC"), ARM/RISC-V
 * mapping symbols ("$x", "$d") and local asm labels; as zero-size symbols
 * they would cut the range of the real function they sit in. perf also
 * takes FUNC/IFUNC only for user-space DSOs (elf_sym__is_function()).
 */
static int collect(Elf *elf, Elf_Scn *symscn, Elf_Scn *xscn, const GElf_Shdr *symsh,
		   const uint64_t *sec_end, size_t shnum, struct cand **out, size_t *n, size_t *cap)
{
	Elf_Data *data = elf_getdata(symscn, NULL);
	Elf_Data *xdata = xscn ? elf_getdata(xscn, NULL) : NULL;
	size_t entsize = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
	size_t nsym;

	if (!data || !entsize)
		return -EINVAL;
	nsym = data->d_size / entsize;
	for (size_t i = 1; i < nsym; i++) {
		Elf32_Word xndx = 0;
		GElf_Sym s;
		unsigned char type;
		const char *name;
		size_t shndx;
		struct cand *c;

		if (!gelf_getsymshndx(data, xdata, (int)i, &s, &xndx))
			continue;
		type = GELF_ST_TYPE(s.st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s.st_shndx == SHN_UNDEF ||
		    !s.st_value)
			continue;
		shndx = s.st_shndx == SHN_XINDEX ? xndx : s.st_shndx;
		/* SHN_ABS and friends, or a function outside code: nothing we map. */
		if (shndx >= shnum || !sec_end[shndx])
			continue;
		name = elf_strptr(elf, symsh->sh_link, s.st_name);
		if (!name || !*name)
			continue;
		if (*n >= DSO_MAX_SYMS)
			return -EFBIG;
		xgrow((void **)out, cap, *n + 1, sizeof(**out));
		c = &(*out)[(*n)++];
		c->start = s.st_value;
		c->size = s.st_size;
		c->sec_end = sec_end[shndx];
		c->name = name;
		c->bind_rank = (uint8_t)bind_rank(GELF_ST_BIND(s.st_info));
		c->ifunc = type == STT_GNU_IFUNC;
	}
	return 0;
}

/* Length of @name without its "@VERSION" or "@@VERSION" suffix. */
static size_t unversioned_len(const char *name)
{
	size_t l = strcspn(name, "@");

	return l ? l : strlen(name);
}

/*
 * Folds aliases and gives every kept symbol its extent:
 *  - a sized symbol covers [start, start + size), the largest size among
 *    its aliases;
 *  - a zero-size one (hand-written asm without .size, crt's _init) extends
 *    to the next symbol's start, as perf's symbols__fixup_end() does, but
 *    never past the end of its own section: the last one in .init must
 *    not swallow .plt and .text.
 * Then copies the kept names into one arena sized exactly, without a
 * symbol version ("@GLIBC_2.2.5", "@@GLIBC_2.14"): .dynsym names have
 * none, and a library must give the same names whichever table it has.
 */
static void build_syms(struct sym_dso *d, struct cand *cv, size_t n)
{
	size_t nk = 0, bytes = 0, i, j;
	char *w;

	qsort(cv, n, sizeof(*cv), cmp_cand);
	for (i = 0; i < n; i = j) {
		uint64_t size = cv[i].size;

		for (j = i + 1; j < n && cv[j].start == cv[i].start; j++)
			if (cv[j].size > size)
				size = cv[j].size;
		cv[nk] = cv[i];
		cv[nk].size = size;
		bytes += unversioned_len(cv[nk].name) + 1;
		nk++;
	}
	d->syms = xcalloc(nk, sizeof(*d->syms));
	d->names = xmalloc(bytes);
	d->names_len = bytes;
	d->nsyms = nk;
	w = d->names;
	for (i = 0; i < nk; i++) {
		struct dso_sym *s = &d->syms[i];
		uint64_t len = cv[i].size;
		size_t l = unversioned_len(cv[i].name);

		if (!len) {
			uint64_t end = cv[i].sec_end;

			if (i + 1 < nk && cv[i + 1].start < end)
				end = cv[i + 1].start;
			len = end > cv[i].start ? end - cv[i].start : 0;
		}
		s->start = cv[i].start;
		s->len = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
		s->name = (uint32_t)(w - d->names);
		memcpy(w, cv[i].name, l);
		w[l] = '\0';
		w += l + 1;
	}
}

/* The sections of one ELF file that symbol loading needs. */
struct elf_tables {
	size_t shnum;
	uint64_t *sec_end; /* owned: end address of each executable section, else 0 */
	Elf_Scn *symtab, *dynsym, *xscn;
	GElf_Shdr symtab_sh, dynsym_sh;
};

/*
 * Reads @elf's section headers (the file is @file_size bytes) into @t.
 * 0, or -1 when the file or its section table is truncated or corrupt.
 */
static int scan_tables(Elf *elf, uint64_t file_size, struct elf_tables *t)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	GElf_Ehdr eh;

	memset(t, 0, sizeof(*t));
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh) ||
	    elf_getshdrnum(elf, &t->shnum))
		return -1;
	/* libelf just sees no sections when the table was cut off; we want to say so. */
	if (t->shnum &&
	    (t->shnum > DSO_MAX_SECTIONS ||
	     eh.e_shentsize != gelf_fsize(elf, ELF_T_SHDR, 1, EV_CURRENT) ||
	     eh.e_shoff > file_size || (file_size - eh.e_shoff) / eh.e_shentsize < t->shnum))
		return -1;
	t->sec_end = xcalloc(t->shnum ? t->shnum : 1, sizeof(*t->sec_end));
	while ((scn = elf_nextscn(elf, scn))) {
		size_t idx = elf_ndxscn(scn);

		if (!gelf_getshdr(scn, &sh) || idx >= t->shnum)
			return -1;
		/* NOBITS too: a separate debug file keeps .text's address but not its bytes. */
		if (sh.sh_flags & SHF_EXECINSTR)
			t->sec_end[idx] = sh.sh_addr + sh.sh_size;
		if (sh.sh_type == SHT_SYMTAB && !t->symtab) {
			t->symtab = scn;
			t->symtab_sh = sh;
		} else if (sh.sh_type == SHT_DYNSYM && !t->dynsym) {
			t->dynsym = scn;
			t->dynsym_sh = sh;
		}
	}
	if (t->symtab) {
		scn = NULL;
		while ((scn = elf_nextscn(elf, scn)))
			if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB_SHNDX &&
			    sh.sh_link == elf_ndxscn(t->symtab))
				t->xscn = scn;
	}
	return 0;
}

/*
 * The function symbols of the .symtab of @d's separate debug file, when
 * the file itself has none: a stripped library keeps only its exported
 * functions in .dynsym, the debug file has them all, at the same
 * addresses. 0 (nothing added when there is no such file), or -EFBIG.
 */
static int collect_debug_symtab(struct sym_dso *d, struct cand **cv, size_t *n, size_t *cap)
{
	struct elf_tables t;
	uint64_t size;
	Elf *elf = dso_dwarf__debug_elf(d, &size);
	int err = 0;

	if (elf && !scan_tables(elf, size, &t) && t.symtab) {
		err = collect(elf, t.symtab, t.xscn, &t.symtab_sh, t.sec_end, t.shnum, cv, n, cap);
		/* A broken table in the debug file: fall back to the file's own .dynsym. */
		if (err && err != -EFBIG) {
			*n = 0;
			err = 0;
		}
		if (*n)
			pr_debug("dso '%s': %zu functions from the debug file's .symtab", d->path,
				 *n);
	}
	if (elf)
		free(t.sec_end);
	return err;
}

/* Loads the symbol table on first use; sets state, and sym_fail/sym_err on failure. */
static void dso_load_syms(struct sym_dso *d)
{
	struct cand *cv = NULL;
	size_t ncand = 0, cap = 0;
	struct sym_stats *st = d->owner ? &d->owner->st : NULL;
	struct elf_tables t;
	Elf *elf;
	int err;

	d->state = DSO_SYMS_FAILED;
	d->sym_fail = SYM_FAIL_ELF;
	d->sym_err = -ENOEXEC;
	elf = elf_begin(d->fd, ELF_C_READ_MMAP, NULL);
	if (scan_tables(elf, d->file_size, &t))
		goto bad_elf;
	/* An unstripped file's .symtab is a superset of its .dynsym. */
	if (t.symtab) {
		err = collect(elf, t.symtab, t.xscn, &t.symtab_sh, t.sec_end, t.shnum, &cv, &ncand,
			      &cap);
		if (err)
			goto bad_table;
	} else {
		err = collect_debug_symtab(d, &cv, &ncand, &cap);
		if (err)
			goto bad_table;
	}
	/* A .symtab without function symbols (left by some strip options) adds nothing. */
	if (!ncand && t.dynsym) {
		err = collect(elf, t.dynsym, NULL, &t.dynsym_sh, t.sec_end, t.shnum, &cv, &ncand,
			      &cap);
		if (err)
			goto bad_table;
	}
	if (!ncand) {
		d->sym_fail = SYM_FAIL_NOSYMS;
		d->sym_err = -ENODATA;
		pr_debug("dso '%s': no function symbols", d->path);
		goto out;
	}
	build_syms(d, cv, ncand);
	d->state = DSO_SYMS_LOADED;
	d->sym_fail = SYM_FAIL_NONE;
	d->sym_err = 0;
	if (st) {
		st->dsos_loaded++;
		st->symbols += d->nsyms;
		st->bytes += syms_bytes(d);
	}
	goto out;
bad_table:
	if (err == -EFBIG) {
		d->sym_fail = SYM_FAIL_NOSYMS;
		d->sym_err = -EFBIG;
		pr_debug("dso '%s': more than %u function symbols, not loaded", d->path,
			 DSO_MAX_SYMS);
		goto out;
	}
bad_elf:
	err = elf_errno();
	pr_debug("dso '%s': cannot read the symbol table: %s", d->path,
		 err ? elf_errmsg(err) : "truncated or corrupt");
out:
	free(cv);
	free(t.sec_end);
	elf_end(elf);
}

/* The symbol containing @vaddr, or NULL. O(log n). */
static const struct dso_sym *find_sym(const struct sym_dso *d, uint64_t vaddr)
{
	size_t lo = 0, hi = d->nsyms;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->syms[mid].start <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/*
	 * lo - 1 is the highest start <= vaddr. If that symbol ended before
	 * vaddr, an earlier sized one may still enclose it (a function nested
	 * in another, e.g. asm entry points); a few are enough in practice.
	 */
	for (size_t k = 0; k < DSO_NESTED_MAX && k < lo; k++) {
		const struct dso_sym *s = &d->syms[lo - 1 - k];

		if (vaddr - s->start < s->len)
			return s;
	}
	return NULL;
}

int sym_dso__resolve(struct sym_dso *d, uint64_t file_offset, struct sym_result *r,
		     enum sym_fail *why)
{
	struct sym_stats *st = d->owner ? &d->owner->st : NULL;
	enum sym_fail fail = SYM_FAIL_NONE;
	const struct dso_sym *s;
	int err = 0;

	memset(r, 0, sizeof(*r));
	if (st)
		st->lookups++;
	if (!d->elf_ok) {
		fail = SYM_FAIL_ELF;
		err = -ENOEXEC;
		goto out;
	}
	if (sym_dso__offset_to_vaddr(d, file_offset, &r->vaddr)) {
		fail = SYM_FAIL_NOLOAD;
		err = -ERANGE;
		goto out;
	}
	if (d->state == DSO_SYMS_UNLOADED)
		dso_load_syms(d);
	if (d->state != DSO_SYMS_LOADED) {
		fail = d->sym_fail;
		err = d->sym_err;
		goto out;
	}
	s = find_sym(d, r->vaddr);
	if (!s) {
		fail = SYM_FAIL_NOSYM;
		err = -ENOENT;
		goto out;
	}
	r->name = d->names + s->name;
	r->sym_addr = s->start;
	if (st)
		st->hits++;
out:
	if (st && fail)
		st->fail[fail]++;
	if (why)
		*why = fail;
	return err;
}

/* ---- the cache ------------------------------------------------------------- */

int sym_dso__cfa(struct sym_dso *d, uint64_t vaddr, int *reg, int64_t *offset)
{
	Dwarf_Frame *frame = NULL;
	Dwarf_Op *ops;
	size_t nops;
	int err = 0;

	if (!d->cfi_tried) {
		d->cfi_tried = true;
		if (d->elf_ok && d->fd >= 0) {
			d->cfi_elf = elf_begin(d->fd, ELF_C_READ_MMAP, NULL);
			/* .eh_frame from the ELF file itself; NULL when it has none. */
			d->cfi = d->cfi_elf ? dwarf_getcfi_elf(d->cfi_elf) : NULL;
		}
	}
	if (!d->cfi)
		return -ENODATA;
	if (dwarf_cfi_addrframe(d->cfi, vaddr, &frame) != 0)
		return -ENOENT;
	if (dwarf_frame_cfa(frame, &ops, &nops) != 0 || nops != 1) {
		err = -EOPNOTSUPP;
	} else if (ops[0].atom == DW_OP_bregx) {
		/* libdw's form for DW_CFA_def_cfa: register in number, offset in number2. */
		*reg = (int)ops[0].number;
		*offset = (int64_t)ops[0].number2;
	} else if (ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31) {
		*reg = ops[0].atom - DW_OP_breg0;
		*offset = (int64_t)ops[0].number;
	} else {
		err = -EOPNOTSUPP; /* a DWARF expression, not register + offset */
	}
	free(frame);
	return err;
}

static void free_debug_roots(struct sym_dsos *c)
{
	for (size_t i = 0; i < c->ndebug_roots; i++)
		free(c->debug_roots[i]);
	free(c->debug_roots);
	c->debug_roots = NULL;
	c->ndebug_roots = 0;
}

void sym_dsos__set_debug_roots(struct sym_dsos *c, const char *const *roots, size_t n)
{
	free_debug_roots(c);
	if (!roots || !n)
		return;
	c->debug_roots = xcalloc(n, sizeof(*c->debug_roots));
	for (size_t i = 0; i < n; i++)
		c->debug_roots[i] = xstrdup(roots[i]);
	c->ndebug_roots = n;
}

struct sym_dsos *sym_dsos__new(void)
{
	struct sym_dsos *c;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		pr_err("dsos: libelf is older than this program: %s", elf_errmsg(-1));
		errno = ELIBBAD;
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->nbuckets = 64;
	c->by_file = xcalloc(c->nbuckets, sizeof(*c->by_file));
	c->by_bid = xcalloc(c->nbuckets, sizeof(*c->by_bid));
	c->dwarf_budget = UINT64_MAX;
	c->idle_budget = UINT64_MAX;
	return c;
}

void sym_dsos__free(struct sym_dsos *c)
{
	size_t live = 0;

	if (!c)
		return;
	for (size_t b = 0; b < c->nbuckets; b++) {
		struct sym_dso *d = c->by_file[b], *next;

		for (; d; d = next) {
			next = d->next_file;
			/* The tables go away with @c: detach before destroying. */
			d->owner = NULL;
			/* Leaking beats a dangling pointer: its last put frees it. */
			if (d->refcnt > 0)
				live++;
			else
				dso_destroy(d);
		}
	}
	if (live)
		pr_warn("dsos: freed with %zu dsos still referenced", live);
	free_debug_roots(c);
	free(c->by_file);
	free(c->by_bid);
	free(c);
}

static void count_get_failure(struct sym_dsos *c, int err)
{
	/* open/fstat failing is SYM_FAIL_OPEN; a file that cannot be an ELF one is SYM_FAIL_ELF. */
	if (err == -EISDIR || err == -EINVAL || err == -EFBIG)
		c->st.fail[SYM_FAIL_ELF]++;
	else
		c->st.fail[SYM_FAIL_OPEN]++;
}

/*
 * Takes ownership of @fd and returns a new reference to the dso for the
 * file behind it: the cached one when the file (dev, inode, size, mtime)
 * or its build-id is known already, then @fd is closed.
 */
static struct sym_dso *dsos_get_fd(struct sym_dsos *c, int fd, const char *path)
{
	struct sym_dso *d, *o;
	struct file_key key;
	struct stat st;
	int err;

	if (fstat(fd, &st)) {
		err = -errno;
		goto fail;
	}
	/* Refused before libelf maps it: a FIFO or device has no size to map. */
	if (!S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto fail;
	}
	if ((uint64_t)st.st_size > SYM_DSO_MAX_FILE_SIZE) {
		err = -EFBIG;
		goto fail;
	}
	memset(&key, 0, sizeof(key));
	key.dev = st.st_dev;
	key.ino = st.st_ino;
	key.size = (uint64_t)st.st_size;
	key.mtime_sec = st.st_mtim.tv_sec;
	key.mtime_nsec = st.st_mtim.tv_nsec;
	d = find_by_file(c, &key);
	if (d) {
		close(fd);
		dso_grab(c, d);
		return d;
	}

	d = xcalloc(1, sizeof(*d));
	d->fd = fd;
	d->path = xstrdup(path);
	d->key = key;
	d->file_size = (uint64_t)st.st_size;
	dso_read_header(d);
	if (d->build_id && (o = find_by_bid(c, d->build_id))) {
		dso_destroy(d); /* not in the cache yet: just closes and frees */
		dso_grab(c, o);
		return o;
	}
	if (c->ndsos + 1 > c->nbuckets)
		tables_grow(c);
	d->owner = c;
	d->refcnt = 1;
	tables_insert(c, d);
	c->ndsos++;
	c->st.dsos++;
	return d;
fail:
	close(fd);
	count_get_failure(c, err);
	pr_debug("dso '%s': %s", path, strerror(-err));
	errno = -err;
	return NULL;
}

static int open_ro(const char *path)
{
	/* O_NONBLOCK: opening a FIFO for reading must not wait for a writer. */
	return open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
}

struct sym_dso *sym_dsos__get_path(struct sym_dsos *c, const char *path)
{
	int fd = open_ro(path);

	if (fd < 0) {
		int err = errno;

		c->st.fail[SYM_FAIL_OPEN]++;
		errno = err;
		return NULL;
	}
	return dsos_get_fd(c, fd, path);
}

/*
 * Opens @path for mapping @m and checks that it is still the mapped file:
 * after an upgrade the path names a new file. Only the inode is compared:
 * on overlayfs /proc/PID/maps shows the backing file's device, but stat()
 * through the overlay reports the overlay's.
 */
static int open_checked(const char *path, const struct sym_map_entry *m)
{
	struct stat st;
	int fd = open_ro(path), err;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (m->inode && st.st_ino != m->inode) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* Keeps the more telling of two open errors: anything beats "not found". */
static int pick_err(int old, int new)
{
	return old && old != -ENOENT ? old : new;
}

struct sym_dso *sym_dsos__get_mapped(struct sym_dsos *c, int pid, const struct sym_map_entry *m)
{
	char buf[PATH_MAX + 32];
	int fd, err;

	if (!m || !m->path) {
		errno = EINVAL;
		return NULL;
	}
	/* The mapped file itself, even deleted or in another mount namespace. */
	snprintf(buf, sizeof(buf), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start,
		 m->end);
	fd = open_ro(buf);
	if (fd >= 0)
		return dsos_get_fd(c, fd, m->path);
	err = -errno;
	/* A deleted file's path names some other file now, or nothing. */
	if (m->path[0] == '/' && !m->deleted) {
		if ((size_t)snprintf(buf, sizeof(buf), "/proc/%d/root%s", pid, m->path) <
		    sizeof(buf)) {
			fd = open_checked(buf, m);
			if (fd >= 0)
				return dsos_get_fd(c, fd, m->path);
			err = pick_err(err, fd);
		}
		fd = open_checked(m->path, m);
		if (fd >= 0)
			return dsos_get_fd(c, fd, m->path);
		err = pick_err(err, fd);
	}
	c->st.fail[SYM_FAIL_OPEN]++;
	pr_debug("dso '%s' of pid %d: cannot open: %s", m->path, pid, strerror(-err));
	errno = -err;
	return NULL;
}

void sym_dsos__stats(const struct sym_dsos *c, struct sym_stats *out)
{
	*out = c->st;
}
