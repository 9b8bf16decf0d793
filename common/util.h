/* SPDX-License-Identifier: MIT */
/*
 * common/util.h — small helpers every module uses: allocation that cannot
 * return NULL, a growable byte buffer, logging, and monotonic/wall clocks.
 *
 * Allocation policy: like git's xmalloc(), the x*() helpers print one line and
 * abort() when the allocator fails. A profiler that cannot allocate a few KiB
 * cannot do anything useful, and threading ENOMEM through every encoder and
 * hash table would double their size for no behaviour a user could rely on.
 * Errors that come from the outside world (files, /proc, HTTP, the kernel)
 * are still returned as -errno, never aborted on.
 */
#ifndef BPFPROF_UTIL_H
#define BPFPROF_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Grows *arr (of *cap elements of @elem bytes) so that it holds at least @need. */
void xgrow(void **arr, size_t *cap, size_t need, size_t elem);

/*
 * struct strbuf — a growable byte buffer, always NUL-terminated after len.
 * Zero-initialise it (or use STRBUF_INIT); strbuf_release() frees it.
 * strbuf_detach() hands the storage to the caller ("you now own it").
 */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
};
#define STRBUF_INIT        \
	{                  \
		NULL, 0, 0 \
	}

void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_adds(struct strbuf *sb, const char *s);
void strbuf_addc(struct strbuf *sb, char c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
void strbuf_reset(struct strbuf *sb);
void strbuf_release(struct strbuf *sb);
char *strbuf_detach(struct strbuf *sb, size_t *len);

/* Logging to stderr. log_level: 0 = errors only, 1 = warnings (default), 2 = info, 3 = debug. */
extern int log_level;
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define pr_err(...) log_msg(0, __VA_ARGS__)
#define pr_warn(...) log_msg(1, __VA_ARGS__)
#define pr_info(...) log_msg(2, __VA_ARGS__)
#define pr_debug(...) log_msg(3, __VA_ARGS__)

/* CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds. */
uint64_t now_mono_ns(void);
uint64_t now_wall_ns(void);

/* FNV-1a style 64-bit hash, for the hash tables in this project. */
uint64_t hash_bytes(const void *data, size_t len, uint64_t seed);
static inline uint64_t hash_u64(uint64_t x, uint64_t seed)
{
	x ^= seed;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* The value of the hex digit @c (either case), or -1. */
int hex_digit(char c);

/*
 * Parses hex digits (no "0x") at @p into *@out. Returns the first character
 * after them, or NULL when there are none or the value overflows 64 bits.
 */
const char *parse_hex_u64(const char *p, uint64_t *out);

/*
 * Reads a whole file into a NUL-terminated buffer. Returns 0 or -errno.
 * At most @max bytes are read (0 = no limit); a longer file gives -EFBIG.
 */
int read_file(const char *path, struct strbuf *out, size_t max);

/*
 * Reads a secret (a token, a password) from @path into @out: a regular file
 * of at most @max bytes that neither group nor others may read (the mode of
 * the file opened, not of whatever the path names a moment later). 0, or
 * -errno with a one-line reason in *@why (static): -EPERM when group or
 * others may read it, -EFBIG past @max, -EINVAL when it is not a regular
 * file, or the error of open() or read(). On error @out is released.
 */
int read_secret_file(const char *path, size_t max, struct strbuf *out, const char **why);

/* Writes @len bytes to @path atomically (temp file + rename). 0 or -errno. "-" is stdout. */
int write_file(const char *path, const void *data, size_t len);
/*
 * The same, durably: the temp file (created with @mode) is fdatasync'ed
 * before the rename and the directory fsync'ed after it, so after a crash
 * @path holds the old contents or the new ones, never nothing. 0 or -errno.
 */
int write_file_synced(const char *path, const void *data, size_t len, mode_t mode);

/* fsync() of the directory @dir (makes renames and creations in it durable). 0 or -errno. */
int fsync_dir(const char *dir);

#endif
