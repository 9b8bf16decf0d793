// SPDX-License-Identifier: MIT
/*
 * profiler/profile.c — the deduplicated profile tables described in profile.h.
 *
 * Each table has one open-addressing hash index (linear probing) kept in
 * struct prof_profile_index. Entries are found by value; their array index
 * is their pprof id minus one, so an entry never moves once it is added.
 */
#include "profile.h"

#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

/*
 * A slot holds the upper 32 bits of the entry's hash and (index + 1), 0
 * meaning empty. Keeping the hash in the slot lets a probe skip almost every
 * key comparison and lets the index grow without touching the keys.
 */
struct htab {
	uint64_t *slots;
	uint32_t mask; /* number of slots - 1; a power of two */
	uint32_t count;
};

struct prof_profile_index {
	struct htab strings, mappings, functions, locations, samples;
	/* capacities of the arrays in struct prof_profile (it has no room for them) */
	size_t cap_strings, cap_mappings, cap_functions, cap_locations, cap_lines;
	size_t cap_sample_locs, cap_samples;
	/* scratch space for the stack being added, reused across calls */
	struct prof_line *tmp_lines;
	size_t cap_tmp_lines;
	uint32_t *tmp_locs;
	size_t cap_tmp_locs;
};

#define HTAB_INITIAL_SLOTS 64

static void htab_init(struct htab *t)
{
	t->slots = xcalloc(HTAB_INITIAL_SLOTS, sizeof(*t->slots));
	t->mask = HTAB_INITIAL_SLOTS - 1;
	t->count = 0;
}

static void htab_release(struct htab *t)
{
	free(t->slots);
	t->slots = NULL;
}

/* Doubles the slots once the load factor would pass 3/4. */
static void htab_reserve(struct htab *t)
{
	uint64_t *old = t->slots;
	size_t nold = (size_t)t->mask + 1, i;
	uint32_t nmask;

	if ((size_t)(t->count + 1) * 4 <= nold * 3)
		return;
	nmask = (uint32_t)(nold * 2 - 1);
	t->slots = xcalloc(nold * 2, sizeof(*t->slots));
	for (i = 0; i < nold; i++) {
		uint32_t pos;

		if (!old[i])
			continue;
		pos = (uint32_t)(old[i] >> 32) & nmask;
		while (t->slots[pos])
			pos = (pos + 1) & nmask;
		t->slots[pos] = old[i];
	}
	t->mask = nmask;
	free(old);
}

typedef bool (*htab_eq_fn)(const struct prof_profile *p, uint32_t idx, const void *key);

/*
 * The slot holding @key, or the empty slot where it belongs. Call
 * htab_reserve() first when the key may be inserted, so that the returned
 * slot stays valid.
 */
static uint64_t *htab_find(const struct htab *t, uint32_t h, const struct prof_profile *p,
			   htab_eq_fn eq, const void *key)
{
	uint32_t pos = h & t->mask;

	for (;;) {
		uint64_t *s = &t->slots[pos];

		if (!*s)
			return s;
		if ((uint32_t)(*s >> 32) == h && eq(p, (uint32_t)*s - 1, key))
			return s;
		pos = (pos + 1) & t->mask;
	}
}

static void htab_set(struct htab *t, uint64_t *slot, uint32_t h, uint32_t idx)
{
	*slot = (uint64_t)h << 32 | (uint64_t)(idx + 1);
	t->count++;
}

static inline uint64_t hmix(uint64_t h, uint64_t v)
{
	return hash_u64(v, h * 0x9e3779b97f4a7c15ULL + 1);
}

static inline uint32_t hfinal(uint64_t h)
{
	return (uint32_t)(h >> 32);
}

/* ---- strings ------------------------------------------------------------ */

static bool str_eq(const struct prof_profile *p, uint32_t idx, const void *key)
{
	return strcmp(p->strings[idx], key) == 0;
}

uint32_t prof_profile__intern(struct prof_profile *p, const char *s)
{
	struct prof_profile_index *x = p->idx;
	uint64_t *slot;
	uint32_t h, idx;

	if (!s || !*s)
		return 0;
	h = hfinal(hash_bytes(s, strlen(s), 0));
	htab_reserve(&x->strings);
	slot = htab_find(&x->strings, h, p, str_eq, s);
	if (*slot)
		return (uint32_t)*slot - 1;
	idx = p->nstrings;
	xgrow((void **)&p->strings, &x->cap_strings, idx + 1, sizeof(*p->strings));
	p->strings[idx] = xstrdup(s);
	p->nstrings++;
	htab_set(&x->strings, slot, h, idx);
	return idx;
}

/* ---- mappings: keyed by range, offset, file and build id ---------------- */

static bool mapping_eq(const struct prof_profile *p, uint32_t idx, const void *key)
{
	const struct prof_mapping *a = &p->mappings[idx], *b = key;

	return a->start == b->start && a->limit == b->limit && a->offset == b->offset &&
	       a->filename == b->filename && a->build_id == b->build_id;
}

/* @m has string indexes of @p. Returns the mapping id (1-based). */
static uint32_t intern_mapping(struct prof_profile *p, const struct prof_mapping *m)
{
	struct prof_profile_index *x = p->idx;
	struct prof_mapping *e;
	uint64_t *slot;
	uint32_t h, idx;

	h = hfinal(hmix(hmix(hmix(hmix(hash_u64(m->start, 1), m->limit), m->offset), m->filename),
			m->build_id));
	htab_reserve(&x->mappings);
	slot = htab_find(&x->mappings, h, p, mapping_eq, m);
	if (*slot) {
		e = &p->mappings[(uint32_t)*slot - 1];
		/* Symbolized with names (and DWARF) if any location of it was. */
		e->has_functions |= m->has_functions;
		e->has_filenames |= m->has_filenames;
		e->has_line_numbers |= m->has_line_numbers;
		e->has_inline_frames |= m->has_inline_frames;
		return (uint32_t)*slot;
	}
	idx = p->nmappings;
	xgrow((void **)&p->mappings, &x->cap_mappings, idx + 1, sizeof(*p->mappings));
	p->mappings[idx] = *m;
	p->nmappings++;
	htab_set(&x->mappings, slot, h, idx);
	return idx + 1;
}

/* ---- functions: keyed by name, system name, file and start line --------- */

static bool function_eq(const struct prof_profile *p, uint32_t idx, const void *key)
{
	const struct prof_function *a = &p->functions[idx], *b = key;

	return a->name == b->name && a->system_name == b->system_name &&
	       a->filename == b->filename && a->start_line == b->start_line;
}

/* @f has string indexes of @p. Returns the function id (1-based). */
static uint32_t intern_function(struct prof_profile *p, const struct prof_function *f)
{
	struct prof_profile_index *x = p->idx;
	uint64_t *slot;
	uint32_t h, idx;

	h = hfinal(hmix(hmix(hmix(hash_u64(f->name, 2), f->system_name), f->filename),
			(uint64_t)f->start_line));
	htab_reserve(&x->functions);
	slot = htab_find(&x->functions, h, p, function_eq, f);
	if (*slot)
		return (uint32_t)*slot;
	idx = p->nfunctions;
	xgrow((void **)&p->functions, &x->cap_functions, idx + 1, sizeof(*p->functions));
	p->functions[idx] = *f;
	p->nfunctions++;
	htab_set(&x->functions, slot, h, idx);
	return idx + 1;
}

/* ---- locations: keyed by mapping, address and the whole line list -------- */

struct loc_key {
	uint32_t mapping;
	uint64_t address;
	const struct prof_line *lines;
	uint32_t nlines;
};

static bool location_eq(const struct prof_profile *p, uint32_t idx, const void *key)
{
	const struct prof_location *a = &p->locations[idx];
	const struct loc_key *b = key;
	const struct prof_line *la = &p->lines[a->line_start];
	uint32_t i;

	if (a->mapping != b->mapping || a->address != b->address || a->nlines != b->nlines)
		return false;
	for (i = 0; i < b->nlines; i++) {
		if (la[i].function != b->lines[i].function || la[i].line != b->lines[i].line)
			return false;
	}
	return true;
}

/* @k has function and mapping ids of @p. Returns the location id (1-based). */
static uint32_t intern_location(struct prof_profile *p, const struct loc_key *k)
{
	struct prof_profile_index *x = p->idx;
	struct prof_location *e;
	uint64_t h64, *slot;
	uint32_t h, idx, i;

	h64 = hmix(hmix(hash_u64(k->address, 3), k->mapping), k->nlines);
	for (i = 0; i < k->nlines; i++)
		h64 = hmix(hmix(h64, k->lines[i].function), (uint64_t)k->lines[i].line);
	h = hfinal(h64);
	htab_reserve(&x->locations);
	slot = htab_find(&x->locations, h, p, location_eq, k);
	if (*slot)
		return (uint32_t)*slot;

	xgrow((void **)&p->lines, &x->cap_lines, (size_t)p->nlines + k->nlines, sizeof(*p->lines));
	if (k->nlines)
		memcpy(&p->lines[p->nlines], k->lines, k->nlines * sizeof(*k->lines));
	idx = p->nlocations;
	xgrow((void **)&p->locations, &x->cap_locations, idx + 1, sizeof(*p->locations));
	e = &p->locations[idx];
	e->mapping = k->mapping;
	e->address = k->address;
	e->line_start = p->nlines;
	e->nlines = k->nlines;
	p->nlines += k->nlines;
	p->nlocations++;
	htab_set(&x->locations, slot, h, idx);
	return idx + 1;
}

/* ---- samples: keyed by labels and the location list; counts add ---------- */

struct sample_key {
	uint32_t pid, tid, comm, thread, container;
	const uint32_t *locs;
	uint32_t nlocs;
};

static bool sample_eq(const struct prof_profile *p, uint32_t idx, const void *key)
{
	const struct prof_sample *a = &p->samples[idx];
	const struct sample_key *b = key;

	return a->pid == b->pid && a->tid == b->tid && a->comm == b->comm &&
	       a->thread == b->thread && a->container == b->container && a->nlocs == b->nlocs &&
	       (!b->nlocs ||
		memcmp(&p->sample_locs[a->loc_start], b->locs, b->nlocs * sizeof(*b->locs)) == 0);
}

static void add_counted(struct prof_profile *p, const struct sample_key *k, uint64_t count)
{
	struct prof_profile_index *x = p->idx;
	struct prof_sample *e;
	uint64_t h64, *slot;
	uint32_t h, idx, i;

	h64 = hmix(hmix(hmix(hmix(hash_u64(k->pid, 4), k->tid), k->comm), k->thread), k->nlocs);
	h64 = hmix(h64, k->container);
	for (i = 0; i < k->nlocs; i++)
		h64 = hmix(h64, k->locs[i]);
	h = hfinal(h64);
	p->total_count += count;
	htab_reserve(&x->samples);
	slot = htab_find(&x->samples, h, p, sample_eq, k);
	if (*slot) {
		p->samples[(uint32_t)*slot - 1].count += count;
		return;
	}

	xgrow((void **)&p->sample_locs, &x->cap_sample_locs, (size_t)p->nsample_locs + k->nlocs,
	      sizeof(*p->sample_locs));
	if (k->nlocs)
		memcpy(&p->sample_locs[p->nsample_locs], k->locs, k->nlocs * sizeof(*k->locs));
	idx = p->nsamples;
	xgrow((void **)&p->samples, &x->cap_samples, idx + 1, sizeof(*p->samples));
	e = &p->samples[idx];
	memset(e, 0, sizeof(*e)); /* padding too: tests and the store compare samples bytewise */
	e->loc_start = p->nsample_locs;
	e->nlocs = k->nlocs;
	e->pid = k->pid;
	e->tid = k->tid;
	e->comm = k->comm;
	e->thread = k->thread;
	e->container = k->container;
	e->count = count;
	p->nsample_locs += k->nlocs;
	p->nsamples++;
	htab_set(&x->samples, slot, h, idx);
}

/* ---- public API ---------------------------------------------------------- */

struct prof_profile *prof_profile__new(int64_t period_ns)
{
	struct prof_profile *p = xcalloc(1, sizeof(*p));
	struct prof_profile_index *x = xcalloc(1, sizeof(*x));

	p->idx = x;
	p->period_ns = period_ns;
	htab_init(&x->strings);
	htab_init(&x->mappings);
	htab_init(&x->functions);
	htab_init(&x->locations);
	htab_init(&x->samples);
	/* strings[0] is "" and stays out of the index: intern() answers 0 for it directly. */
	xgrow((void **)&p->strings, &x->cap_strings, 1, sizeof(*p->strings));
	p->strings[0] = xstrdup("");
	p->nstrings = 1;
	return p;
}

void prof_profile__free(struct prof_profile *p)
{
	struct prof_profile_index *x;
	uint32_t i;

	if (!p)
		return;
	x = p->idx;
	for (i = 0; i < p->nstrings; i++)
		free(p->strings[i]);
	free(p->strings);
	free(p->mappings);
	free(p->functions);
	free(p->locations);
	free(p->lines);
	free(p->sample_locs);
	free(p->samples);
	htab_release(&x->strings);
	htab_release(&x->mappings);
	htab_release(&x->functions);
	htab_release(&x->locations);
	htab_release(&x->samples);
	free(x->tmp_lines);
	free(x->tmp_locs);
	free(x);
	free(p);
}

static uint32_t mapping_from_in(struct prof_profile *p, const struct prof_mapping_in *in)
{
	struct prof_mapping m = {
		.start = in->start,
		.limit = in->limit,
		.offset = in->offset,
		.filename = prof_profile__intern(p, in->file),
		.build_id = prof_profile__intern(p, in->build_id),
		.has_functions = in->has_functions,
		.has_filenames = in->has_filenames,
		.has_line_numbers = in->has_line_numbers,
		.has_inline_frames = in->has_inline_frames,
	};

	return intern_mapping(p, &m);
}

static uint32_t function_from_in(struct prof_profile *p, const struct prof_line_in *in)
{
	const char *name = in->name ? in->name : "[unknown]";
	struct prof_function f = {
		.name = prof_profile__intern(p, name),
		.system_name = prof_profile__intern(p, in->system_name ? in->system_name : name),
		.filename = prof_profile__intern(p, in->file),
		.start_line = 0, /* prof_line_in does not carry it */
	};

	return intern_function(p, &f);
}

void prof_profile__add_sample(struct prof_profile *p, const struct prof_sample_in *s)
{
	struct prof_profile_index *x = p->idx;
	struct sample_key sk;
	uint32_t i, j;

	sk.pid = s->pid;
	sk.tid = s->tid;
	sk.comm = prof_profile__intern(p, s->comm);
	sk.thread = prof_profile__intern(p, s->thread);
	sk.container = prof_profile__intern(p, s->container);
	xgrow((void **)&x->tmp_locs, &x->cap_tmp_locs, s->nlocs, sizeof(*x->tmp_locs));
	for (i = 0; i < s->nlocs; i++) {
		const struct prof_loc_in *l = &s->locs[i];
		struct loc_key lk;

		xgrow((void **)&x->tmp_lines, &x->cap_tmp_lines, l->nlines, sizeof(*x->tmp_lines));
		for (j = 0; j < l->nlines; j++) {
			x->tmp_lines[j].function = function_from_in(p, &l->lines[j]);
			x->tmp_lines[j].line = l->lines[j].line;
		}
		lk.mapping = l->mapping ? mapping_from_in(p, l->mapping) : 0;
		lk.address = l->address;
		lk.lines = x->tmp_lines;
		lk.nlines = l->nlines;
		x->tmp_locs[i] = intern_location(p, &lk);
	}
	sk.locs = x->tmp_locs;
	sk.nlocs = s->nlocs;
	add_counted(p, &sk, s->count);
}

static void merge_times(struct prof_profile *dst, const struct prof_profile *src)
{
	int64_t end, src_end;

	if (!dst->period_ns)
		dst->period_ns = src->period_ns;
	if (!dst->time_nanos) {
		dst->time_nanos = src->time_nanos;
		if (src->duration_nanos > dst->duration_nanos)
			dst->duration_nanos = src->duration_nanos;
		return;
	}
	if (!src->time_nanos) {
		if (src->duration_nanos > dst->duration_nanos)
			dst->duration_nanos = src->duration_nanos;
		return;
	}
	/* dst keeps its start (profile.h); a src that starts earlier only extends the end. */
	end = dst->time_nanos + dst->duration_nanos;
	src_end = src->time_nanos + src->duration_nanos;
	if (src_end > end)
		dst->duration_nanos = src_end - dst->time_nanos;
}

void prof_profile__merge(struct prof_profile *dst, const struct prof_profile *src)
{
	struct prof_profile_index *x = dst->idx;
	uint32_t *smap, *mmap, *fmap, *lmap, i, j;

	if (dst == src) {
		/* Re-adding a profile to itself doubles every count; the tables stay as they are.
		 */
		for (i = 0; i < dst->nsamples; i++)
			dst->samples[i].count *= 2;
		dst->total_count *= 2;
		return;
	}

	/* Remap each table once, in dependency order, so samples only translate ids. */
	smap = xmalloc(((size_t)src->nstrings + 1) * sizeof(*smap));
	for (i = 0; i < src->nstrings; i++)
		smap[i] = prof_profile__intern(dst, src->strings[i]);

	mmap = xmalloc(((size_t)src->nmappings + 1) * sizeof(*mmap));
	mmap[0] = 0; /* id 0: no mapping */
	for (i = 0; i < src->nmappings; i++) {
		struct prof_mapping m = src->mappings[i];

		m.filename = smap[m.filename];
		m.build_id = smap[m.build_id];
		mmap[i + 1] = intern_mapping(dst, &m);
	}

	fmap = xmalloc(((size_t)src->nfunctions + 1) * sizeof(*fmap));
	fmap[0] = 0;
	for (i = 0; i < src->nfunctions; i++) {
		struct prof_function f = src->functions[i];

		f.name = smap[f.name];
		f.system_name = smap[f.system_name];
		f.filename = smap[f.filename];
		fmap[i + 1] = intern_function(dst, &f);
	}

	lmap = xmalloc(((size_t)src->nlocations + 1) * sizeof(*lmap));
	lmap[0] = 0;
	for (i = 0; i < src->nlocations; i++) {
		const struct prof_location *l = &src->locations[i];
		const struct prof_line *sl = &src->lines[l->line_start];
		struct loc_key lk;

		xgrow((void **)&x->tmp_lines, &x->cap_tmp_lines, l->nlines, sizeof(*x->tmp_lines));
		for (j = 0; j < l->nlines; j++) {
			x->tmp_lines[j].function = fmap[sl[j].function];
			x->tmp_lines[j].line = sl[j].line;
		}
		lk.mapping = mmap[l->mapping];
		lk.address = l->address;
		lk.lines = x->tmp_lines;
		lk.nlines = l->nlines;
		lmap[i + 1] = intern_location(dst, &lk);
	}

	for (i = 0; i < src->nsamples; i++) {
		const struct prof_sample *s = &src->samples[i];
		const uint32_t *sl = &src->sample_locs[s->loc_start];
		struct sample_key sk = {
			.pid = s->pid,
			.tid = s->tid,
			.comm = smap[s->comm],
			.thread = smap[s->thread],
			.container = smap[s->container],
			.nlocs = s->nlocs,
		};

		xgrow((void **)&x->tmp_locs, &x->cap_tmp_locs, s->nlocs, sizeof(*x->tmp_locs));
		for (j = 0; j < s->nlocs; j++)
			x->tmp_locs[j] = lmap[sl[j]];
		sk.locs = x->tmp_locs;
		add_counted(dst, &sk, s->count);
	}

	merge_times(dst, src);
	free(lmap);
	free(fmap);
	free(mmap);
	free(smap);
}
