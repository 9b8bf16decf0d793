// SPDX-License-Identifier: MIT
/*
 * symbolizer/perfmap.c — JIT symbols from /tmp/perf-PID.map files (see jit.h
 * for the format and the rule for overlapping entries).
 *
 * Two arrays and one string arena:
 *
 *   ents[]  every valid line in file order (the order is the precedence);
 *           kept so that a refresh can recompute segs[] with the new lines
 *   segs[]  the address space cut into disjoint, sorted ranges, each owned
 *           by the newest entry covering it; lookups binary-search these
 *   names   the arena: NUL-terminated names, ents[].name are offsets
 *
 * segs[] is rebuilt after each read by a sweep over the sorted range
 * boundaries with a max-heap of the entries open at each boundary, keyed by
 * file position: O(n log n), and at most 2n - 1 segments.
 */
#include "symbolizer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"

/* Bytes read per pread(): enough for ~10k lines, small next to the table. */
#define PM_CHUNK (256u * 1024)
/* Index width in segs[]; the 64 MiB bound allows ~4M lines of 16 bytes. */
#define PM_MAX_ENTS (SYM_PERFMAP_MAX_FILE_SIZE / 8)

struct pm_ent {
	uint64_t start, end; /* [start, end) */
	uint32_t name; /* offset into the arena */
};

struct pm_seg {
	uint64_t start, end; /* [start, end), disjoint from every other segment */
	uint32_t ent; /* index into ents[]: the newest entry covering it */
};

struct sym_perfmap {
	char *path; /* owned */
	dev_t dev;
	ino_t ino;
	uint64_t off; /* bytes consumed: up to the end of the last complete line */
	bool skipping; /* inside an overlong line: drop bytes up to its newline */
	/* sym_perfmap__load_pid(): the uids that may own the file, besides root */
	bool check_owner;
	uid_t ruid, euid;

	struct pm_ent *ents;
	size_t n, cap;
	struct pm_seg *segs;
	size_t nsegs, segcap;
	struct strbuf names;
	size_t nbad;
};

/* ---- parsing ------------------------------------------------------------- */

/* Hex digits at p, with an optional "0x"; NULL when none or above 64 bits. */
static const char *parse_hex(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *s;
	int d;

	if (end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && hex_digit(p[2]) >= 0)
		p += 2;
	for (s = p; p < end && (d = hex_digit(*p)) >= 0; p++) {
		if (v >> 60)
			return NULL;
		v = v << 4 | (uint64_t)d;
	}
	if (p == s)
		return NULL;
	*out = v;
	return p;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* One line, without its newline. False when it is malformed. */
static bool parse_line(struct sym_perfmap *m, const char *p, size_t len)
{
	const char *end = p + len;
	uint64_t start, size;
	struct pm_ent *e;

	if (len > SYM_PERFMAP_LINE_MAX || memchr(p, '\0', len))
		return false;
	while (end > p && (is_blank(end[-1]) || end[-1] == '\r'))
		end--;
	while (p < end && is_blank(*p))
		p++;
	p = parse_hex(p, end, &start);
	if (!p || p == end || !is_blank(*p))
		return false;
	while (p < end && is_blank(*p))
		p++;
	p = parse_hex(p, end, &size);
	if (!p || p == end || !is_blank(*p))
		return false;
	while (p < end && is_blank(*p))
		p++;
	if (p == end || !size || size > UINT64_MAX - start || m->n >= PM_MAX_ENTS)
		return false;
	xgrow((void **)&m->ents, &m->cap, m->n + 1, sizeof(*m->ents));
	e = &m->ents[m->n++];
	e->start = start;
	e->end = start + size;
	e->name = (uint32_t)m->names.len;
	strbuf_add(&m->names, p, (size_t)(end - p));
	strbuf_addc(&m->names, '\0');
	return true;
}

/*
 * Parses the complete lines at the front of @buf (@len bytes, read from
 * m->off) and returns how many bytes they took. A line longer than the
 * limit is dropped whole, across calls if need be (m->skipping).
 */
static size_t parse_lines(struct sym_perfmap *m, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *nl;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p)))) {
		if (m->skipping)
			m->skipping = false; /* counted when it began */
		else if (!parse_line(m, p, (size_t)(nl - p)))
			m->nbad++;
		p = nl + 1;
	}
	/* What is left has no newline yet: still being written, unless it is too long. */
	if ((size_t)(end - p) > SYM_PERFMAP_LINE_MAX || (m->skipping && p < end)) {
		if (!m->skipping)
			m->nbad++;
		m->skipping = true;
		p = end;
	}
	return (size_t)(p - buf);
}

/* ---- the segment index ---------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_ent_start(const void *a, const void *b, void *arg)
{
	const struct pm_ent *ents = arg;
	uint64_t x = ents[*(const uint32_t *)a].start;
	uint64_t y = ents[*(const uint32_t *)b].start;

	return x < y ? -1 : x > y;
}

/* A max-heap of entry indices: the newest entry (highest index) on top. */
static void heap_push(uint32_t *h, size_t *n, uint32_t v)
{
	size_t i = (*n)++;

	while (i && h[(i - 1) / 2] < v) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = v;
}

static void heap_pop(uint32_t *h, size_t *n)
{
	uint32_t v = h[--(*n)];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] > h[c])
			c++;
		if (h[c] <= v)
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n)
		h[i] = v;
}

/*
 * Cuts the address space at every entry's start and end; each piece
 * belongs to the newest entry open over it. Entries ending at or before a
 * boundary are popped lazily, when they reach the top of the heap: an
 * expired entry below the top does not matter until then.
 */
static void build_segs(struct sym_perfmap *m)
{
	uint64_t *bounds = xmalloc(2 * m->n * sizeof(*bounds) + 1);
	uint32_t *order = xmalloc(m->n * sizeof(*order) + 1);
	uint32_t *heap = xmalloc(m->n * sizeof(*heap) + 1);
	size_t nb = 0, nh = 0, i, j = 0, b;

	for (i = 0; i < m->n; i++) {
		bounds[nb++] = m->ents[i].start;
		bounds[nb++] = m->ents[i].end;
		order[i] = (uint32_t)i;
	}
	qsort(bounds, nb, sizeof(*bounds), cmp_u64);
	for (i = 0, b = 0; i < nb; i++)
		if (!b || bounds[i] != bounds[b - 1])
			bounds[b++] = bounds[i];
	nb = b;
	qsort_r(order, m->n, sizeof(*order), cmp_ent_start, m->ents);

	m->nsegs = 0;
	for (b = 0; b + 1 < nb; b++) {
		uint64_t x = bounds[b];
		struct pm_seg *s;
		uint32_t top;

		while (j < m->n && m->ents[order[j]].start <= x)
			heap_push(heap, &nh, order[j++]);
		while (nh && m->ents[heap[0]].end <= x)
			heap_pop(heap, &nh);
		if (!nh)
			continue;
		top = heap[0];
		s = m->nsegs ? &m->segs[m->nsegs - 1] : NULL;
		if (s && s->ent == top && s->end == x) {
			s->end = bounds[b + 1];
			continue;
		}
		xgrow((void **)&m->segs, &m->segcap, m->nsegs + 1, sizeof(*m->segs));
		s = &m->segs[m->nsegs++];
		s->start = x;
		s->end = bounds[b + 1];
		s->ent = top;
	}
	free(bounds);
	free(order);
	free(heap);
}

/* ---- reading ------------------------------------------------------------- */

static void reset_table(struct sym_perfmap *m)
{
	m->n = 0;
	m->nsegs = 0;
	m->nbad = 0;
	m->off = 0;
	m->skipping = false;
	strbuf_reset(&m->names);
}

/* Opens m->path without following a final symlink; checks type, size and owner. */
static int open_checked(const struct sym_perfmap *m, struct stat *st)
{
	int fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY), err;

	if (fd < 0)
		return -errno;
	if (fstat(fd, st)) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		err = -EINVAL;
		goto fail;
	}
	if ((uint64_t)st->st_size > SYM_PERFMAP_MAX_FILE_SIZE) {
		err = -EFBIG;
		goto fail;
	}
	if (m->check_owner && st->st_uid != 0 && st->st_uid != m->ruid && st->st_uid != m->euid) {
		err = -EACCES;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return err;
}

/*
 * Reads @fd from m->off to its end (at most up to the size bound) and
 * parses what it finds. 0 or -errno.
 */
static int read_new(struct sym_perfmap *m, int fd)
{
	struct strbuf buf = STRBUF_INIT;
	int err = 0;

	for (;;) {
		uint64_t pos = m->off + buf.len;
		size_t want = PM_CHUNK, used;
		ssize_t got;

		if (pos >= SYM_PERFMAP_MAX_FILE_SIZE) {
			char c;

			/* At the bound: an error only if it grew past it after the fstat(). */
			if (pread(fd, &c, 1, (off_t)pos) > 0)
				err = -EFBIG;
			break;
		}
		if (want > SYM_PERFMAP_MAX_FILE_SIZE - pos)
			want = (size_t)(SYM_PERFMAP_MAX_FILE_SIZE - pos);
		strbuf_grow(&buf, want);
		got = pread(fd, buf.buf + buf.len, want, (off_t)pos);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (!got)
			break;
		buf.len += (size_t)got;
		used = parse_lines(m, buf.buf, buf.len);
		m->off += used;
		memmove(buf.buf, buf.buf + used, buf.len - used);
		buf.len -= used;
	}
	strbuf_release(&buf);
	return err;
}

/* Reads the whole file at m->path into the (emptied) table. 0 or -errno. */
static int load_full(struct sym_perfmap *m)
{
	struct stat st;
	int fd = open_checked(m, &st), err;

	if (fd < 0)
		return fd;
	reset_table(m);
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	err = read_new(m, fd);
	close(fd);
	build_segs(m);
	return err;
}

static struct sym_perfmap *perfmap_new(const char *path)
{
	struct sym_perfmap *m = xcalloc(1, sizeof(*m));

	m->path = xstrdup(path);
	return m;
}

static struct sym_perfmap *load_or_free(struct sym_perfmap *m)
{
	int err = load_full(m);

	if (err) {
		pr_debug("perf map '%s': %s", m->path, strerror(-err));
		sym_perfmap__free(m);
		errno = -err;
		return NULL;
	}
	pr_debug("perf map '%s': %zu entries, %zu malformed lines", m->path, m->n, m->nbad);
	return m;
}

struct sym_perfmap *sym_perfmap__load(const char *path)
{
	return load_or_free(perfmap_new(path));
}

void sym_perfmap__free(struct sym_perfmap *m)
{
	if (!m)
		return;
	free(m->path);
	free(m->ents);
	free(m->segs);
	strbuf_release(&m->names);
	free(m);
}

int sym_perfmap__refresh(struct sym_perfmap *m)
{
	size_t n0 = m->n;
	struct stat st;
	int fd, err;

	fd = open_checked(m, &st);
	if (fd < 0)
		return fd;
	if (st.st_dev != m->dev || st.st_ino != m->ino || (uint64_t)st.st_size < m->off) {
		/* Replaced or truncated: what we read describes another file. */
		struct sym_perfmap *fresh = perfmap_new(m->path), tmp;

		close(fd);
		fresh->check_owner = m->check_owner;
		fresh->ruid = m->ruid;
		fresh->euid = m->euid;
		err = load_full(fresh);
		if (!err) {
			tmp = *m;
			*m = *fresh;
			*fresh = tmp;
		}
		sym_perfmap__free(fresh);
		return err ? err : 1;
	}
	if ((uint64_t)st.st_size == m->off) {
		close(fd);
		return 0;
	}
	err = read_new(m, fd);
	close(fd);
	if (m->n != n0)
		build_segs(m);
	if (err)
		return err;
	return m->n != n0;
}

const char *sym_perfmap__lookup(const struct sym_perfmap *m, uint64_t addr, uint64_t *start)
{
	size_t lo = 0, hi;
	const struct pm_seg *s;

	if (!m)
		return NULL;
	/* The first segment ending above addr; segments are disjoint and sorted. */
	hi = m->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->segs[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == m->nsegs || m->segs[lo].start > addr)
		return NULL;
	s = &m->segs[lo];
	if (start)
		*start = m->ents[s->ent].start;
	return m->names.buf + m->ents[s->ent].name;
}

size_t sym_perfmap__count(const struct sym_perfmap *m)
{
	return m ? m->n : 0;
}

size_t sym_perfmap__nbad(const struct sym_perfmap *m)
{
	return m ? m->nbad : 0;
}

size_t sym_perfmap__bytes(const struct sym_perfmap *m)
{
	if (!m)
		return 0;
	return sizeof(*m) + m->cap * sizeof(*m->ents) + m->segcap * sizeof(*m->segs) + m->names.cap;
}

/* ---- live processes -------------------------------------------------------- */

/*
 * From /proc/@pid/status: the pid in the process's innermost pid namespace
 * ("NSpid:", since 4.1; @pid itself when absent) and its real and
 * effective uids. 0 or -errno.
 */
static int read_status(int pid, int *nspid, uid_t *ruid, uid_t *euid)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	bool have_uid = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	*nspid = pid;
	while (getline(&line, &cap, f) > 0) {
		unsigned long r, e;

		if (!strncmp(line, "Uid:", 4) && sscanf(line + 4, "%lu %lu", &r, &e) == 2) {
			*ruid = (uid_t)r;
			*euid = (uid_t)e;
			have_uid = true;
		} else if (!strncmp(line, "NSpid:", 6)) {
			/* "NSpid:\t4242\t17\t1": outermost first, innermost last */
			char *p = line + 6, *endp;

			for (;;) {
				long v = strtol(p, &endp, 10);

				if (endp == p)
					break;
				if (v > 0 && v <= INT_MAX)
					*nspid = (int)v;
				p = endp;
			}
		}
	}
	free(line);
	fclose(f);
	return have_uid ? 0 : -EINVAL;
}

static int build_path(int pid, char *buf, size_t len, int *nspid, uid_t *ruid, uid_t *euid)
{
	int err, n;

	err = read_status(pid, nspid, ruid, euid);
	if (err)
		return err;
	/* The process's own /tmp first: in a container it is not ours. */
	n = snprintf(buf, len, "/proc/%d/root/tmp/perf-%d.map", pid, *nspid);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (!access(buf, F_OK))
		return 0;
	n = snprintf(buf, len, "/tmp/perf-%d.map", pid);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return access(buf, F_OK) ? -ENOENT : 0;
}

int sym_perfmap__path(int pid, char *buf, size_t len)
{
	uid_t ruid, euid;
	int nspid, err;

	err = build_path(pid, buf, len, &nspid, &ruid, &euid);
	if (err && err != -ENOENT && err != -ENAMETOOLONG) {
		/* The process is gone or hidden: only the plain path is left to try. */
		int n = snprintf(buf, len, "/tmp/perf-%d.map", pid);

		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		return access(buf, F_OK) ? -ENOENT : 0;
	}
	return err;
}

struct sym_perfmap *sym_perfmap__load_pid(int pid)
{
	char path[PATH_MAX];
	struct sym_perfmap *m;
	uid_t ruid, euid;
	int nspid, err;

	err = build_path(pid, path, sizeof(path), &nspid, &ruid, &euid);
	if (err) {
		errno = -err;
		return NULL;
	}
	m = perfmap_new(path);
	m->check_owner = true;
	m->ruid = ruid;
	m->euid = euid;
	return load_or_free(m);
}
