// SPDX-License-Identifier: MIT
/*
 * profiler/store.c — the local history store (store.h); the byte layout is
 * in docs/STORE-FORMAT.md, and the constants below must match it.
 *
 * Encoding: an interval as pprof is ~160 KB on a busy host, most of it the
 * string, function and location tables, which consecutive intervals share
 * almost entirely; and under process churn every short-lived process
 * brings the same code again at other (ASLR'd) addresses. So a segment
 * keeps its tables as a log: each record carries only the entries that
 * are new to the segment (strings, mappings, functions, locations, call
 * chains, stacks), each id once, then its counts by stack id; file
 * mappings are stored once per (file, build id, offset, size), at the
 * start where the segment first saw them. What stays per interval is the
 * list of (stack id, count) pairs. The price: a record can only be read
 * after every record before it in its segment, so a corrupt record loses
 * the rest of its segment (an hour at most); every record names its base
 * (the table sizes it extends) and the record before it, so a lost record
 * is detected, never misread.
 */
#include "store.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "../common/util.h"

/* ---- format constants (docs/STORE-FORMAT.md) ----------------------------- */

#define SEG_MAGIC "BPFPSTOR"
#define SEG_VERSION 2
#define SEG_HDR_SIZE 16
#define REC_MAGIC 0x31435242u /* "BRC1" little-endian */
#define REC_HDR_SIZE 48
#define REC_MAX_PAYLOAD (64u << 20)
#define REC_MAX_RAW (256u << 20)
#define CODEC_TABLES 3 /* zstd frame of a table-log body (version 2; 1 and 2 were pprof) */

/* ---- policy ------------------------------------------------------------------ */

#define DEFAULT_MAX_AGE_NS (24ULL * 3600 * 1000000000)
#define DEFAULT_MAX_BYTES (1ULL << 30)
#define DEFAULT_MIN_FREE (256ULL << 20)
#define SEG_MAX_BYTES (8ULL << 20)
#define SEG_MAX_AGE_NS (3600LL * 1000000000)
#define SEG_MAX_FILE (1ULL << 30) /* larger files named seg-*.bps are not ours */
#define ZSTD_LEVEL 9 /* 19 saves 3 % of the bytes and costs ~20x the time on a busy record */
#define SEG_MAX_TABLES (2ULL << 20) /* the appender's tables (memory): rotate beyond this */

struct rec {
	uint64_t off; /* of the record header in the segment */
	uint32_t len; /* payload bytes */
	uint32_t raw_len; /* pprof bytes after decompression */
	uint32_t ref_off; /* offset of the record before it in the segment, 0 for the first */
	uint16_t codec;
	int64_t t, dur;
};

struct seg {
	char *path;
	int64_t name_ns; /* the time in its name */
	uint64_t size;
	bool bad; /* bad header: nothing in it is read; retention still counts it */
	struct rec *recs;
	size_t nrecs, cap;
};

struct prof_store {
	char *dir;
	uint64_t max_age_ns, max_bytes, min_free;
	uint64_t seg_max_bytes;

	/* Taken for the index and the counters; never across I/O except unlink. */
	pthread_mutex_t mu;
	struct seg **segs; /* sorted by name_ns */
	size_t nsegs, cap_segs;
	struct prof_store_stats st;

	/* Appender state, under append_mu only. */
	pthread_mutex_t append_mu;
	struct seg *active; /* segment being appended to, NULL = start a new one */
	int active_fd;
	struct wtabs *tabs; /* the active segment's tables; NULL with no active segment */
	uint64_t table_bytes; /* their size after the last append (under mu: a stat) */
	uint64_t last_off; /* offset of its last record, 0 = none yet */
	ZSTD_CCtx *cctx;
	bool low_space; /* under the floor at the last append (for logging once) */
};

/* ---- little helpers ------------------------------------------------------------ */

static void put32(unsigned char *b, uint32_t v)
{
	v = htole32(v);
	memcpy(b, &v, 4);
}
static void put64(unsigned char *b, uint64_t v)
{
	v = htole64(v);
	memcpy(b, &v, 8);
}
static uint32_t get32(const unsigned char *b)
{
	uint32_t v;

	memcpy(&v, b, 4);
	return le32toh(v);
}
static uint64_t get64(const unsigned char *b)
{
	uint64_t v;

	memcpy(&v, b, 8);
	return le64toh(v);
}

/* CRC-32 (ISO-HDLC, as in gzip), from zlib, which the build links anyway. */
static uint32_t crc(const void *data, size_t len)
{
	uint32_t c = (uint32_t)crc32(0L, Z_NULL, 0);

	while (len) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;

		c = (uint32_t)crc32(c, data, n);
		data = (const char *)data + n;
		len -= n;
	}
	return c;
}

static void seg_free(struct seg *g)
{
	if (!g)
		return;
	free(g->path);
	free(g->recs);
	free(g);
}

static void seg_add_rec(struct seg *g, const struct rec *r)
{
	xgrow((void **)&g->recs, &g->cap, g->nrecs + 1, sizeof(*g->recs));
	g->recs[g->nrecs++] = *r;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shorter than the index says: the file changed */
		done += n;
	}
	return 0;
}

/* ---- record headers --------------------------------------------------------------- */

static void rec_hdr_encode(unsigned char *h, const struct rec *r, uint32_t payload_crc)
{
	memset(h, 0, REC_HDR_SIZE);
	put32(h + 0, REC_MAGIC);
	put32(h + 4, r->len);
	put64(h + 8, (uint64_t)r->t);
	put64(h + 16, (uint64_t)r->dur);
	put32(h + 24, r->raw_len);
	h[28] = r->codec & 0xff;
	h[29] = r->codec >> 8;
	/* 30..31 flags, 36..39 reserved: zero */
	put32(h + 32, r->ref_off);
	put32(h + 40, payload_crc);
	put32(h + 44, crc(h, 44));
}

/*
 * Parses the header at @h (@avail bytes of file from there). 1 when the
 * header checks out and its payload fits in @avail, 0 otherwise; the
 * payload CRC is in *@payload_crc.
 */
static int rec_hdr_decode(const unsigned char *h, uint64_t avail, struct rec *r,
			  uint32_t *payload_crc)
{
	if (avail < REC_HDR_SIZE || get32(h) != REC_MAGIC || get32(h + 44) != crc(h, 44))
		return 0;
	r->len = get32(h + 4);
	r->t = (int64_t)get64(h + 8);
	r->dur = (int64_t)get64(h + 16);
	r->raw_len = get32(h + 24);
	r->codec = (uint16_t)(h[28] | h[29] << 8);
	r->ref_off = get32(h + 32);
	*payload_crc = get32(h + 40);
	if (r->len > REC_MAX_PAYLOAD || r->raw_len > REC_MAX_RAW || r->dur < 0 ||
	    r->codec != CODEC_TABLES)
		return 0;
	return avail - REC_HDR_SIZE >= r->len;
}

/* ---- record bodies: tables accumulated over a segment (docs/STORE-FORMAT.md) ------------ */

static void put_uv(struct strbuf *b, uint64_t v)
{
	unsigned char tmp[10];
	int n = 0;

	do {
		tmp[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	strbuf_add(b, tmp, n);
}

static uint64_t zz(int64_t v)
{
	return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

static int64_t unzz(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* A cursor over a body; any read past the end or overlong varint sets @bad. */
struct rd {
	const unsigned char *p, *end;
	bool bad;
};

static uint64_t get_uv(struct rd *r)
{
	uint64_t v = 0;
	int shift;

	for (shift = 0; shift < 64; shift += 7) {
		unsigned char c;

		if (r->p >= r->end)
			break;
		c = *r->p++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

/* An id that must already exist: 1..n (or 0 when @zero_ok). */
static uint32_t get_id(struct rd *r, uint32_t n, bool zero_ok)
{
	uint64_t v = get_uv(r);

	if (v > n || (!v && !zero_ok))
		r->bad = true;
	return r->bad ? 0 : (uint32_t)v;
}

/*
 * Interning by encoded bytes: every table entry (a string, or a mapping,
 * function, location, call chain or stack as the varints it is written
 * with) gets the next id, 1-based, the first time its bytes are seen.
 *
 * The table holds what the segment's recent records used, not everything
 * the segment ever had: itab_forget() drops the entries no record used
 * lately (the stacks of processes that exited, mostly). A dropped entry
 * that comes back is written again under a new id, which readers take
 * like any other entry. So the appender's memory follows the machine's
 * working set instead of growing until the segment ends.
 *
 * A slot holds the upper 32 bits of the hash and the entry's index + 1 in
 * ents (0 = empty).
 */
struct itab_ent {
	uint32_t id; /* in the segment */
	uint32_t off; /* its key is keys[off .. next entry's off) */
	uint32_t used; /* wtabs.gen of the last record that used it */
};

struct itab {
	uint64_t *slots;
	uint32_t mask;
	uint32_t n; /* ids given in the segment so far: the next one is n + 1 */
	struct itab_ent *ents; /* ents[nents].off ends the last key */
	uint32_t nents;
	size_t cap_ents;
	struct strbuf keys; /* the held keys back to back */
	uint64_t *payload; /* per entry, for tables that have one (T_CANON) */
	size_t cap_payload;
};

static void itab_init(struct itab *t)
{
	memset(t, 0, sizeof(*t));
	t->mask = 255;
	t->slots = xcalloc(t->mask + 1, sizeof(*t->slots));
	xgrow((void **)&t->ents, &t->cap_ents, 1, sizeof(*t->ents));
	t->ents[0].off = 0;
}

static void itab_release(struct itab *t)
{
	free(t->slots);
	free(t->ents);
	free(t->payload);
	strbuf_release(&t->keys);
	memset(t, 0, sizeof(*t));
}

static uint32_t itab_hash(const void *key, size_t len)
{
	return (uint32_t)(hash_bytes(key, len, 0x5eed) >> 32);
}

static void itab_place(struct itab *t, uint32_t h, uint32_t idx)
{
	uint32_t pos = h & t->mask;

	while (t->slots[pos])
		pos = (pos + 1) & t->mask;
	t->slots[pos] = (uint64_t)h << 32 | (idx + 1);
}

static void itab_grow(struct itab *t)
{
	uint64_t *old = t->slots;
	uint32_t nold = t->mask + 1, i;

	t->mask = nold * 2 - 1;
	t->slots = xcalloc((size_t)nold * 2, sizeof(*t->slots));
	for (i = 0; i < nold; i++)
		if (old[i])
			itab_place(t, (uint32_t)(old[i] >> 32), (uint32_t)old[i] - 1);
	free(old);
}

/* The index in ents of @key, added if new (*@added says so); marks it used in @gen. */
static uint32_t itab_intern(struct itab *t, const void *key, size_t len, uint32_t gen, bool *added)
{
	uint32_t h, pos, idx;

	if ((size_t)(t->nents + 1) * 4 > ((size_t)t->mask + 1) * 3)
		itab_grow(t);
	h = itab_hash(key, len);
	for (pos = h & t->mask; t->slots[pos]; pos = (pos + 1) & t->mask) {
		const struct itab_ent *e;

		idx = (uint32_t)t->slots[pos] - 1;
		e = &t->ents[idx];
		if ((uint32_t)(t->slots[pos] >> 32) == h && e[1].off - e->off == len &&
		    !memcmp(t->keys.buf + e->off, key, len)) {
			t->ents[idx].used = gen;
			*added = false;
			return idx;
		}
	}
	idx = t->nents++;
	strbuf_add(&t->keys, key, len);
	xgrow((void **)&t->ents, &t->cap_ents, t->nents + 1, sizeof(*t->ents));
	t->ents[idx].id = ++t->n;
	t->ents[idx].used = gen;
	t->ents[t->nents].off = (uint32_t)t->keys.len;
	t->slots[pos] = (uint64_t)h << 32 | (idx + 1);
	*added = true;
	return idx;
}

/*
 * Drops the entries last used before generation @keep_from, and gives
 * their memory back: the keys, entries and slots are rebuilt at the size
 * of what is left.
 */
static void itab_forget(struct itab *t, uint32_t keep_from)
{
	struct strbuf keys = STRBUF_INIT;
	uint32_t i, j = 0, nslots = 256;
	struct itab_ent *ents = NULL;
	size_t cap = 0, bytes = 0;

	for (i = 0; i < t->nents; i++)
		if (t->ents[i].used >= keep_from) {
			j++;
			bytes += t->ents[i + 1].off - t->ents[i].off;
		}
	if (j == t->nents)
		return;
	xgrow((void **)&ents, &cap, (size_t)j + 1, sizeof(*ents));
	strbuf_grow(&keys, bytes);
	for (i = j = 0; i < t->nents; i++) {
		const struct itab_ent *e = &t->ents[i];

		if (e->used < keep_from)
			continue;
		ents[j] =
			(struct itab_ent){.id = e->id, .off = (uint32_t)keys.len, .used = e->used};
		strbuf_add(&keys, t->keys.buf + e->off, e[1].off - e->off);
		if (t->payload)
			t->payload[j] = t->payload[i];
		j++;
	}
	ents[j].off = (uint32_t)keys.len;
	strbuf_release(&t->keys);
	t->keys = keys;
	free(t->ents);
	t->ents = ents;
	t->cap_ents = cap;
	t->nents = j;
	while ((size_t)(j + 1) * 4 > (size_t)nslots * 3)
		nslots *= 2;
	free(t->slots);
	t->mask = nslots - 1;
	t->slots = xcalloc(nslots, sizeof(*t->slots));
	for (i = 0; i < j; i++)
		itab_place(t, itab_hash(t->keys.buf + ents[i].off, ents[i + 1].off - ents[i].off),
			   i);
}

static size_t itab_bytes(const struct itab *t)
{
	return t->keys.cap + ((size_t)t->mask + 1) * sizeof(*t->slots) +
	       t->cap_ents * sizeof(*t->ents) + t->cap_payload * sizeof(*t->payload);
}

enum { T_STR, T_MAP, T_FN, T_LOC, T_CHAIN, T_STACK, T_CANON, NTABS };

/*
 * The appender's view of the active segment: what its recent records
 * wrote, by encoded value. T_CANON is not written: it keys a file mapping
 * by (file, build id, offset, size) and remembers the start it was first
 * seen at (its payload), so that the same code mapped by many processes at
 * ASLR'd addresses is stored once, at that start.
 */
struct wtabs {
	struct itab t[NTABS];
	uint32_t gen; /* records encoded into the segment so far */
};

/*
 * Every WTABS_FORGET_EVERY records, entries that none of the last
 * WTABS_KEEP records used are forgotten (itab_forget): 18 records are 3
 * minutes at the default 10 s interval. What comes back after that is
 * written again, which costs the store a little; what never comes back
 * (the stacks of exited processes) no longer costs memory.
 */
#define WTABS_FORGET_EVERY 6
#define WTABS_KEEP 18

static struct wtabs *wtabs_new(void)
{
	struct wtabs *w = xcalloc(1, sizeof(*w));
	int i;

	for (i = 0; i < NTABS; i++)
		itab_init(&w->t[i]);
	return w;
}

static void wtabs_free(struct wtabs *w)
{
	int i;

	if (!w)
		return;
	for (i = 0; i < NTABS; i++)
		itab_release(&w->t[i]);
	free(w);
}

static size_t wtabs_bytes(const struct wtabs *w)
{
	size_t b = 0;
	int i;

	for (i = 0; i < NTABS; i++)
		b += itab_bytes(&w->t[i]);
	return b;
}

/* After a record was written: forget what the recent records did not use. */
static void wtabs_forget(struct wtabs *w)
{
	int i;

	if (w->gen % WTABS_FORGET_EVERY || w->gen <= WTABS_KEEP)
		return;
	for (i = 0; i < NTABS; i++)
		itab_forget(&w->t[i], w->gen - WTABS_KEEP);
}

struct idcount {
	uint32_t id;
	uint64_t count;
};

static int idcount_cmp(const void *a, const void *b)
{
	const struct idcount *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Interns @key in table @t; a new entry's bytes also go to @sec (the record's section). */
static uint32_t wput(struct wtabs *w, int t, const struct strbuf *key, struct strbuf *sec,
		     uint32_t *nnew)
{
	bool added;
	struct itab *it = &w->t[t];
	uint32_t idx = itab_intern(it, key->buf, key->len, w->gen, &added);
	uint32_t id = it->ents[idx].id; /* after the call: it may move ents */

	if (added) {
		if (t == T_STR)
			put_uv(sec, key->len);
		strbuf_add(sec, key->buf, key->len);
		(*nnew)++;
	}
	return id;
}

/* What a record added, by table, for the debug log (-vvv) and the tests' size figures. */
struct body_stats {
	uint32_t nnew[NTABS - 1], ncounts;
	size_t bytes[NTABS - 1], count_bytes;
};

/*
 * The body of one record: what @p adds to the segment's tables, then its
 * counts by stack id. Layout in docs/STORE-FORMAT.md ("Record bodies").
 */
static void encode_body(struct wtabs *w, const struct prof_profile *p, struct strbuf *body,
			struct body_stats *bs)
{
	struct strbuf sec[NTABS - 1], key = STRBUF_INIT;
	uint32_t nnew[NTABS - 1] = {0}, base[NTABS - 1], i, j;
	uint32_t *smap, *mmap, *fmap, *lmap;
	uint64_t *morig;
	struct idcount *cnt;
	uint32_t ncnt = 0;

	memset(sec, 0, sizeof(sec));
	w->gen++;
	for (i = 0; i < NTABS - 1; i++)
		base[i] = w->t[i].n;
	smap = xcalloc((size_t)p->nstrings + 1, sizeof(*smap));
	for (i = 1; i < p->nstrings; i++) {
		strbuf_reset(&key);
		strbuf_adds(&key, p->strings[i]);
		smap[i] = wput(w, T_STR, &key, &sec[T_STR], &nnew[T_STR]);
	}

	mmap = xcalloc((size_t)p->nmappings + 1, sizeof(*mmap));
	morig = xcalloc((size_t)p->nmappings + 1, sizeof(*morig));
	for (i = 0; i < p->nmappings; i++) {
		const struct prof_mapping *m = &p->mappings[i];
		uint64_t start = m->start, size = m->limit - m->start;

		/* File-backed code: one start per (file, build id, offset, size) in a segment. */
		if (prof_str(p, m->filename)[0] == '/') {
			bool added;
			uint32_t c;

			strbuf_reset(&key);
			put_uv(&key, smap[m->filename]);
			put_uv(&key, smap[m->build_id]);
			put_uv(&key, m->offset);
			put_uv(&key, size);
			struct itab *ct = &w->t[T_CANON];

			c = itab_intern(ct, key.buf, key.len, w->gen, &added);
			xgrow((void **)&ct->payload, &ct->cap_payload, (size_t)c + 1,
			      sizeof(*ct->payload));
			if (added)
				ct->payload[c] = m->start;
			start = ct->payload[c];
		}
		morig[i + 1] = m->start;
		strbuf_reset(&key);
		put_uv(&key, start);
		put_uv(&key, size);
		put_uv(&key, m->offset);
		put_uv(&key, smap[m->filename]);
		put_uv(&key, smap[m->build_id]);
		put_uv(&key, (uint64_t)m->has_functions | (uint64_t)m->has_filenames << 1 |
				     (uint64_t)m->has_line_numbers << 2 |
				     (uint64_t)m->has_inline_frames << 3);
		mmap[i + 1] = wput(w, T_MAP, &key, &sec[T_MAP], &nnew[T_MAP]);
	}

	fmap = xcalloc((size_t)p->nfunctions + 1, sizeof(*fmap));
	for (i = 0; i < p->nfunctions; i++) {
		const struct prof_function *f = &p->functions[i];

		strbuf_reset(&key);
		put_uv(&key, smap[f->name]);
		put_uv(&key, smap[f->system_name]);
		put_uv(&key, smap[f->filename]);
		put_uv(&key, zz(f->start_line));
		fmap[i + 1] = wput(w, T_FN, &key, &sec[T_FN], &nnew[T_FN]);
	}

	lmap = xcalloc((size_t)p->nlocations + 1, sizeof(*lmap));
	for (i = 0; i < p->nlocations; i++) {
		const struct prof_location *l = &p->locations[i];
		const struct prof_line *ln = &p->lines[l->line_start];

		strbuf_reset(&key);
		put_uv(&key, mmap[l->mapping]);
		/* Relative to the mapping's start: small, and equal across processes. */
		put_uv(&key, zz((int64_t)(l->address - morig[l->mapping])));
		put_uv(&key, l->nlines);
		for (j = 0; j < l->nlines; j++) {
			put_uv(&key, fmap[ln[j].function]);
			put_uv(&key, zz(ln[j].line));
		}
		lmap[i + 1] = wput(w, T_LOC, &key, &sec[T_LOC], &nnew[T_LOC]);
	}

	cnt = xcalloc((size_t)p->nsamples + 1, sizeof(*cnt));
	for (i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		const uint32_t *sl = &p->sample_locs[s->loc_start];
		uint32_t chain;

		if (!s->count)
			continue;
		strbuf_reset(&key);
		put_uv(&key, s->nlocs);
		for (j = 0; j < s->nlocs; j++)
			put_uv(&key, lmap[sl[j]]);
		chain = wput(w, T_CHAIN, &key, &sec[T_CHAIN], &nnew[T_CHAIN]);
		strbuf_reset(&key);
		put_uv(&key, s->pid);
		put_uv(&key, zz((int64_t)s->tid - (int64_t)s->pid));
		put_uv(&key, smap[s->comm]);
		put_uv(&key, smap[s->thread]);
		put_uv(&key, smap[s->container]);
		put_uv(&key, chain);
		cnt[ncnt].id = wput(w, T_STACK, &key, &sec[T_STACK], &nnew[T_STACK]);
		cnt[ncnt++].count = s->count;
	}
	/* Rebasing can make two samples one stack: add them up; ids ascending, as deltas. */
	qsort(cnt, ncnt, sizeof(*cnt), idcount_cmp);
	for (i = j = 0; i < ncnt; i++) {
		if (j && cnt[j - 1].id == cnt[i].id)
			cnt[j - 1].count += cnt[i].count;
		else
			cnt[j++] = cnt[i];
	}
	ncnt = j;

	strbuf_reset(body);
	for (i = 0; i < NTABS - 1; i++)
		put_uv(body, base[i]);
	put_uv(body, p->period_ns > 0 ? (uint64_t)p->period_ns : 0);
	for (i = 0; i < NTABS - 1; i++) {
		put_uv(body, nnew[i]);
		if (sec[i].len) /* an empty strbuf has no buffer: memcpy from NULL is UB */
			strbuf_add(body, sec[i].buf, sec[i].len);
		bs->nnew[i] = nnew[i];
		bs->bytes[i] = sec[i].len;
		strbuf_release(&sec[i]);
	}
	bs->ncounts = ncnt;
	bs->count_bytes = body->len;
	put_uv(body, ncnt);
	for (i = 0; i < ncnt; i++) {
		put_uv(body, cnt[i].id - (i ? cnt[i - 1].id : 0));
		put_uv(body, cnt[i].count);
	}
	bs->count_bytes = body->len - bs->count_bytes;
	strbuf_release(&key);
	free(cnt);
	free(lmap);
	free(fmap);
	free(morig);
	free(mmap);
	free(smap);
}

/*
 * The reader's view of one segment, rebuilt record by record. Entries hold
 * ids; strings live in @arena (NUL-terminated), found by offset.
 */
struct rtabs {
	struct strbuf arena;
	uint32_t *str_off; /* string id i -> arena offset; id 0 is "" at offset 0 */
	uint32_t nstr;
	size_t cap_str;
	struct rmap {
		uint64_t start, size, offset;
		uint32_t file, build_id;
		uint8_t flags;
	} * maps;
	uint32_t nmaps;
	size_t cap_maps;
	struct rfn {
		uint32_t name, system_name, file;
		int64_t start_line;
	} * fns;
	uint32_t nfns;
	size_t cap_fns;
	struct rloc {
		uint32_t mapping, line_start, nlines;
		uint64_t rel;
	} * locs;
	uint32_t nlocs;
	size_t cap_locs;
	struct rline {
		uint32_t fn;
		int64_t line;
	} * lines;
	uint32_t nlines;
	size_t cap_lines;
	uint32_t *chain_locs; /* a chain's location ids */
	size_t nchain_locs, cap_chain_locs;
	struct rchain {
		uint32_t start, n;
	} * chains;
	uint32_t nchains;
	size_t cap_chains;
	struct rstack {
		uint32_t pid, tid, comm, thread, container, chain;
	} * stacks;
	uint32_t nstacks;
	size_t cap_stacks;
	uint64_t *counts; /* per stack, summed over the records in range */
	size_t cap_counts;
	int64_t period_ns;
	const struct prof_store_filter *filt; /* for rec_matched */
	uint64_t rec_matched; /* samples of the last record applied that pass filt */
};

static void rtabs_init(struct rtabs *r)
{
	memset(r, 0, sizeof(*r));
	strbuf_addc(&r->arena, '\0'); /* string 0: "" */
	xgrow((void **)&r->str_off, &r->cap_str, 1, sizeof(*r->str_off));
	r->str_off[0] = 0;
	r->nstr = 1;
}

static void rtabs_release(struct rtabs *r)
{
	strbuf_release(&r->arena);
	free(r->str_off);
	free(r->maps);
	free(r->fns);
	free(r->locs);
	free(r->lines);
	free(r->chain_locs);
	free(r->chains);
	free(r->stacks);
	free(r->counts);
	memset(r, 0, sizeof(*r));
}

/*
 * Applies one record body to @r: its base must be exactly what @r holds
 * (the record follows the one before it, nothing was lost), every id must
 * name an entry that exists. When @use, its counts are added to
 * r->counts. -EBADMSG on any mismatch, with @r as it was before the call
 * (the caller then drops the rest of the segment).
 */
static int apply_body_(struct rtabs *r, const unsigned char *b, size_t len, bool use);
static const char *rstr(const struct rtabs *r, uint32_t id);

/* Whether stack @id (1-based) passes r->filt (every stack does without one). */
static bool stack_passes(const struct rtabs *r, uint32_t id)
{
	const struct rstack *s = &r->stacks[id - 1];
	struct prof_filter pf;

	if (!r->filt)
		return true;
	pf = (struct prof_filter){r->filt->pid, r->filt->comm, r->filt->container};
	return prof_filter__match(&pf, s->pid, rstr(r, s->comm),
				  s->container ? rstr(r, s->container) : NULL);
}

static int apply_body(struct rtabs *r, const unsigned char *b, size_t len, bool use)
{
	struct rtabs was = *r;
	int err = apply_body_(r, b, len, use);

	if (err) { /* forget the part of the record that was added; the arrays stay */
		r->arena.len = was.arena.len;
		r->nstr = was.nstr;
		r->nmaps = was.nmaps;
		r->nfns = was.nfns;
		r->nlocs = was.nlocs;
		r->nlines = was.nlines;
		r->nchain_locs = was.nchain_locs;
		r->nchains = was.nchains;
		r->nstacks = was.nstacks;
	}
	return err;
}

static int apply_body_(struct rtabs *r, const unsigned char *b, size_t len, bool use)
{
	struct rd d = {b, b + len, false};
	uint32_t have[NTABS - 1] = {r->nstr - 1, r->nmaps,   r->nfns,
				    r->nlocs,	 r->nchains, r->nstacks};
	uint64_t n, i, j, period;
	uint32_t id;

	for (i = 0; i < NTABS - 1; i++) {
		if (get_uv(&d) != have[i] || d.bad)
			return -EBADMSG;
	}
	period = get_uv(&d);

	n = get_uv(&d);
	for (i = 0; i < n && !d.bad; i++) {
		uint64_t sl = get_uv(&d);

		if (d.bad || sl > (uint64_t)(d.end - d.p) || memchr(d.p, 0, sl) ||
		    r->arena.len + sl + 1 > UINT32_MAX)
			return -EBADMSG;
		xgrow((void **)&r->str_off, &r->cap_str, r->nstr + 1, sizeof(*r->str_off));
		r->str_off[r->nstr++] = (uint32_t)r->arena.len;
		strbuf_add(&r->arena, d.p, sl);
		strbuf_addc(&r->arena, '\0');
		d.p += sl;
	}

	n = get_uv(&d);
	for (i = 0; i < n && !d.bad; i++) {
		struct rmap m;

		m.start = get_uv(&d);
		m.size = get_uv(&d);
		m.offset = get_uv(&d);
		m.file = get_id(&d, r->nstr - 1, true);
		m.build_id = get_id(&d, r->nstr - 1, true);
		m.flags = (uint8_t)get_uv(&d);
		xgrow((void **)&r->maps, &r->cap_maps, r->nmaps + 1, sizeof(*r->maps));
		r->maps[r->nmaps++] = m;
	}

	n = get_uv(&d);
	for (i = 0; i < n && !d.bad; i++) {
		struct rfn f;

		f.name = get_id(&d, r->nstr - 1, true);
		f.system_name = get_id(&d, r->nstr - 1, true);
		f.file = get_id(&d, r->nstr - 1, true);
		f.start_line = unzz(get_uv(&d));
		xgrow((void **)&r->fns, &r->cap_fns, r->nfns + 1, sizeof(*r->fns));
		r->fns[r->nfns++] = f;
	}

	n = get_uv(&d);
	for (i = 0; i < n && !d.bad; i++) {
		struct rloc l;
		uint64_t nl;

		l.mapping = get_id(&d, r->nmaps, true);
		l.rel = get_uv(&d);
		nl = get_uv(&d);
		if (d.bad || nl > (uint64_t)(d.end - d.p))
			return -EBADMSG;
		l.line_start = r->nlines;
		l.nlines = (uint32_t)nl;
		xgrow((void **)&r->lines, &r->cap_lines, (size_t)r->nlines + nl, sizeof(*r->lines));
		for (j = 0; j < nl; j++) {
			r->lines[r->nlines + j].fn = get_id(&d, r->nfns, false);
			r->lines[r->nlines + j].line = unzz(get_uv(&d));
		}
		r->nlines += (uint32_t)nl;
		xgrow((void **)&r->locs, &r->cap_locs, r->nlocs + 1, sizeof(*r->locs));
		r->locs[r->nlocs++] = l;
	}

	n = get_uv(&d);
	for (i = 0; i < n && !d.bad; i++) {
		uint64_t nl = get_uv(&d);

		if (d.bad || nl > (uint64_t)(d.end - d.p))
			return -EBADMSG;
		xgrow((void **)&r->chain_locs, &r->cap_chain_locs, r->nchain_locs + nl,
		      sizeof(*r->chain_locs));
		for (j = 0; j < nl; j++)
			r->chain_locs[r->nchain_locs + j] = get_id(&d, r->nlocs, false);
		xgrow((void **)&r->chains, &r->cap_chains, r->nchains + 1, sizeof(*r->chains));
		r->chains[r->nchains].start = (uint32_t)r->nchain_locs;
		r->chains[r->nchains++].n = (uint32_t)nl;
		r->nchain_locs += nl;
	}

	n = get_uv(&d);
	for (i = 0; i < n && !d.bad; i++) {
		struct rstack s;

		s.pid = (uint32_t)get_uv(&d);
		s.tid = (uint32_t)(s.pid + unzz(get_uv(&d)));
		s.comm = get_id(&d, r->nstr - 1, true);
		s.thread = get_id(&d, r->nstr - 1, true);
		s.container = get_id(&d, r->nstr - 1, true);
		s.chain = get_id(&d, r->nchains, false);
		xgrow((void **)&r->stacks, &r->cap_stacks, r->nstacks + 1, sizeof(*r->stacks));
		r->stacks[r->nstacks++] = s;
	}
	xgrow((void **)&r->counts, &r->cap_counts, r->nstacks + 1, sizeof(*r->counts));
	/* xgrow does not zero: clear what this record added. */
	memset(&r->counts[have[T_STACK] + 1], 0, (r->nstacks - have[T_STACK]) * sizeof(*r->counts));

	/* Counts last; checked whole before any is added. */
	n = get_uv(&d);
	{
		const unsigned char *start = d.p;

		for (i = 0, id = 0; i < n && !d.bad; i++) {
			uint64_t delta = get_uv(&d);

			if (!delta || delta > r->nstacks - id)
				d.bad = true;
			id += (uint32_t)delta;
			get_uv(&d);
		}
		if (d.bad || d.p != d.end)
			return -EBADMSG;
		if (!use)
			return 0;
		d.p = start;
		r->rec_matched = 0;
		for (i = 0, id = 0; i < n; i++) {
			uint64_t c;

			id += (uint32_t)get_uv(&d);
			c = get_uv(&d);
			r->counts[id] += c;
			if (stack_passes(r, id))
				r->rec_matched += c;
		}
	}
	if (period && !r->period_ns)
		r->period_ns = (int64_t)period;
	return 0;
}

static const char *rstr(const struct rtabs *r, uint32_t id)
{
	return r->arena.buf + r->str_off[id];
}

/*
 * Adds every stack of @r with a count, matching @f, to @dst. The tables are
 * turned into prof_*_in inputs once; each stack then costs one
 * prof_profile__add_sample().
 */
static void rtabs_merge_into(const struct rtabs *r, const struct prof_store_filter *f,
			     struct prof_profile *dst)
{
	struct prof_mapping_in *mi = xcalloc((size_t)r->nmaps + 1, sizeof(*mi));
	struct prof_line_in *li = xcalloc((size_t)r->nlines + 1, sizeof(*li));
	struct prof_loc_in *loc = xcalloc((size_t)r->nlocs + 1, sizeof(*loc));
	struct prof_loc_in *tmp = NULL;
	size_t cap_tmp = 0;
	uint32_t i, j, comm = UINT32_MAX;

	if (f && f->comm) { /* the comm's string id, if it is there at all */
		for (i = 0; i < r->nstr && comm == UINT32_MAX; i++)
			if (!strcmp(rstr(r, i), f->comm))
				comm = i;
		if (comm == UINT32_MAX)
			goto out;
	}
	for (i = 0; i < r->nmaps; i++) {
		const struct rmap *m = &r->maps[i];

		mi[i] = (struct prof_mapping_in){
			.start = m->start,
			.limit = m->start + m->size,
			.offset = m->offset,
			.file = rstr(r, m->file),
			.build_id = m->build_id ? rstr(r, m->build_id) : NULL,
			.has_functions = m->flags & 1,
			.has_filenames = m->flags & 2,
			.has_line_numbers = m->flags & 4,
			.has_inline_frames = m->flags & 8,
		};
	}
	for (i = 0; i < r->nlines; i++) {
		const struct rfn *fn = &r->fns[r->lines[i].fn - 1];

		li[i] = (struct prof_line_in){
			.name = rstr(r, fn->name),
			.system_name = rstr(r, fn->system_name),
			.file = fn->file ? rstr(r, fn->file) : NULL,
			.line = r->lines[i].line,
		};
	}
	for (i = 0; i < r->nlocs; i++) {
		const struct rloc *l = &r->locs[i];

		loc[i] = (struct prof_loc_in){
			.address = (l->mapping ? r->maps[l->mapping - 1].start : 0) +
				   (uint64_t)unzz(l->rel),
			.mapping = l->mapping ? &mi[l->mapping - 1] : NULL,
			.lines = &li[l->line_start],
			.nlines = l->nlines,
		};
	}
	for (i = 0; i < r->nstacks; i++) {
		const struct rstack *s = &r->stacks[i];
		const struct rchain *c = &r->chains[s->chain - 1];
		struct prof_sample_in in;

		if (!r->counts[i + 1] || (f && f->pid && s->pid != f->pid) ||
		    (comm != UINT32_MAX && s->comm != comm) ||
		    (f && f->container && !stack_passes(r, i + 1)))
			continue;
		xgrow((void **)&tmp, &cap_tmp, c->n + 1, sizeof(*tmp));
		for (j = 0; j < c->n; j++)
			tmp[j] = loc[r->chain_locs[c->start + j] - 1];
		in = (struct prof_sample_in){
			.pid = s->pid,
			.tid = s->tid,
			.comm = rstr(r, s->comm),
			.thread = rstr(r, s->thread),
			.container = s->container ? rstr(r, s->container) : NULL,
			.locs = tmp,
			.nlocs = c->n,
			.count = r->counts[i + 1],
		};
		prof_profile__add_sample(dst, &in);
	}
	if (!dst->period_ns)
		dst->period_ns = r->period_ns;
out:
	free(tmp);
	free(loc);
	free(li);
	free(mi);
}

/* ---- opening: scan and recover ------------------------------------------------------- */

enum scan_result { SCAN_KEEP, SCAN_DELETE };

static void seg_hdr_encode(unsigned char *h)
{
	memcpy(h, SEG_MAGIC, 8);
	put32(h + 8, SEG_VERSION);
	put32(h + 12, crc(h, 12));
}

/*
 * Indexes one segment, cutting off a torn tail. Records are self-delimiting:
 * a record whose header checks out but whose payload does not is skipped by
 * its length; a header that does not check out (the length is then not to
 * be trusted) makes the scan look for the next record magic whose header
 * checks out. Bytes at the end that hold no valid record are a torn tail,
 * truncated away: appends only ever happen at the end of a segment.
 * A record builds on every record before it, so after a bad one (or one
 * that does not name its predecessor) the rest of the segment is counted
 * as corrupt and not indexed.
 */
static enum scan_result scan_segment(struct prof_store *s, struct seg *g)
{
	unsigned char *buf = NULL;
	uint64_t off, good_end, prev = 0, lost = 0;
	struct stat sb;
	int fd;

	fd = open(g->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fd = open(g->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb)) {
		pr_warn("store '%s': %s: %s; skipped\n", s->dir, g->path, strerror(errno));
		g->bad = true;
		if (fd >= 0)
			close(fd);
		return SCAN_KEEP;
	}
	g->size = (uint64_t)sb.st_size;
	if (g->size < SEG_HDR_SIZE) {
		/* The header is written with one pwrite(): a crash while creating the file. */
		pr_warn("store '%s': %s: torn segment header (%" PRIu64 " bytes); removed\n",
			s->dir, g->path, g->size);
		s->st.torn_tails_truncated++;
		close(fd);
		unlink(g->path);
		return SCAN_DELETE;
	}
	if (g->size > SEG_MAX_FILE)
		goto bad;
	buf = xmalloc(g->size);
	if (pread_full(fd, buf, g->size, 0))
		goto bad;
	{
		unsigned char want[SEG_HDR_SIZE];

		seg_hdr_encode(want);
		if (memcmp(buf, want, SEG_HDR_SIZE)) {
			if (!memcmp(buf, want, 8) && get32(buf + 12) == crc(buf, 12) &&
			    get32(buf + 8) < SEG_VERSION) {
				pr_warn("store '%s': %s: format version %u, written by an older "
					"bpfprof, is not read (retention deletes it)\n",
					s->dir, g->path, get32(buf + 8));
				s->st.corrupt_segments++;
				g->bad = true;
				free(buf);
				close(fd);
				return SCAN_KEEP;
			}
			goto bad;
		}
	}

	off = good_end = SEG_HDR_SIZE;
	while (off < g->size) {
		uint32_t pcrc;
		struct rec r;
		uint64_t next;

		if (rec_hdr_decode(buf + off, g->size - off, &r, &pcrc)) {
			r.off = off;
			next = off + REC_HDR_SIZE + r.len;
			if (lost) {
				lost++;
				s->st.corrupt_records++;
			} else if (crc(buf + off + REC_HDR_SIZE, r.len) != pcrc) {
				pr_warn("store '%s': %s: record at %" PRIu64 ": bad checksum\n",
					s->dir, g->path, off);
				lost = 1;
				s->st.corrupt_records++;
			} else if (r.ref_off != prev) {
				pr_warn("store '%s': %s: record at %" PRIu64
					": does not follow the record before it\n",
					s->dir, g->path, off);
				lost = 1;
				s->st.corrupt_records++;
			} else {
				seg_add_rec(g, &r);
				prev = off;
			}
			off = good_end = next;
			continue;
		}
		/* Resynchronise on the next header that checks out. */
		for (next = off + 1; next + REC_HDR_SIZE <= g->size; next++) {
			unsigned char *m = memchr(buf + next, REC_MAGIC & 0xff,
						  g->size - REC_HDR_SIZE + 1 - next);

			if (!m)
				break;
			next = m - buf;
			if (rec_hdr_decode(buf + next, g->size - next, &r, &pcrc))
				break;
		}
		if (next + REC_HDR_SIZE > g->size ||
		    !rec_hdr_decode(buf + next, g->size - next, &r, &pcrc))
			break; /* nothing valid follows: a torn tail */
		pr_warn("store '%s': %s: %" PRIu64 " unreadable bytes at %" PRIu64 "\n", s->dir,
			g->path, next - off, off);
		s->st.corrupt_records++;
		lost++;
		off = next;
	}
	if (lost)
		pr_warn("store '%s': %s: %" PRIu64
			" records from the first bad one on are unreadable"
			" (each builds on the ones before it); skipped\n",
			s->dir, g->path, lost);
	if (good_end < g->size) {
		pr_warn("store '%s': %s: torn tail of %" PRIu64 " bytes at %" PRIu64
			"; truncated\n",
			s->dir, g->path, g->size - good_end, good_end);
		s->st.torn_tails_truncated++;
		if (ftruncate(fd, (off_t)good_end) || fdatasync(fd))
			pr_warn("store '%s': %s: truncate: %s\n", s->dir, g->path, strerror(errno));
		else
			g->size = good_end;
	}
	free(buf);
	close(fd);
	return SCAN_KEEP;

bad:
	pr_warn("store '%s': %s: not a version %d segment (bad header or size); skipped\n", s->dir,
		g->path, SEG_VERSION);
	s->st.corrupt_segments++;
	g->bad = true;
	free(buf);
	close(fd);
	return SCAN_KEEP;
}

/* "seg-<20 digits>.bps" -> its time. False for any other name. */
static bool parse_seg_name(const char *name, int64_t *ns)
{
	char *end;
	unsigned long long v;

	if (strncmp(name, "seg-", 4) || !(name[4] >= '0' && name[4] <= '9'))
		return false;
	errno = 0;
	v = strtoull(name + 4, &end, 10);
	if (errno || strcmp(end, ".bps") || v > INT64_MAX)
		return false;
	*ns = (int64_t)v;
	return true;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct seg *x = *(struct seg *const *)a, *y = *(struct seg *const *)b;

	if (x->name_ns != y->name_ns)
		return x->name_ns < y->name_ns ? -1 : 1;
	return strcmp(x->path, y->path);
}

static void segs_push(struct prof_store *s, struct seg *g)
{
	xgrow((void **)&s->segs, &s->cap_segs, s->nsegs + 1, sizeof(*s->segs));
	s->segs[s->nsegs++] = g;
}

struct prof_store *prof_store__open(const struct prof_store_opts *opts)
{
	struct prof_store *s;
	struct dirent *de;
	size_t i, n;
	DIR *d;
	int err;

	if (!opts || !opts->dir || !*opts->dir) {
		errno = EINVAL;
		return NULL;
	}
	if (mkdir(opts->dir, 0700) && errno != EEXIST)
		return NULL;
	d = opendir(opts->dir);
	if (!d)
		return NULL;
	if (access(opts->dir, W_OK | X_OK)) {
		err = errno;
		closedir(d);
		errno = err;
		return NULL;
	}

	s = xcalloc(1, sizeof(*s));
	s->dir = xstrdup(opts->dir);
	s->max_age_ns = opts->max_age_ns ? opts->max_age_ns : DEFAULT_MAX_AGE_NS;
	s->max_bytes = opts->max_bytes ? opts->max_bytes : DEFAULT_MAX_BYTES;
	s->min_free = opts->min_free_bytes ? opts->min_free_bytes : DEFAULT_MIN_FREE;
	/* At least 8 segments under max_bytes, so size retention has something to delete. */
	s->seg_max_bytes = s->max_bytes / 8 < SEG_MAX_BYTES ? s->max_bytes / 8 : SEG_MAX_BYTES;
	s->active_fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->append_mu, NULL);
	s->cctx = ZSTD_createCCtx();
	if (!s->cctx) {
		pr_err("store '%s': out of memory for zstd\n", s->dir);
		abort();
	}

	while ((de = readdir(d))) {
		struct seg *g;
		int64_t ns;

		if (!parse_seg_name(de->d_name, &ns))
			continue;
		g = xcalloc(1, sizeof(*g));
		g->name_ns = ns;
		g->path = xmalloc(strlen(s->dir) + strlen(de->d_name) + 2);
		sprintf(g->path, "%s/%s", s->dir, de->d_name);
		segs_push(s, g);
	}
	closedir(d);
	if (s->nsegs > 1)
		qsort(s->segs, s->nsegs, sizeof(*s->segs), seg_cmp);
	for (i = n = 0; i < s->nsegs; i++) {
		if (scan_segment(s, s->segs[i]) == SCAN_DELETE)
			seg_free(s->segs[i]);
		else
			s->segs[n++] = s->segs[i];
	}
	s->nsegs = n;
	pr_info("store '%s': %zu segments opened\n", s->dir, s->nsegs);
	return s;
}

/* ---- appending ------------------------------------------------------------------------ */

static void close_active(struct prof_store *s)
{
	if (s->active_fd >= 0)
		close(s->active_fd);
	s->active_fd = -1;
	s->active = NULL;
	wtabs_free(s->tabs);
	s->tabs = NULL;
	s->table_bytes = 0;
	s->last_off = 0;
}

/* Under mu. Deletes segment @i (its file and its index). */
static void delete_seg(struct prof_store *s, size_t i, const char *why)
{
	struct seg *g = s->segs[i];

	pr_info("store '%s': %s: deleted (%s)\n", s->dir, g->path, why);
	if (unlink(g->path) && errno != ENOENT)
		pr_warn("store '%s': %s: unlink: %s\n", s->dir, g->path, strerror(errno));
	if (g == s->active)
		close_active(s);
	seg_free(g);
	memmove(&s->segs[i], &s->segs[i + 1], (s->nsegs - i - 1) * sizeof(*s->segs));
	s->nsegs--;
}

static int64_t seg_end(const struct seg *g)
{
	int64_t end = g->name_ns;
	size_t i;

	for (i = 0; i < g->nrecs; i++) {
		if (g->recs[i].t + g->recs[i].dur > end)
			end = g->recs[i].t + g->recs[i].dur;
	}
	return end;
}

/* Under mu and append_mu. Age first, then size, oldest segment first. */
static void apply_retention(struct prof_store *s)
{
	int64_t cutoff = (int64_t)now_wall_ns() - (int64_t)s->max_age_ns;
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < s->nsegs;) {
		if (seg_end(s->segs[i]) < cutoff)
			delete_seg(s, i, "older than the retention age");
		else
			i++;
	}
	for (i = 0; i < s->nsegs; i++)
		total += s->segs[i]->size;
	while (total > s->max_bytes && s->nsegs) {
		total -= s->segs[0]->size;
		delete_seg(s, 0, "over the size limit");
	}
}

static struct seg *create_segment(struct prof_store *s, int64_t t, int *fdp)
{
	unsigned char h[SEG_HDR_SIZE];
	struct seg *g;
	int fd = -1, err;
	ssize_t n;

	if (t < 0)
		t = 0;
	g = xcalloc(1, sizeof(*g));
	g->path = xmalloc(strlen(s->dir) + 32);
	/* Names sort by time; a taken name (a restart within the same ns) moves on by 1. */
	for (;; t++) {
		sprintf(g->path, "%s/seg-%020" PRId64 ".bps", s->dir, t);
		fd = open(g->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0)
		goto fail;
	g->name_ns = t;
	seg_hdr_encode(h);
	n = pwrite(fd, h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h) || fdatasync(fd) || fsync_dir(s->dir)) {
		if (n >= 0 && n != (ssize_t)sizeof(h))
			errno = ENOSPC;
		err = errno;
		close(fd);
		unlink(g->path);
		errno = err;
		goto fail;
	}
	g->size = SEG_HDR_SIZE;
	*fdp = fd;
	return g;
fail:
	err = errno;
	seg_free(g);
	errno = err;
	return NULL;
}

static int check_free_space(struct prof_store *s, uint64_t need)
{
	struct statvfs vfs;
	uint64_t avail;

	if (statvfs(s->dir, &vfs))
		return 0; /* cannot tell: let the write decide */
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail >= s->min_free + need) {
		if (s->low_space)
			pr_warn("store '%s': free space back over the floor (%" PRIu64
				" MiB); writing again\n",
				s->dir, avail >> 20);
		s->low_space = false;
		return 0;
	}
	if (!s->low_space)
		pr_warn("store '%s': %" PRIu64 " MiB free, under the floor of %" PRIu64
			" MiB: not writing until space is freed\n",
			s->dir, avail >> 20, s->min_free >> 20);
	s->low_space = true;
	return -ENOSPC;
}

int prof_store__append(struct prof_store *s, const struct prof_profile *p)
{
	struct strbuf raw = STRBUF_INIT, rec = STRBUF_INIT;
	struct body_stats bs;
	struct rec r = {0};
	size_t bound, clen;
	ssize_t n;
	int err = 0;

	pthread_mutex_lock(&s->append_mu);
	/* Rotate by size, age or table memory; a clock that went back an hour rotates too. */
	if (s->active && (s->active->size >= s->seg_max_bytes ||
			  p->time_nanos - s->active->name_ns >= SEG_MAX_AGE_NS ||
			  p->time_nanos < s->active->name_ns - SEG_MAX_AGE_NS ||
			  wtabs_bytes(s->tabs) >= SEG_MAX_TABLES)) {
		pthread_mutex_lock(&s->mu);
		close_active(s);
		pthread_mutex_unlock(&s->mu);
	}
	if (!s->tabs)
		s->tabs = wtabs_new();
	/*
	 * From here on the tables hold this interval: if it is not written, the
	 * next record would name entries no reader has, so every failure below
	 * ends the segment (the next append starts a new one).
	 */
	encode_body(s->tabs, p, &raw, &bs);
	if (raw.len > REC_MAX_RAW) {
		err = -EFBIG;
		goto drop_segment;
	}

	bound = ZSTD_compressBound(raw.len);
	strbuf_grow(&rec, REC_HDR_SIZE + bound);
	clen = ZSTD_compressCCtx(s->cctx, rec.buf + REC_HDR_SIZE, bound, raw.buf, raw.len,
				 ZSTD_LEVEL);
	if (ZSTD_isError(clen) || clen > REC_MAX_PAYLOAD) {
		pr_warn("store '%s': zstd: %s\n", s->dir,
			ZSTD_isError(clen) ? ZSTD_getErrorName(clen) : "record too large");
		err = -EIO;
		goto count_error;
	}

	err = check_free_space(s, REC_HDR_SIZE + clen + (s->active ? 0 : SEG_HDR_SIZE));
	if (err) {
		pthread_mutex_lock(&s->mu);
		s->st.dropped_for_space++;
		pthread_mutex_unlock(&s->mu);
		goto drop_segment;
	}

	if (!s->active) {
		struct seg *g = create_segment(s, p->time_nanos, &s->active_fd);

		if (!g) {
			err = -errno;
			pr_warn("store '%s': cannot create a segment: %s\n", s->dir,
				strerror(-err));
			goto count_error;
		}
		pthread_mutex_lock(&s->mu);
		segs_push(s, g);
		qsort(s->segs, s->nsegs, sizeof(*s->segs), seg_cmp);
		s->active = g;
		s->st.segments = s->nsegs;
		pthread_mutex_unlock(&s->mu);
	}

	r.off = s->active->size;
	r.len = (uint32_t)clen;
	r.raw_len = (uint32_t)raw.len;
	r.codec = CODEC_TABLES;
	r.ref_off = (uint32_t)s->last_off;
	r.t = p->time_nanos;
	r.dur = p->duration_nanos < 0 ? 0 : p->duration_nanos;
	rec_hdr_encode((unsigned char *)rec.buf, &r, crc(rec.buf + REC_HDR_SIZE, clen));
	rec.len = REC_HDR_SIZE + clen;

	/* One write, then a flush: a crash leaves a whole record or a torn tail. */
	n = pwrite(s->active_fd, rec.buf, rec.len, (off_t)r.off);
	if (n != (ssize_t)rec.len || fdatasync(s->active_fd)) {
		err = n >= 0 && n != (ssize_t)rec.len ? -ENOSPC : -errno;
		pr_warn("store '%s': %s: write: %s\n", s->dir, s->active->path, strerror(-err));
		/* Cut the partial record off; if even that fails, open() will. */
		if (ftruncate(s->active_fd, (off_t)r.off) == 0)
			(void)fdatasync(s->active_fd);
		goto count_error;
	}
	s->last_off = r.off;
	pr_debug("store '%s': record at %" PRIu64 ": %zu bytes (%zu raw); new strings %u (%zu B),"
		 " mappings %u (%zu B), functions %u (%zu B), locations %u (%zu B), chains %u"
		 " (%zu B), stacks %u (%zu B); counts %u (%zu B)\n",
		 s->dir, r.off, clen, raw.len, bs.nnew[T_STR], bs.bytes[T_STR], bs.nnew[T_MAP],
		 bs.bytes[T_MAP], bs.nnew[T_FN], bs.bytes[T_FN], bs.nnew[T_LOC], bs.bytes[T_LOC],
		 bs.nnew[T_CHAIN], bs.bytes[T_CHAIN], bs.nnew[T_STACK], bs.bytes[T_STACK],
		 bs.ncounts, bs.count_bytes);
	wtabs_forget(s->tabs);
	pthread_mutex_lock(&s->mu);
	s->table_bytes = wtabs_bytes(s->tabs);
	seg_add_rec(s->active, &r);
	s->active->size += rec.len;
	s->st.appends++;
	s->st.last_append_ns = (int64_t)now_wall_ns();
	apply_retention(s);
	pthread_mutex_unlock(&s->mu);
	goto out;

count_error:
	pthread_mutex_lock(&s->mu);
	s->st.write_errors++;
	if (err == -ENOSPC)
		s->st.dropped_for_space++;
	pthread_mutex_unlock(&s->mu);
drop_segment:
	pthread_mutex_lock(&s->mu);
	close_active(s);
	pthread_mutex_unlock(&s->mu);
out:
	pthread_mutex_unlock(&s->append_mu);
	strbuf_release(&raw);
	strbuf_release(&rec);
	return err;
}

/* ---- querying ------------------------------------------------------------------------------ */

/* One segment to read, copied out of the index so that no lock is needed. */
struct qseg {
	char *path;
	struct rec *recs; /* from the segment's first record to its last one in range */
	bool *use; /* recs[i] overlaps the range */
	size_t nrecs;
};

/*
 * Checks the record at @b (@avail bytes of the segment from there) against
 * the index entry @want and decompresses its body into @out.
 */
static int read_body(ZSTD_DCtx *dctx, const unsigned char *b, uint64_t avail,
		     const struct rec *want, uint64_t prev_off, struct strbuf *out)
{
	struct rec got;
	uint32_t pcrc;
	size_t n;

	if (!rec_hdr_decode(b, avail, &got, &pcrc) || got.len != want->len ||
	    got.raw_len != want->raw_len || got.ref_off != prev_off ||
	    crc(b + REC_HDR_SIZE, got.len) != pcrc)
		return -EBADMSG;
	strbuf_reset(out);
	strbuf_grow(out, got.raw_len + 1);
	n = ZSTD_decompressDCtx(dctx, out->buf, got.raw_len + 1, b + REC_HDR_SIZE, got.len);
	if (ZSTD_isError(n) || n != got.raw_len)
		return -EBADMSG;
	out->len = n;
	return 0;
}

/*
 * Reads segment @q: its records are applied in order (each needs the ones
 * before it), the counts of those in range summed by stack id, and the
 * stacks merged into @res once. Returns the number of records found bad
 * (the first bad one and every one after it).
 */
static uint64_t query_segment(struct prof_store *s, ZSTD_DCtx *dctx, const struct qseg *q,
			      const struct prof_store_filter *f, prof_store_interval_fn fn,
			      void *ctx, struct prof_profile *res, int64_t *first, int64_t *last)
{
	const struct rec *r0 = &q->recs[0], *rn = &q->recs[q->nrecs - 1];
	uint64_t len = rn->off + REC_HDR_SIZE + rn->len - r0->off, prev = 0;
	struct strbuf body = STRBUF_INIT;
	unsigned char *buf;
	struct rtabs t;
	size_t i;
	int fd, err = 0;

	fd = open(q->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) { /* deleted by retention since the copy: nothing to report */
		pr_debug("store '%s': %s: %s\n", s->dir, q->path, strerror(errno));
		return 0;
	}
	buf = xcalloc(1, len);
	/* A file that shrank since it was indexed reads short (zeros): its records fail below. */
	err = pread_full(fd, buf, len, r0->off);
	close(fd);
	if (err == -EIO)
		err = 0;
	if (err) {
		pr_warn("store '%s': %s: %s; skipped\n", s->dir, q->path, strerror(-err));
		free(buf);
		return q->nrecs;
	}
	rtabs_init(&t);
	t.filt = f;
	for (i = 0; i < q->nrecs; i++) {
		const struct rec *r = &q->recs[i];

		err = read_body(dctx, buf + (r->off - r0->off), len - (r->off - r0->off), r, prev,
				&body);
		if (!err)
			err = apply_body(&t, (const unsigned char *)body.buf, body.len, q->use[i]);
		if (err) {
			pr_warn("store '%s': %s: record at %" PRIu64 ": %s; it and the %zu after it"
				" skipped\n",
				s->dir, q->path, r->off, strerror(-err), q->nrecs - i - 1);
			break;
		}
		prev = r->off;
		if (!q->use[i])
			continue;
		if (fn)
			fn(ctx, r->t, r->dur, t.rec_matched, t.period_ns);
		if (r->t < *first)
			*first = r->t;
		if (r->t + r->dur > *last)
			*last = r->t + r->dur;
	}
	if (!fn)
		rtabs_merge_into(&t, f, res);
	rtabs_release(&t);
	strbuf_release(&body);
	free(buf);
	return q->nrecs - i;
}

/* [t, t + dur) overlaps [start, end); an instant counts at its time. */
static bool overlaps(const struct rec *r, int64_t start, int64_t end)
{
	return r->t < end && (r->dur ? r->t + r->dur > start : r->t >= start);
}

/*
 * Reads every record overlapping [start, end). With @fn, each one's matching
 * sample count goes to @fn (counted while its counts are applied: no
 * profile is built) and *@out is NULL; without, they are merged into a new
 * profile in *@out.
 */
static int query(struct prof_store *s, int64_t start, int64_t end,
		 const struct prof_store_filter *f, prof_store_interval_fn fn, void *ctx,
		 struct prof_profile **out)
{
	struct qseg *q = NULL;
	size_t nq = 0, i, j;
	struct prof_profile *res;
	int64_t first = INT64_MAX, last = INT64_MIN;
	uint64_t bad = 0;
	ZSTD_DCtx *dctx;

	*out = NULL;
	if (end <= start)
		return -EINVAL;

	/* Under the lock: copy out what to read. O(records). */
	pthread_mutex_lock(&s->mu);
	q = xcalloc(s->nsegs + 1, sizeof(*q));
	for (i = 0; i < s->nsegs; i++) {
		const struct seg *g = s->segs[i];
		size_t upto = 0;

		for (j = 0; j < g->nrecs; j++) {
			if (overlaps(&g->recs[j], start, end))
				upto = j + 1;
		}
		if (!upto)
			continue;
		q[nq].path = xstrdup(g->path);
		q[nq].nrecs = upto;
		q[nq].recs = xmalloc(upto * sizeof(*q[nq].recs));
		memcpy(q[nq].recs, g->recs, upto * sizeof(*q[nq].recs));
		q[nq].use = xmalloc(upto * sizeof(*q[nq].use));
		for (j = 0; j < upto; j++)
			q[nq].use[j] = overlaps(&g->recs[j], start, end);
		nq++;
	}
	pthread_mutex_unlock(&s->mu);

	/* Without it: read and decode, one segment at a time. */
	res = prof_profile__new(0);
	dctx = ZSTD_createDCtx();
	if (!dctx) {
		pr_err("store '%s': out of memory for zstd\n", s->dir);
		abort();
	}
	for (i = 0; i < nq; i++) {
		bad += query_segment(s, dctx, &q[i], f, fn, ctx, res, &first, &last);
		free(q[i].path);
		free(q[i].recs);
		free(q[i].use);
	}
	ZSTD_freeDCtx(dctx);

	if (first != INT64_MAX) {
		res->time_nanos = first;
		res->duration_nanos = last - first;
	} else {
		res->time_nanos = start;
		res->duration_nanos = end - start;
	}
	if (bad) {
		pthread_mutex_lock(&s->mu);
		s->st.corrupt_records += bad;
		pthread_mutex_unlock(&s->mu);
	}
	free(q);
	if (fn) {
		prof_profile__free(res);
		res = NULL;
	}
	*out = res;
	return 0;
}

int prof_store__query(struct prof_store *s, int64_t start, int64_t end,
		      const struct prof_store_filter *f, struct prof_profile **out)
{
	return query(s, start, end, f, NULL, NULL, out);
}

int prof_store__query_intervals(struct prof_store *s, int64_t start, int64_t end,
				const struct prof_store_filter *f, prof_store_interval_fn fn,
				void *ctx)
{
	struct prof_profile *none;

	if (!fn)
		return -EINVAL;
	return query(s, start, end, f, fn, ctx, &none);
}

int prof_store__ranges(struct prof_store *s, int64_t start, int64_t end,
		       struct prof_store_range **out, size_t *n)
{
	struct prof_store_range *r = NULL;
	size_t cap = 0, i, j;

	*out = NULL;
	*n = 0;
	if (end <= start)
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->nsegs; i++) {
		const struct seg *g = s->segs[i];

		for (j = 0; j < g->nrecs; j++) {
			if (!overlaps(&g->recs[j], start, end))
				continue;
			xgrow((void **)&r, &cap, *n + 1, sizeof(*r));
			r[(*n)++] = (struct prof_store_range){g->recs[j].t,
							      g->recs[j].t + g->recs[j].dur};
		}
	}
	pthread_mutex_unlock(&s->mu);
	*out = r;
	return 0;
}

/* ---- stats, close ------------------------------------------------------------------------------
 */

void prof_store__stats(const struct prof_store *cs, struct prof_store_stats *st)
{
	/* The lock is internal state, not the store's value: taking it keeps the API const. */
	struct prof_store *s = (struct prof_store *)cs;
	size_t i, j;

	pthread_mutex_lock(&s->mu);
	*st = s->st;
	st->bytes = st->records = 0;
	st->oldest_ns = st->newest_ns = 0;
	st->segments = s->nsegs;
	st->table_bytes = s->table_bytes;
	for (i = 0; i < s->nsegs; i++) {
		const struct seg *g = s->segs[i];

		st->bytes += g->size;
		st->records += g->nrecs;
		for (j = 0; j < g->nrecs; j++) {
			const struct rec *r = &g->recs[j];

			if (!st->oldest_ns || r->t < st->oldest_ns)
				st->oldest_ns = r->t;
			if (r->t + r->dur > st->newest_ns)
				st->newest_ns = r->t + r->dur;
		}
	}
	pthread_mutex_unlock(&s->mu);
}

void prof_store__close(struct prof_store *s)
{
	size_t i;

	if (!s)
		return;
	close_active(s);
	for (i = 0; i < s->nsegs; i++)
		seg_free(s->segs[i]);
	free(s->segs);
	ZSTD_freeCCtx(s->cctx);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->append_mu);
	free(s->dir);
	free(s);
}
