// SPDX-License-Identifier: MIT
/*
 * server/encoding.c — HTTP content codings for text and JSON replies:
 * Accept-Encoding negotiation (RFC 9110, 12.5.3) and the compression itself
 * with zlib (gzip) and libzstd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <zstd.h>

#include "server.h"

/* zstd level 3 (its default) and zlib's default: fast enough for a 1 MB SVG per request. */
#define SRV_ZSTD_LEVEL 3

/* A qvalue: "0", "0.5", "1", "1.000" (RFC 9110, 12.4.2); -1 when malformed. */
static int parse_q(const char *p, size_t n)
{
	int q = 0, scale = 1000;
	size_t i;

	if (!n || (p[0] != '0' && p[0] != '1'))
		return -1;
	q = (p[0] - '0') * 1000;
	if (n == 1)
		return q;
	if (p[1] != '.' || n > 5)
		return -1;
	for (i = 2; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		scale /= 10;
		q += (p[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

static bool token_eq(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && !strncasecmp(p, name, n);
}

enum srv_coding srv_choose_coding(const char *accept)
{
	/* q in thousandths; -1 = not mentioned. */
	int q_zstd = -1, q_gzip = -1, q_identity = -1, q_any = -1;
	const char *p = accept;

	if (!accept)
		return SRV_CODING_IDENTITY;
	while (*p) {
		const char *name, *end = strchr(p, ',');
		size_t nlen, len = end ? (size_t)(end - p) : strlen(p);
		const char *item_end = p + len;
		int q = 1000;

		while (p < item_end && (*p == ' ' || *p == '\t'))
			p++;
		name = p;
		while (p < item_end && *p != ';' && *p != ' ' && *p != '\t')
			p++;
		nlen = (size_t)(p - name);
		/* Parameters: only q matters; a malformed q makes the item count as absent. */
		while (p < item_end) {
			const char *v;

			while (p < item_end && (*p == ' ' || *p == '\t' || *p == ';'))
				p++;
			if (item_end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
				v = p + 2;
				p = v;
				while (p < item_end && *p != ';' && *p != ' ' && *p != '\t')
					p++;
				q = parse_q(v, (size_t)(p - v));
			} else {
				while (p < item_end && *p != ';')
					p++;
			}
		}
		if (q >= 0 && nlen) {
			if (token_eq(name, nlen, "zstd"))
				q_zstd = q;
			else if (token_eq(name, nlen, "gzip") || token_eq(name, nlen, "x-gzip"))
				q_gzip = q;
			else if (token_eq(name, nlen, "identity"))
				q_identity = q;
			else if (token_eq(name, nlen, "*"))
				q_any = q;
		}
		p = end ? end + 1 : item_end;
	}
	/* "*" stands for every coding not named. */
	if (q_zstd < 0)
		q_zstd = q_any;
	if (q_gzip < 0)
		q_gzip = q_any;
	/*
	 * identity is acceptable unless refused (identity;q=0, or *;q=0 without
	 * it); when not named it loses to any coding the client asked for.
	 */
	if (q_identity < 0)
		q_identity = 0;
	/* Ties go to zstd, then gzip: smaller and (zstd) faster. */
	if (q_zstd > 0 && q_zstd >= q_gzip && q_zstd >= q_identity)
		return SRV_CODING_ZSTD;
	if (q_gzip > 0 && q_gzip >= q_identity)
		return SRV_CODING_GZIP;
	return SRV_CODING_IDENTITY;
}

const char *srv_coding_name(enum srv_coding c)
{
	switch (c) {
	case SRV_CODING_GZIP:
		return "gzip";
	case SRV_CODING_ZSTD:
		return "zstd";
	default:
		return "identity";
	}
}

static int gzip_buf(const void *in, size_t len, struct strbuf *out)
{
	z_stream zs = {0};
	int ret;

	/* 15 + 16: a gzip header and trailer (RFC 1952), not a zlib one. */
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -ENOMEM;
	strbuf_grow(out, deflateBound(&zs, len) + 1);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)out->buf + out->len;
	zs.avail_out = (uInt)(out->cap - out->len - 1);
	ret = deflate(&zs, Z_FINISH);
	if (ret == Z_STREAM_END)
		out->len += zs.total_out;
	deflateEnd(&zs);
	if (ret != Z_STREAM_END)
		return -EIO;
	out->buf[out->len] = '\0';
	return 0;
}

static int zstd_buf(const void *in, size_t len, struct strbuf *out)
{
	size_t bound = ZSTD_compressBound(len), n;

	strbuf_grow(out, bound + 1);
	n = ZSTD_compress(out->buf + out->len, bound, in, len, SRV_ZSTD_LEVEL);
	if (ZSTD_isError(n))
		return -EIO;
	out->len += n;
	out->buf[out->len] = '\0';
	return 0;
}

int srv_compress(enum srv_coding c, const void *in, size_t len, struct strbuf *out)
{
	/* One deflate() call takes at most 4 GiB of input (uInt). */
	if (len > UINT32_MAX)
		return -EFBIG;
	switch (c) {
	case SRV_CODING_GZIP:
		return gzip_buf(in, len, out);
	case SRV_CODING_ZSTD:
		return zstd_buf(in, len, out);
	default:
		strbuf_add(out, in, len);
		return 0;
	}
}
