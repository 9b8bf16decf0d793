// SPDX-License-Identifier: MIT
/*
 * profiler/store.c — the local history store (store.h); the byte layout is
 * in docs/STORE-FORMAT.md, and the constants below must match it.
 *
 * Compression: an interval alone compresses to ~60 KB on a busy host (the
 * location, function and string tables are most of it and look random to
 * zstd), 500 MB a day. Consecutive intervals share nearly all of those
 * tables, so each segment starts with a key record compressed on its own,
 * and every later record of the segment is encoded with the key's tables
 * first (same ids, so the same bytes) and compressed with the key's raw
 * pprof as a zstd raw-content dictionary: only what changed costs space.
 * The price: a record needs its segment's key to be read, and a corrupt key
 * loses its segment (an hour at most).
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
#include "encode.h"
#include "pprof_decode.h"

/* ---- format constants (docs/STORE-FORMAT.md) ----------------------------- */

#define SEG_MAGIC "BPFPSTOR"
#define SEG_VERSION 1
#define SEG_HDR_SIZE 16
#define REC_MAGIC 0x31435242u /* "BRC1" little-endian */
#define REC_HDR_SIZE 48
#define REC_MAX_PAYLOAD (64u << 20)
#define REC_MAX_RAW (256u << 20)
#define CODEC_ZSTD 1 /* zstd frame of raw pprof, self-contained (a key record) */
#define CODEC_ZSTD_KEYDICT 2 /* zstd frame with the key record's raw pprof as dictionary */

/* ---- policy ------------------------------------------------------------------ */

#define DEFAULT_MAX_AGE_NS (24ULL * 3600 * 1000000000)
#define DEFAULT_MAX_BYTES (1ULL << 30)
#define DEFAULT_MIN_FREE (256ULL << 20)
#define SEG_MAX_BYTES (8ULL << 20)
#define SEG_MAX_AGE_NS (3600LL * 1000000000)
#define SEG_MAX_FILE (1ULL << 30) /* larger files named seg-*.bps are not ours */
#define ZSTD_LEVEL 9 /* an append of a busy interval: ~9 ms with encoding, every 10 s */

struct rec {
	uint64_t off; /* of the record header in the segment */
	uint32_t len; /* payload bytes */
	uint32_t raw_len; /* pprof bytes after decompression */
	uint32_t ref_off; /* CODEC_ZSTD_KEYDICT: offset of the key record */
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
	struct prof_profile *key; /* the active segment's key interval (its tables) */
	struct strbuf key_raw; /* ... and its raw pprof, the zstd dictionary */
	uint64_t key_off;
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

static const struct rec *seg_find_rec(const struct seg *g, uint64_t off)
{
	size_t lo = 0, hi = g->nrecs;

	while (lo < hi) { /* recs are in file order */
		size_t mid = (lo + hi) / 2;

		if (g->recs[mid].off == off)
			return &g->recs[mid];
		if (g->recs[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
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
	    (r->codec != CODEC_ZSTD && r->codec != CODEC_ZSTD_KEYDICT))
		return 0;
	return avail - REC_HDR_SIZE >= r->len;
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
 */
static enum scan_result scan_segment(struct prof_store *s, struct seg *g)
{
	unsigned char *buf = NULL;
	uint64_t off, good_end;
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
		if (memcmp(buf, want, SEG_HDR_SIZE))
			goto bad;
	}

	off = good_end = SEG_HDR_SIZE;
	while (off < g->size) {
		uint32_t pcrc;
		struct rec r;
		uint64_t next;

		if (rec_hdr_decode(buf + off, g->size - off, &r, &pcrc)) {
			r.off = off;
			next = off + REC_HDR_SIZE + r.len;
			if (crc(buf + off + REC_HDR_SIZE, r.len) != pcrc) {
				pr_warn("store '%s': %s: record at %" PRIu64
					": bad checksum; skipped\n",
					s->dir, g->path, off);
				s->st.corrupt_records++;
			} else if (r.codec == CODEC_ZSTD_KEYDICT &&
				   (!seg_find_rec(g, r.ref_off) ||
				    seg_find_rec(g, r.ref_off)->codec != CODEC_ZSTD)) {
				pr_warn("store '%s': %s: record at %" PRIu64
					": its key record is missing; skipped\n",
					s->dir, g->path, off);
				s->st.corrupt_records++;
			} else {
				seg_add_rec(g, &r);
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
		pr_warn("store '%s': %s: %" PRIu64 " unreadable bytes at %" PRIu64 "; skipped\n",
			s->dir, g->path, next - off, off);
		s->st.corrupt_records++;
		off = next;
	}
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
	prof_profile__free(s->key);
	s->key = NULL;
	strbuf_release(&s->key_raw);
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

/* A copy of @p with the same table ids (merge into an empty profile interns in order). */
static struct prof_profile *profile_copy(const struct prof_profile *p)
{
	struct prof_profile *c = prof_profile__new(p->period_ns);

	prof_profile__merge(c, p);
	c->time_nanos = p->time_nanos;
	c->duration_nanos = p->duration_nanos;
	return c;
}

/*
 * The pprof of a non-key record: the key's tables first, with their ids, then
 * whatever the interval adds; the key's samples that the interval does not
 * have stay with count 0 (pprof_decode_into() skips them). Counts are not
 * part of the profile's dedup keys, so zeroing them keeps its index valid.
 */
static void encode_against_key(const struct prof_profile *key, const struct prof_profile *p,
			       struct strbuf *raw)
{
	struct prof_profile *r = profile_copy(key);
	uint32_t i;

	for (i = 0; i < r->nsamples; i++)
		r->samples[i].count = 0;
	r->total_count = 0;
	prof_profile__merge(r, p);
	r->period_ns = p->period_ns;
	r->time_nanos = p->time_nanos;
	r->duration_nanos = p->duration_nanos;
	pprof_encode_raw(r, raw);
	prof_profile__free(r);
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
	struct rec r = {0};
	bool is_key;
	size_t bound, clen;
	ssize_t n;
	int err = 0;

	pthread_mutex_lock(&s->append_mu);
	/* Rotate by size or age; a clock that went back an hour rotates too. */
	if (s->active && (s->active->size >= s->seg_max_bytes ||
			  p->time_nanos - s->active->name_ns >= SEG_MAX_AGE_NS ||
			  p->time_nanos < s->active->name_ns - SEG_MAX_AGE_NS)) {
		pthread_mutex_lock(&s->mu);
		close_active(s);
		pthread_mutex_unlock(&s->mu);
	}
	is_key = !s->key;
	if (is_key)
		pprof_encode_raw(p, &raw);
	else
		encode_against_key(s->key, p, &raw);
	if (raw.len > REC_MAX_RAW) {
		err = -EFBIG;
		goto out;
	}

	bound = ZSTD_compressBound(raw.len);
	strbuf_grow(&rec, REC_HDR_SIZE + bound);
	if (is_key)
		clen = ZSTD_compressCCtx(s->cctx, rec.buf + REC_HDR_SIZE, bound, raw.buf, raw.len,
					 ZSTD_LEVEL);
	else
		clen = ZSTD_compress_usingDict(s->cctx, rec.buf + REC_HDR_SIZE, bound, raw.buf,
					       raw.len, s->key_raw.buf, s->key_raw.len, ZSTD_LEVEL);
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
		goto out;
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
	r.codec = is_key ? CODEC_ZSTD : CODEC_ZSTD_KEYDICT;
	r.ref_off = is_key ? 0 : (uint32_t)s->key_off;
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
	if (is_key) {
		s->key = profile_copy(p);
		s->key_off = r.off;
		strbuf_release(&s->key_raw);
		s->key_raw = raw;
		memset(&raw, 0, sizeof(raw));
	}
	pthread_mutex_lock(&s->mu);
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
out:
	pthread_mutex_unlock(&s->append_mu);
	strbuf_release(&raw);
	strbuf_release(&rec);
	return err;
}

/* ---- querying ------------------------------------------------------------------------------ */

/* One record to read, copied out of the index so that no lock is needed. */
struct qrec {
	size_t seg; /* index into the query's path list */
	struct rec r, key; /* key.len == 0: none (a key record itself) */
};

static int read_record(int fd, const struct rec *r, struct strbuf *payload)
{
	unsigned char *h;
	struct rec got;
	uint32_t pcrc;
	int err;

	strbuf_reset(payload);
	strbuf_grow(payload, REC_HDR_SIZE + r->len);
	err = pread_full(fd, payload->buf, REC_HDR_SIZE + r->len, r->off);
	if (err)
		return err;
	h = (unsigned char *)payload->buf;
	if (!rec_hdr_decode(h, REC_HDR_SIZE + r->len, &got, &pcrc) || got.len != r->len ||
	    crc(h + REC_HDR_SIZE, r->len) != pcrc)
		return -EBADMSG;
	payload->len = REC_HDR_SIZE + r->len;
	return 0;
}

static int decompress(ZSTD_DCtx *dctx, const struct rec *r, const struct strbuf *payload,
		      const struct strbuf *dict, struct strbuf *out)
{
	size_t n;

	strbuf_reset(out);
	strbuf_grow(out, r->raw_len);
	if (dict)
		n = ZSTD_decompress_usingDict(dctx, out->buf, r->raw_len,
					      payload->buf + REC_HDR_SIZE, r->len, dict->buf,
					      dict->len);
	else
		n = ZSTD_decompressDCtx(dctx, out->buf, r->raw_len, payload->buf + REC_HDR_SIZE,
					r->len);
	if (ZSTD_isError(n) || n != r->raw_len)
		return -EBADMSG;
	out->len = n;
	return 0;
}

static int qrec_cmp(const void *a, const void *b)
{
	const struct qrec *x = a, *y = b;

	if (x->seg != y->seg)
		return x->seg < y->seg ? -1 : 1;
	return x->r.off < y->r.off ? -1 : x->r.off > y->r.off;
}

/*
 * Reads every record overlapping [start, end). With @fn, each one's matching
 * sample count goes to @fn (pprof_count(): no tables built) and *@out is
 * NULL; without, they are merged into a new profile in *@out.
 */
static int query(struct prof_store *s, int64_t start, int64_t end,
		 const struct prof_store_filter *f, prof_store_interval_fn fn, void *ctx,
		 struct prof_profile **out)
{
	struct pprof_decode_filter df = {0}, *dfp = NULL;
	struct strbuf payload = STRBUF_INIT, raw = STRBUF_INIT, key = STRBUF_INIT;
	struct qrec *q = NULL;
	size_t nq = 0, capq = 0, npaths = 0, i, j;
	char **paths = NULL;
	struct prof_profile *res;
	int64_t first = INT64_MAX, last = INT64_MIN;
	uint64_t bad = 0, key_loaded = UINT64_MAX;
	ZSTD_DCtx *dctx;
	int fd = -1;
	size_t fd_seg = SIZE_MAX;

	*out = NULL;
	if (end <= start)
		return -EINVAL;
	if (f) {
		df.pid = f->pid;
		df.comm = f->comm;
		df.container = f->container;
		dfp = &df;
	}

	/* Under the lock: copy out what to read. O(records). */
	pthread_mutex_lock(&s->mu);
	paths = xcalloc(s->nsegs + 1, sizeof(*paths));
	for (i = 0; i < s->nsegs; i++) {
		const struct seg *g = s->segs[i];
		bool used = false;

		for (j = 0; j < g->nrecs; j++) {
			const struct rec *r = &g->recs[j];
			struct qrec e = {.seg = npaths, .r = *r};

			/* [t, t + dur) overlaps [start, end); an instant counts at its time. */
			if (!(r->t < end && (r->dur ? r->t + r->dur > start : r->t >= start)))
				continue;
			if (r->codec == CODEC_ZSTD_KEYDICT)
				e.key = *seg_find_rec(g, r->ref_off); /* checked at open/append */
			xgrow((void **)&q, &capq, nq + 1, sizeof(*q));
			q[nq++] = e;
			used = true;
		}
		if (used)
			paths[npaths++] = xstrdup(g->path);
	}
	pthread_mutex_unlock(&s->mu);

	/* Without it: read, decompress, decode, in file order. */
	if (nq > 1)
		qsort(q, nq, sizeof(*q), qrec_cmp);
	res = prof_profile__new(0);
	dctx = ZSTD_createDCtx();
	for (i = 0; i < nq; i++) {
		const struct qrec *e = &q[i];
		int err;

		if (fd_seg != e->seg) {
			if (fd >= 0)
				close(fd);
			fd = open(paths[e->seg], O_RDONLY | O_CLOEXEC);
			fd_seg = e->seg;
			key_loaded = UINT64_MAX;
			if (fd < 0)
				pr_debug("store '%s': %s: %s\n", s->dir, paths[e->seg],
					 strerror(errno));
		}
		if (fd < 0)
			continue; /* deleted by retention since the copy: nothing to report */
		err = 0;
		if (e->r.codec == CODEC_ZSTD_KEYDICT && key_loaded != e->key.off) {
			err = read_record(fd, &e->key, &payload);
			if (!err)
				err = decompress(dctx, &e->key, &payload, NULL, &key);
			key_loaded = err ? UINT64_MAX : e->key.off;
		}
		if (!err)
			err = read_record(fd, &e->r, &payload);
		if (!err)
			err = decompress(dctx, &e->r, &payload,
					 e->r.codec == CODEC_ZSTD_KEYDICT ? &key : NULL, &raw);
		if (!err && fn) {
			uint64_t n = 0;
			int64_t period = 0;

			err = pprof_count(raw.buf, raw.len, dfp, &n, &period);
			if (!err)
				fn(ctx, e->r.t, e->r.dur, n, period);
		} else if (!err) {
			err = pprof_decode_into(raw.buf, raw.len, dfp, res);
		}
		if (err) {
			pr_warn("store '%s': %s: record at %" PRIu64 ": %s; skipped\n", s->dir,
				paths[e->seg], e->r.off, strerror(-err));
			bad++;
			continue;
		}
		if (e->r.t < first)
			first = e->r.t;
		if (e->r.t + e->r.dur > last)
			last = e->r.t + e->r.dur;
	}
	if (fd >= 0)
		close(fd);
	ZSTD_freeDCtx(dctx);

	if (nq && first != INT64_MAX) {
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
	for (i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	free(q);
	strbuf_release(&payload);
	strbuf_release(&raw);
	strbuf_release(&key);
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
