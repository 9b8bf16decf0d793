/* SPDX-License-Identifier: MIT */
/*
 * server/server.h — the agent's HTTP interface (libmicrohttpd). Routing,
 * parameter checking and handlers only: profiles come from a struct
 * srv_source, bytes from the encoders in profiler/encode.h.
 *
 * Routes:
 *   GET /debug/pprof/profile?seconds=N  gzip pprof of the next N seconds
 *                                       (default 30, 1..300), application/octet-stream
 *   GET /debug/pprof/                   HTML index (also /debug/pprof)
 *   GET /flamegraph.svg?seconds=N       SVG flame graph of the next N seconds
 *                                       (default 10: a person is waiting for it)
 *   GET /folded?seconds=N               folded stacks of the next N seconds (default 10)
 *   /flamegraph.svg and /folded also take lines=1: frames named "name (file.c:12)"
 *   All three profile routes take start= and end= (RFC 3339, e.g.
 *   2026-11-21T03:12:00Z, or Unix seconds) to answer at once from the stored
 *   history instead of waiting (end defaults to now), and the filters pid=,
 *   comm= (exact process name) and container= (a container id, or a prefix
 *   of at least 12 hex digits).
 *   GET /api/timeseries                 JSON: CPU per stored interval (profiler/api.h)
 *   GET /api/top?limit=N&sort=self|total  JSON: top functions (default 50, 0 = all)
 *   GET /api/processes?limit=N          JSON: processes by samples (default all)
 *   The /api/ routes answer from the history for start=/end= (default: the
 *   last hour) and take the same filters; limit is 0..100000.
 *   GET /healthz                        "ok\n" and the source's status text
 *   GET /metrics                        Prometheus text format (the source's and the server's)
 *   GET /                               HTML page linking the above
 * With a token (struct srv_opts), every route but /healthz answers 401
 * without it, unknown paths and wrong methods included, before anything else.
 * A bad parameter gets 400 with a one-line reason, an unknown path 404,
 * a method other than GET/HEAD 405 (with an Allow header). Every profile
 * request gets its own window, so concurrent and overlapping scrapes are
 * all served. Unknown query parameters are ignored: Parca, Pyroscope and
 * Go's pprof tooling add their own (e.g. debug=1).
 *
 * seconds must be a plain decimal integer from 1 to 300; "", "1.5", "-1",
 * "+5", "30x" and "?seconds" without a value are all 400. The first
 * seconds= in the query wins, as in Go's net/http.
 *
 * A window that fails gets 503 "agent is shutting down" for -ECANCELED,
 * else 500 with strerror(); either way a one-line text/plain body.
 *
 * HEAD on a profile route checks the parameters and answers with the
 * headers only, without opening a window: nobody should wait 30 s and
 * cost the collector a window for a body that is thrown away. That reply
 * has no Content-Length (the length is unknown) and closes the connection.
 */
#ifndef BPFPROF_SERVER_H
#define BPFPROF_SERVER_H

#include <stdint.h>

#include "../common/util.h"
#include "../profiler/api.h"
#include "../profiler/profile.h"

struct srv_source {
	/*
	 * Blocks until the window of the next @seconds is over and returns its
	 * profile in *@out (the caller frees it with prof_profile__free()).
	 * Called from several server threads at once. Returns 0 or -errno;
	 * -ECANCELED when the agent is shutting down.
	 */
	int (*window)(void *ctx, unsigned int seconds, struct prof_profile **out);
	/*
	 * Appends a short plain-text status for /healthz after "ok\n" (sample
	 * and drop counters). May be NULL.
	 */
	void (*status)(void *ctx, struct strbuf *out);
	/*
	 * Appends the agent's metrics in the Prometheus text format (HELP and
	 * TYPE lines, then samples) for /metrics; the server adds its own
	 * request counters after them. May be NULL.
	 */
	void (*metrics)(void *ctx, struct strbuf *out);
	/*
	 * The stored history of [@start_ns, @end_ns) (wall clock, ns) merged
	 * into one profile in *@out (the caller frees it). 0 or -errno;
	 * -ENOTSUP when the agent keeps no history. May be NULL (the same).
	 */
	int (*query)(void *ctx, int64_t start_ns, int64_t end_ns, struct prof_profile **out);
	/*
	 * CPU over time for /api/timeseries: one point per stored interval of
	 * [@start_ns, @end_ns) with the samples that pass @f, appended to *@out
	 * (api_series__add()). 0 or -errno; -ENOTSUP when the agent keeps no
	 * history. May be NULL (the same).
	 */
	int (*series)(void *ctx, int64_t start_ns, int64_t end_ns, const struct prof_filter *f,
		      struct api_series *out);
	void *ctx;
};

struct srv;

#define SRV_MIN_SECONDS 1
#define SRV_MAX_SECONDS 300
#define SRV_PROFILE_DEFAULT_SECONDS 30 /* /debug/pprof/profile, as Go's */
#define SRV_VIEW_DEFAULT_SECONDS 10 /* /flamegraph.svg and /folded */

/*
 * Starts serving on @address ("127.0.0.1:7071", "[::1]:7071", ":7071" for
 * every address, port 0 picks a free port). Returns NULL with errno set
 * when the address is malformed (EINVAL) or cannot be bound (e.g.
 * EADDRINUSE). Logs nothing on failure: the caller knows what the address
 * was for and reports it. *@src is copied; src->ctx must outlive the server.
 */
struct srv *srv__start(const char *address, const struct srv_source *src);

struct srv_opts {
	/*
	 * Bearer token that every route but /healthz requires (copied); NULL =
	 * none. A request without "Authorization: Bearer <token>", or with
	 * another token, gets 401 with "WWW-Authenticate: Bearer". Compared in
	 * constant time.
	 */
	const char *token;
};

/* srv__start() with options; @opts may be NULL (no token). */
struct srv *srv__start_opts(const char *address, const struct srv_source *src,
			    const struct srv_opts *opts);

/*
 * Reads the token for --http-token-file from @path: the file's contents with
 * trailing newlines (and CRs) removed, in *@token (the caller frees it).
 * Refused, with a one-line reason in *@why (static) and -errno:
 *   - a file group or others may read (-EPERM): a secret must be 0600 or
 *     0400 (its owner's only);
 *   - an empty token (-EINVAL), or one with spaces or control characters
 *     (-EINVAL), which no HTTP client could send intact;
 *   - over 4 KiB (-EFBIG); a file that cannot be read (its -errno).
 */
int srv_read_token_file(const char *path, char **token, const char **why);

/* The port actually bound (useful with port 0). */
int srv__port(const struct srv *s);

/*
 * Stops accepting, waits for running handlers to finish, frees. Make the
 * source return (e.g. -ECANCELED) first, or this waits for open windows.
 * NULL is a no-op.
 */
void srv__stop(struct srv *s);

/*
 * Request counters, for /metrics and tests. Every request that reaches the
 * handler is counted exactly once, by route and by the status it got.
 * Requests that libmicrohttpd rejects itself (malformed request line,
 * oversized headers, connection limit) never reach the handler and are
 * not counted.
 */
enum srv_route {
	SRV_ROUTE_ROOT, /* / */
	SRV_ROUTE_PPROF_INDEX, /* /debug/pprof/ */
	SRV_ROUTE_PROFILE, /* /debug/pprof/profile */
	SRV_ROUTE_FLAMEGRAPH, /* /flamegraph.svg */
	SRV_ROUTE_FOLDED, /* /folded */
	SRV_ROUTE_HEALTHZ, /* /healthz */
	SRV_ROUTE_METRICS, /* /metrics */
	SRV_ROUTE_API_TIMESERIES, /* /api/timeseries */
	SRV_ROUTE_API_TOP, /* /api/top */
	SRV_ROUTE_API_PROCESSES, /* /api/processes */
	SRV_ROUTE_OTHER, /* unknown paths (404) */
	SRV_ROUTE__NR,
};

enum srv_status {
	SRV_STATUS_200,
	SRV_STATUS_400,
	SRV_STATUS_401,
	SRV_STATUS_404,
	SRV_STATUS_405,
	SRV_STATUS_500,
	SRV_STATUS_503,
	SRV_STATUS__NR,
};

struct srv_stats {
	uint64_t requests[SRV_ROUTE__NR][SRV_STATUS__NR];
	uint64_t windows_open; /* profile requests being collected or encoded right now */
};

/* A consistent-enough snapshot: each counter is read atomically, not all at once. */
void srv__stats(const struct srv *s, struct srv_stats *out);

/* Label values for the counters: "/debug/pprof/profile", ...; 200, 400, ... */
const char *srv_route_name(enum srv_route r);
unsigned int srv_status_code(enum srv_status st);

/*
 * Parses "HOST:PORT" / "[V6]:PORT" / ":PORT". HOST is a numeric IPv4
 * address or "localhost" (127.0.0.1); no name lookups. ":PORT" gives the
 * IPv6 any-address, which srv__start() binds dual-stack (IPv4 too). PORT
 * is 0..65535. 0 or -EINVAL. Exposed for tests.
 */
struct sockaddr_storage;
int srv_parse_address(const char *address, struct sockaddr_storage *ss, unsigned int *sslen);

/*
 * Content codings for text and JSON replies (server/encoding.c). pprof is
 * never re-encoded: it is gzip inside, and scrapers expect exactly that.
 */
enum srv_coding {
	SRV_CODING_IDENTITY,
	SRV_CODING_GZIP,
	SRV_CODING_ZSTD,
};

/*
 * The coding for a request's Accept-Encoding value (NULL = no header:
 * identity). q-values are respected (q=0 refuses a coding; "*" stands for
 * the codings not named; x-gzip is gzip); of equal q, zstd beats gzip, and
 * both beat an identity that is not named. Malformed items are ignored.
 */
enum srv_coding srv_choose_coding(const char *accept_encoding);

/* "gzip", "zstd", "identity": the Content-Encoding value. */
const char *srv_coding_name(enum srv_coding c);

/* Appends @in compressed with @c to @out (identity: as is). 0 or -errno. */
int srv_compress(enum srv_coding c, const void *in, size_t len, struct strbuf *out);

#endif
