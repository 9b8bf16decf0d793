// SPDX-License-Identifier: MIT
/*
 * server/server.c — the HTTP interface on libmicrohttpd (MHD).
 *
 * Threading: one thread per connection (MHD_USE_THREAD_PER_CONNECTION).
 * Profile handlers block inside the access handler for the whole window
 * (up to SRV_MAX_SECONDS), which only works if no other connection shares
 * that thread.
 *
 * MHD calls the access handler once when the headers are in, again for
 * each piece of body, and a last time with no body left. A method we
 * refuse is answered on the first call, so its body is never read (MHD
 * then closes the connection). GET and HEAD are answered on the last
 * call: a response queued earlier makes MHD close the connection, and
 * scrapers reuse theirs.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../profiler/encode.h"

/*
 * Each connection costs a thread; 64 is far more than a few scrapers and a
 * browser need, and bounds what a misbehaving client can tie up.
 */
#define SRV_CONNECTION_LIMIT 64u
/*
 * MHD's timeout counts inactivity on the socket. MHD 0.9.75 does not count
 * the time spent inside the access handler (checked: a 1 s timeout and a
 * 3 s handler still answer 200), but that is not promised anywhere, so the
 * timeout is longer than the longest window: a version that did count it
 * must not cut off a 300 s profile. The cost is that an idle keep-alive
 * connection holds its thread for up to 6 minutes, bounded by the limit.
 */
#define SRV_CONNECTION_TIMEOUT (SRV_MAX_SECONDS + 60u)
/* Paths echoed in a 404 are cut here so the reply stays one short line. */
#define SRV_ECHO_MAX 200

struct srv {
	struct MHD_Daemon *daemon;
	struct srv_source src;
	int port;
	char host[256]; /* for the flame graph subtitle */
	char *token; /* bearer token, NULL = none */
	size_t token_len;
	/* Updated with relaxed atomics from the connection threads. */
	struct srv_stats stats;
};

/* What a handler decided; send_reply() turns it into an MHD response. */
struct reply {
	unsigned int status;
	const char *content_type;
	struct strbuf body;
	const char *disposition; /* Content-Disposition, or NULL */
	bool allow; /* add "Allow: GET, HEAD" (405) */
	bool headers_only; /* HEAD on a profile route: length unknown */
	bool challenge; /* 401: add "WWW-Authenticate: Bearer" */
};

struct request {
	struct MHD_Connection *conn;
	const char *method;
	const char *url;
	bool head;
};

struct route {
	const char *path;
	enum srv_route id;
	void (*handle)(struct srv *s, const struct route *rt, struct request *rq, struct reply *rp);
	unsigned int default_seconds; /* profile routes only */
	enum prof_format format; /* profile routes only */
};

static const char *const route_names[SRV_ROUTE__NR] = {
	[SRV_ROUTE_ROOT] = "/",
	[SRV_ROUTE_PPROF_INDEX] = "/debug/pprof/",
	[SRV_ROUTE_PROFILE] = "/debug/pprof/profile",
	[SRV_ROUTE_FLAMEGRAPH] = "/flamegraph.svg",
	[SRV_ROUTE_FOLDED] = "/folded",
	[SRV_ROUTE_HEALTHZ] = "/healthz",
	[SRV_ROUTE_METRICS] = "/metrics",
	[SRV_ROUTE_API_TIMESERIES] = "/api/timeseries",
	[SRV_ROUTE_API_TOP] = "/api/top",
	[SRV_ROUTE_API_PROCESSES] = "/api/processes",
	[SRV_ROUTE_OTHER] = "other",
};

static const unsigned int status_codes[SRV_STATUS__NR] = {
	[SRV_STATUS_200] = 200, [SRV_STATUS_400] = 400, [SRV_STATUS_401] = 401,
	[SRV_STATUS_404] = 404, [SRV_STATUS_405] = 405, [SRV_STATUS_500] = 500,
	[SRV_STATUS_503] = 503,
};

const char *srv_route_name(enum srv_route r)
{
	return (unsigned int)r < SRV_ROUTE__NR ? route_names[r] : "?";
}

unsigned int srv_status_code(enum srv_status st)
{
	return (unsigned int)st < SRV_STATUS__NR ? status_codes[st] : 0;
}

/* ---- address parsing ---------------------------------------------------- */

/* Decimal 0..65535, digits only: "+80", "-1", "80x" and "" are refused. */
static int parse_port(const char *p, in_port_t *port)
{
	unsigned long v = 0;

	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return -EINVAL;
	}
	*port = htons((in_port_t)v);
	return 0;
}

int srv_parse_address(const char *address, struct sockaddr_storage *ss, unsigned int *sslen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *port;
	size_t hlen;

	if (!address || !ss || !sslen)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));

	if (address[0] == '[') {
		const char *end = strchr(address, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		hlen = (size_t)(end - address - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, address + 1, hlen);
		host[hlen] = '\0';
		sin6->sin6_family = AF_INET6;
		/* inet_pton() refuses "1.2.3.4" and "fe80::1%eth0" here: both are errors. */
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		if (parse_port(end + 2, &sin6->sin6_port))
			return -EINVAL;
		*sslen = sizeof(*sin6);
		return 0;
	}

	/* Unbracketed: exactly one colon, so "::1:80" is refused, not guessed at. */
	colon = strchr(address, ':');
	if (!colon || strchr(colon + 1, ':'))
		return -EINVAL;
	port = colon + 1;
	hlen = (size_t)(colon - address);
	if (hlen == 0) {
		/* ":PORT": every address, IPv6 and (dual-stack) IPv4. */
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		if (parse_port(port, &sin6->sin6_port))
			return -EINVAL;
		*sslen = sizeof(*sin6);
		return 0;
	}
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, address, hlen);
	host[hlen] = '\0';
	sin->sin_family = AF_INET;
	if (!strcmp(host, "localhost"))
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -EINVAL;
	if (parse_port(port, &sin->sin_port))
		return -EINVAL;
	*sslen = sizeof(*sin);
	return 0;
}

/* ---- replies ------------------------------------------------------------ */

static enum srv_status status_index(unsigned int code)
{
	unsigned int i;

	for (i = 0; i < SRV_STATUS__NR; i++)
		if (status_codes[i] == code)
			return (enum srv_status)i;
	/* Only the codes above are ever produced; 500 is the honest bucket. */
	return SRV_STATUS_500;
}

static void reply_text(struct reply *rp, unsigned int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply_text(struct reply *rp, unsigned int status, const char *fmt, ...)
{
	va_list ap;

	rp->status = status;
	rp->content_type = "text/plain; charset=utf-8";
	strbuf_reset(&rp->body);
	va_start(ap, fmt);
	strbuf_vaddf(&rp->body, fmt, ap);
	va_end(ap);
}

/*
 * Appends @s with control characters replaced and its length capped, so a
 * path echoed back cannot break the one-line reply or flood the log.
 */
static void add_sanitized(struct strbuf *sb, const char *s)
{
	size_t n = strnlen(s, SRV_ECHO_MAX + 1), i;

	for (i = 0; i < n && i < SRV_ECHO_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		strbuf_addc(sb, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
	if (n > SRV_ECHO_MAX)
		strbuf_adds(sb, "...");
}

/* Never called: a HEAD response has no body. */
static ssize_t empty_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	(void)pos;
	(void)buf;
	(void)max;
	return MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result send_reply(struct srv *s, const struct request *rq, enum srv_route route,
				  struct reply *rp)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len;
	char *body;

	/* Text and JSON only: pprof is gzip inside already, and scrapers expect it as it is. */
	bool compressible = strcmp(rp->content_type, "application/octet-stream") != 0;
	enum srv_coding coding = SRV_CODING_IDENTITY;

	__atomic_fetch_add(&s->stats.requests[route][status_index(rp->status)], 1,
			   __ATOMIC_RELAXED);

	if (compressible)
		coding = srv_choose_coding(MHD_lookup_connection_value(
			rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
	if (coding != SRV_CODING_IDENTITY && !rp->headers_only) {
		struct strbuf z = STRBUF_INIT;

		if (srv_compress(coding, rp->body.buf ? rp->body.buf : "", rp->body.len, &z)) {
			pr_warn("http: %s: %s failed; sending it uncompressed", rq->url,
				srv_coding_name(coding));
			coding = SRV_CODING_IDENTITY;
			strbuf_release(&z);
		} else {
			strbuf_release(&rp->body);
			rp->body = z;
		}
	}

	if (rp->headers_only) {
		/*
		 * The length of a body never made is unknown, and a HEAD reply must
		 * not claim one (RFC 9110, 8.6). HTTP/1.1 framing of an unknown
		 * length is chunked, and MHD 0.9.75 then sends the chunked
		 * terminator even after HEAD, which a keep-alive client would read
		 * as the start of its next response. HTTP/1.0 style framing (close
		 * the connection) has neither problem.
		 */
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, empty_reader, NULL,
							 NULL);
		if (resp)
			MHD_set_response_options(resp, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT,
						 MHD_RO_END);
	} else {
		body = strbuf_detach(&rp->body, &len);
		/* The response frees @body when destroyed; if it cannot be made, we do. */
		resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
		if (!resp)
			free(body);
	}
	if (!resp) {
		pr_warn("http: %s: cannot create a response", rq->url);
		return MHD_NO; /* MHD closes the connection */
	}

	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rp->content_type);
	/* The 404 echoes the path: never let a browser sniff it into HTML. */
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (rp->disposition)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, rp->disposition);
	if (rp->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (compressible)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY,
					MHD_HTTP_HEADER_ACCEPT_ENCODING);
	if (coding != SRV_CODING_IDENTITY)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
					srv_coding_name(coding));
	if (rp->challenge)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"bpfprof\"");
	/* Every profile is a fresh window; a cached one would be a lie. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");

	ret = MHD_queue_response(rq->conn, rp->status, resp);
	MHD_destroy_response(resp);
	pr_debug("http: %s %s -> %u", rq->method, rq->url, rp->status);
	return ret;
}

/* ---- handlers ----------------------------------------------------------- */

static const char root_html[] =
	"<!DOCTYPE html>\n"
	"<html><head><meta charset=\"utf-8\"><title>bpfprof</title></head>\n"
	"<body>\n"
	"<h1>bpfprof</h1>\n"
	"<p>Continuous whole-system CPU profiler.</p>\n"
	"<ul>\n"
	"<li><a href=\"/flamegraph.svg?seconds=10\">/flamegraph.svg</a>: flame graph of the next "
	"10 seconds</li>\n"
	"<li><a href=\"/folded?seconds=10\">/folded</a>: folded stacks of the next 10 "
	"seconds</li>\n"
	"<li><a href=\"/debug/pprof/profile?seconds=30\">/debug/pprof/profile</a>: pprof CPU "
	"profile of the next 30 seconds (gzip)</li>\n"
	"<li><a href=\"/debug/pprof/\">/debug/pprof/</a>: pprof index (Parca, Pyroscope, "
	"go tool pprof)</li>\n"
	"<li><a href=\"/healthz\">/healthz</a>: health and counters</li>\n"
	"<li><a href=\"/metrics\">/metrics</a>: the agent's own metrics (Prometheus)</li>\n"
	"<li><a href=\"/api/timeseries\">/api/timeseries</a>, <a href=\"/api/top\">/api/top</a>, "
	"<a href=\"/api/processes\">/api/processes</a>: the last hour as JSON</li>\n"
	"</ul>\n"
	"</body></html>\n";

static const char pprof_index_html[] =
	"<!DOCTYPE html>\n"
	"<html><head><meta charset=\"utf-8\"><title>/debug/pprof/</title></head>\n"
	"<body>\n"
	"<h1>/debug/pprof/</h1>\n"
	"<table>\n"
	"<tr><td><a href=\"/debug/pprof/profile?seconds=30\">profile</a></td>"
	"<td>CPU profile of every process for the next <code>seconds</code> (default 30, 1 to "
	"300), gzip-compressed pprof. <code>go tool pprof "
	"http://HOST:PORT/debug/pprof/profile?seconds=30</code></td></tr>\n"
	"</table>\n"
	"<p><a href=\"/\">bpfprof</a></p>\n"
	"</body></html>\n";

static void handle_html(struct srv *s, const struct route *rt, struct request *rq, struct reply *rp)
{
	(void)s;
	(void)rq;
	rp->status = MHD_HTTP_OK;
	rp->content_type = "text/html; charset=utf-8";
	if (rt->id == SRV_ROUTE_ROOT)
		strbuf_add(&rp->body, root_html, sizeof(root_html) - 1);
	else
		strbuf_add(&rp->body, pprof_index_html, sizeof(pprof_index_html) - 1);
}

static void handle_healthz(struct srv *s, const struct route *rt, struct request *rq,
			   struct reply *rp)
{
	(void)rt;
	(void)rq;
	reply_text(rp, MHD_HTTP_OK, "ok\n");
	if (s->src.status)
		s->src.status(s->src.ctx, &rp->body);
}

/*
 * Prometheus text format 0.0.4: the source's metrics, then ours. Counters
 * of requests by route and status include this request's route only from
 * the next scrape on (it is counted when answered).
 */
static void handle_metrics(struct srv *s, const struct route *rt, struct request *rq,
			   struct reply *rp)
{
	struct srv_stats st;

	(void)rt;
	(void)rq;
	rp->status = MHD_HTTP_OK;
	rp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	if (s->src.metrics)
		s->src.metrics(s->src.ctx, &rp->body);
	srv__stats(s, &st);
	strbuf_adds(&rp->body,
		    "# HELP bpfprof_http_requests_total HTTP requests answered, by route "
		    "and status code.\n# TYPE bpfprof_http_requests_total counter\n");
	for (int r = 0; r < SRV_ROUTE__NR; r++)
		for (int c = 0; c < SRV_STATUS__NR; c++)
			if (st.requests[r][c])
				strbuf_addf(&rp->body,
					    "bpfprof_http_requests_total{route=\"%s\",code=\"%u\"} "
					    "%llu\n",
					    srv_route_name(r), srv_status_code(c),
					    (unsigned long long)st.requests[r][c]);
	strbuf_addf(&rp->body,
		    "# HELP bpfprof_http_windows_open Profile requests being collected now.\n"
		    "# TYPE bpfprof_http_windows_open gauge\nbpfprof_http_windows_open %llu\n",
		    (unsigned long long)st.windows_open);
}

/* Finds the first "seconds" argument; MHD passes a NULL value for "?seconds" without '='. */
struct seconds_arg {
	bool found;
	const char *value;
};

static enum MHD_Result find_seconds(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct seconds_arg *a = cls;

	(void)kind;
	if (!key || strcmp(key, "seconds"))
		return MHD_YES;
	a->found = true;
	a->value = value;
	return MHD_NO; /* stop: the first one wins */
}

/* "1".."300", decimal digits only; anything else is -EINVAL. */
static int parse_seconds(const char *v, unsigned int *out)
{
	unsigned long n = 0;

	if (!v || !*v)
		return -EINVAL;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -EINVAL;
		n = n * 10 + (unsigned long)(*v - '0');
		if (n > SRV_MAX_SECONDS) /* also stops overflow on long inputs */
			return -EINVAL;
	}
	if (n < SRV_MIN_SECONDS)
		return -EINVAL;
	*out = (unsigned int)n;
	return 0;
}

static void flamegraph_subtitle(const struct srv *s, unsigned int seconds, char *buf, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	snprintf(buf, size, "%s, %u s window ending %04d-%02d-%02d %02d:%02d:%02d UTC", s->host,
		 seconds, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/*
 * A point in time as RFC 3339 ("2026-11-21T03:12:00Z", fraction and offset
 * allowed) or Unix seconds ("1763694720", fraction allowed), in ns.
 */
static int parse_time(const char *v, int64_t *ns)
{
	struct tm tm = {0};
	const char *p;
	char *end;
	double frac = 0;
	long off = 0;

	if (!v || !*v)
		return -EINVAL;
	if (!strchr(v, '-') || v[0] == '-') {
		double secs;

		if (v[0] == '-' || v[0] == '+')
			return -EINVAL;
		secs = strtod(v, &end);
		if (*end || secs <= 0 || secs > 4e9)
			return -EINVAL;
		*ns = (int64_t)(secs * 1e9);
		return 0;
	}
	p = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.') {
		frac = strtod(p, &end);
		p = end;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		off = (strtol(p + 1, NULL, 10) * 60 + strtol(p + 4, NULL, 10)) * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	*ns = ((int64_t)timegm(&tm) - off) * 1000000000LL + (int64_t)(frac * 1e9);
	return 0;
}

static const char *arg(struct request *rq, const char *key)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* pid=, comm= and container= into *@f; on a bad value, a 400 in @rp and -EINVAL. */
static int parse_filter(struct request *rq, struct reply *rp, struct prof_filter *f)
{
	const char *vp = arg(rq, "pid");

	memset(f, 0, sizeof(*f));
	f->comm = arg(rq, "comm");
	f->container = arg(rq, "container");
	if (vp) {
		char *end;
		unsigned long v = strtoul(vp, &end, 10);

		if (!*vp || *end || *vp == '-' || *vp == '+' || v == 0 || v > INT32_MAX) {
			reply_text(rp, MHD_HTTP_BAD_REQUEST, "bad pid: a process id\n");
			return -EINVAL;
		}
		f->pid = (uint32_t)v;
	}
	if (f->container && !prof_filter_container_ok(f->container)) {
		reply_text(rp, MHD_HTTP_BAD_REQUEST,
			   "bad container: 12 to %d lowercase hex digits of a container id\n",
			   PROF_CONTAINER_ID_LEN);
		return -EINVAL;
	}
	return 0;
}

/* The /api/ routes default to the last hour. */
#define SRV_API_DEFAULT_RANGE_NS (3600LL * 1000000000)

/*
 * start= and end= into [*@start_ns, *@end_ns). Without either, *@history
 * stays false, unless @always: then the range is the last hour. end
 * defaults to now, start (with @always) to an hour before end. On a bad
 * value, a 400 in @rp and -EINVAL.
 */
static int parse_range(struct request *rq, struct reply *rp, bool always, bool *history,
		       int64_t *start_ns, int64_t *end_ns)
{
	const char *vs = arg(rq, "start"), *ve = arg(rq, "end");

	*history = always || vs || ve;
	if (!*history)
		return 0;
	*end_ns = (int64_t)now_wall_ns();
	if ((ve && parse_time(ve, end_ns)) || (vs && parse_time(vs, start_ns)) ||
	    (!vs && !always)) {
		reply_text(rp, MHD_HTTP_BAD_REQUEST,
			   "bad start/end: RFC 3339 or Unix seconds, start before end\n");
		return -EINVAL;
	}
	if (!vs)
		*start_ns = *end_ns - SRV_API_DEFAULT_RANGE_NS;
	if (*start_ns >= *end_ns) {
		reply_text(rp, MHD_HTTP_BAD_REQUEST,
			   "bad start/end: RFC 3339 or Unix seconds, start before end\n");
		return -EINVAL;
	}
	return 0;
}

static void handle_profile(struct srv *s, const struct route *rt, struct request *rq,
			   struct reply *rp)
{
	struct seconds_arg arg = {0};
	struct prof_profile *p = NULL;
	unsigned int seconds = rt->default_seconds;
	bool with_lines, history = false;
	int64_t start_ns = 0, end_ns = 0;
	struct prof_filter filter;
	int err;

	MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, find_seconds, &arg);
	if (arg.found && parse_seconds(arg.value, &seconds)) {
		reply_text(rp, MHD_HTTP_BAD_REQUEST,
			   "bad seconds: must be an integer from %d to %d\n", SRV_MIN_SECONDS,
			   SRV_MAX_SECONDS);
		return;
	}
	{
		/* ?lines=1: source positions in frame names (folded and SVG only). */
		const char *v =
			MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "lines");

		if (v && strcmp(v, "0") && strcmp(v, "1")) {
			reply_text(rp, MHD_HTTP_BAD_REQUEST, "bad lines: must be 0 or 1\n");
			return;
		}
		with_lines = v && !strcmp(v, "1") && rt->format != PROF_FMT_PPROF;
	}
	if (parse_filter(rq, rp, &filter) ||
	    parse_range(rq, rp, false, &history, &start_ns, &end_ns))
		return;

	switch (rt->format) {
	case PROF_FMT_PPROF:
		rp->content_type = "application/octet-stream";
		rp->disposition = "attachment; filename=\"profile.pb.gz\"";
		break;
	case PROF_FMT_SVG:
		rp->content_type = "image/svg+xml";
		break;
	case PROF_FMT_FOLDED:
		rp->content_type = "text/plain; charset=utf-8";
		break;
	}
	rp->status = MHD_HTTP_OK;
	if (rq->head) {
		rp->headers_only = true;
		return;
	}

	/* Counted until the body is built, so that srv__stop() can wait for it. */
	__atomic_fetch_add(&s->stats.windows_open, 1, __ATOMIC_RELAXED);
	if (!history)
		err = s->src.window(s->src.ctx, seconds, &p);
	else if (s->src.query)
		err = s->src.query(s->src.ctx, start_ns, end_ns, &p);
	else
		err = -ENOTSUP;
	if (err == -ENOTSUP) {
		reply_text(rp, MHD_HTTP_BAD_REQUEST,
			   "no history: this agent keeps none (started with --no-store)\n");
		goto out;
	}
	if (!err && !p)
		err = -ENODATA; /* a source bug, but not worth a crash */
	if (err == -ECANCELED) {
		reply_text(rp, MHD_HTTP_SERVICE_UNAVAILABLE, "agent is shutting down\n");
		goto out;
	}
	if (err) {
		pr_warn("http: %s: window of %u s: %s", rt->path, seconds, strerror(-err));
		reply_text(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "profile failed: %s\n",
			   strerror(-err));
		goto out;
	}

	if (filter.pid || filter.comm || filter.container) {
		struct prof_profile *only = prof_profile__filter_by(p, &filter);

		prof_profile__free(p);
		p = only;
	}
	if (with_lines) {
		struct prof_profile *named = prof_profile__with_line_names(p);

		prof_profile__free(p);
		p = named;
	}
	switch (rt->format) {
	case PROF_FMT_PPROF:
		err = pprof_encode(p, &rp->body);
		break;
	case PROF_FMT_SVG: {
		struct flamegraph_opts opts = {0};
		char subtitle[512];

		flamegraph_subtitle(s, seconds, subtitle, sizeof(subtitle));
		opts.subtitle = subtitle;
		err = flamegraph_encode(p, &rp->body, &opts);
		break;
	}
	case PROF_FMT_FOLDED:
		err = folded_encode(p, &rp->body, 0);
		break;
	}
	if (err) {
		pr_warn("http: %s: encoding failed: %s", rt->path, strerror(-err));
		reply_text(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "encoding failed: %s\n",
			   strerror(-err));
	}
out:
	prof_profile__free(p);
	__atomic_fetch_sub(&s->stats.windows_open, 1, __ATOMIC_RELAXED);
}

#define SRV_API_MAX_LIMIT 100000
#define SRV_API_TOP_DEFAULT_LIMIT 50

/* Why a history source failed, as the profile routes say it. */
static void reply_history_error(const struct route *rt, struct reply *rp, int err)
{
	if (err == -ENOTSUP) {
		reply_text(rp, MHD_HTTP_BAD_REQUEST,
			   "no history: this agent keeps none (started with --no-store)\n");
		return;
	}
	pr_warn("http: %s: history query: %s", rt->path, strerror(-err));
	reply_text(rp, MHD_HTTP_INTERNAL_SERVER_ERROR, "query failed: %s\n", strerror(-err));
}

/* /api/timeseries, /api/top, /api/processes: JSON from the history (profiler/api.h). */
static void handle_api(struct srv *s, const struct route *rt, struct request *rq, struct reply *rp)
{
	struct prof_filter filter;
	struct prof_profile *p = NULL;
	enum api_sort sort = API_SORT_SELF;
	unsigned int limit = rt->id == SRV_ROUTE_API_TOP ? SRV_API_TOP_DEFAULT_LIMIT : 0;
	int64_t start_ns = 0, end_ns = 0;
	const char *v;
	bool history;
	int err;

	if (parse_filter(rq, rp, &filter) ||
	    parse_range(rq, rp, true, &history, &start_ns, &end_ns))
		return;
	if ((v = arg(rq, "limit"))) {
		char *end;
		unsigned long n = strtoul(v, &end, 10);

		if (!*v || *end || *v == '-' || *v == '+' || n > SRV_API_MAX_LIMIT) {
			reply_text(rp, MHD_HTTP_BAD_REQUEST,
				   "bad limit: an integer from 0 (no limit) to %d\n",
				   SRV_API_MAX_LIMIT);
			return;
		}
		limit = (unsigned int)n;
	}
	if ((v = arg(rq, "sort")) && rt->id == SRV_ROUTE_API_TOP) {
		if (!strcmp(v, "total")) {
			sort = API_SORT_TOTAL;
		} else if (strcmp(v, "self")) {
			reply_text(rp, MHD_HTTP_BAD_REQUEST, "bad sort: self or total\n");
			return;
		}
	}

	if (rt->id == SRV_ROUTE_API_TIMESERIES) {
		struct api_series series = {0};

		err = s->src.series ? s->src.series(s->src.ctx, start_ns, end_ns, &filter, &series)
				    : -ENOTSUP;
		if (!err)
			err = api_timeseries_json(&series, start_ns, end_ns, &rp->body);
		api_series__release(&series);
	} else {
		err = s->src.query ? s->src.query(s->src.ctx, start_ns, end_ns, &p) : -ENOTSUP;
		if (!err && !p)
			err = -ENODATA;
		if (!err && (filter.pid || filter.comm || filter.container)) {
			struct prof_profile *only = prof_profile__filter_by(p, &filter);

			prof_profile__free(p);
			p = only;
		}
		if (!err && rt->id == SRV_ROUTE_API_TOP)
			err = api_top_json(p, limit, sort, &rp->body);
		else if (!err)
			err = api_processes_json(p, limit, &rp->body);
		prof_profile__free(p);
	}
	if (err) {
		reply_history_error(rt, rp, err);
		return;
	}
	rp->status = MHD_HTTP_OK;
	rp->content_type = "application/json";
}

static const struct route routes[] = {
	{"/", SRV_ROUTE_ROOT, handle_html, 0, 0},
	{"/debug/pprof/", SRV_ROUTE_PPROF_INDEX, handle_html, 0, 0},
	{"/debug/pprof", SRV_ROUTE_PPROF_INDEX, handle_html, 0, 0},
	{"/debug/pprof/profile", SRV_ROUTE_PROFILE, handle_profile, SRV_PROFILE_DEFAULT_SECONDS,
	 PROF_FMT_PPROF},
	{"/flamegraph.svg", SRV_ROUTE_FLAMEGRAPH, handle_profile, SRV_VIEW_DEFAULT_SECONDS,
	 PROF_FMT_SVG},
	{"/folded", SRV_ROUTE_FOLDED, handle_profile, SRV_VIEW_DEFAULT_SECONDS, PROF_FMT_FOLDED},
	{"/healthz", SRV_ROUTE_HEALTHZ, handle_healthz, 0, 0},
	{"/metrics", SRV_ROUTE_METRICS, handle_metrics, 0, 0},
	{"/api/timeseries", SRV_ROUTE_API_TIMESERIES, handle_api, 0, 0},
	{"/api/top", SRV_ROUTE_API_TOP, handle_api, 0, 0},
	{"/api/processes", SRV_ROUTE_API_PROCESSES, handle_api, 0, 0},
};

/* ---- bearer token ---------------------------------------------------------- */

#define SRV_TOKEN_MAX 4096

int srv_read_token_file(const char *path, char **token, const char **why)
{
	struct strbuf sb = STRBUF_INIT;
	int err;

	*token = NULL;
	err = read_secret_file(path, SRV_TOKEN_MAX, &sb, why);
	if (err == -EFBIG)
		*why = "over 4 KiB: not a token";
	if (err)
		return err;
	while (sb.len && (sb.buf[sb.len - 1] == '\n' || sb.buf[sb.len - 1] == '\r'))
		sb.buf[--sb.len] = '\0';
	if (!sb.len) {
		strbuf_release(&sb);
		*why = "the file is empty";
		return -EINVAL;
	}
	/* RFC 6750's b64token is narrower; anything visible is accepted, nothing else. */
	for (size_t i = 0; i < sb.len; i++) {
		unsigned char c = (unsigned char)sb.buf[i];

		if (c <= 0x20 || c == 0x7f) {
			strbuf_release(&sb);
			*why = "the token has spaces or control characters";
			return -EINVAL;
		}
	}
	*token = strbuf_detach(&sb, NULL);
	return 0;
}

/*
 * Whether the request carries "Authorization: Bearer <our token>". The
 * comparison takes the same time wherever the first difference is (it
 * depends on the lengths only), so the token cannot be guessed byte by byte
 * from response times.
 */
static bool authorized(const struct srv *s, struct MHD_Connection *conn)
{
	const char *h =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	const unsigned char *got;
	unsigned char diff;
	size_t len;

	if (!h || strncasecmp(h, "Bearer ", 7))
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	got = (const unsigned char *)h;
	len = strlen(h);
	diff = len != s->token_len;
	for (size_t i = 0; i < s->token_len; i++)
		diff |= (unsigned char)(s->token[i] ^ (i < len ? got[i] : 0));
	return diff == 0;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	static int seen; /* *con_cls marker: the headers were looked at */
	struct srv *s = cls;
	struct request rq = {.conn = conn, .method = method ? method : "", .url = url ? url : ""};
	struct reply rp = {0};
	enum srv_route route = SRV_ROUTE_OTHER;
	bool allowed;
	enum MHD_Result ret;
	size_t i;

	(void)version;
	(void)upload_data;

	rq.head = method && !strcmp(method, MHD_HTTP_METHOD_HEAD);
	allowed = method && (rq.head || !strcmp(method, MHD_HTTP_METHOD_GET));
	if (allowed && !*con_cls) {
		*con_cls = &seen;
		return MHD_YES; /* answer on the last call, see the top of the file */
	}
	if (allowed && *upload_data_size) {
		*upload_data_size = 0; /* a GET with a body: ignored, as everywhere */
		return MHD_YES;
	}
	for (i = 0; i < ARRAY_SIZE(routes); i++) {
		if (!strcmp(rq.url, routes[i].path)) {
			route = routes[i].id;
			break;
		}
	}

	/* Every route takes GET and HEAD only, so the method is checked first. */
	if (s->token && route != SRV_ROUTE_HEALTHZ && !authorized(s, conn)) {
		reply_text(&rp, MHD_HTTP_UNAUTHORIZED,
			   "unauthorized: this agent wants a bearer token\n");
		rp.challenge = true;
	} else if (!allowed) {
		reply_text(&rp, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: ");
		add_sanitized(&rp.body, method ? method : "");
		strbuf_addc(&rp.body, '\n');
		rp.allow = true;
	} else if (i == ARRAY_SIZE(routes)) {
		reply_text(&rp, MHD_HTTP_NOT_FOUND, "not found: ");
		add_sanitized(&rp.body, rq.url);
		strbuf_addc(&rp.body, '\n');
	} else {
		routes[i].handle(s, &routes[i], &rq, &rp);
	}

	ret = send_reply(s, &rq, route, &rp);
	strbuf_release(&rp.body);
	return ret;
}

/* MHD's own messages (bind failures, malformed requests) go to the debug log. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	struct strbuf sb = STRBUF_INIT;

	(void)cls;
	if (log_level < 3)
		return;
	strbuf_vaddf(&sb, fmt, ap);
	while (sb.len && (sb.buf[sb.len - 1] == '\n' || sb.buf[sb.len - 1] == '\r'))
		sb.buf[--sb.len] = '\0';
	pr_debug("http: libmicrohttpd: %s", sb.buf ? sb.buf : "");
	strbuf_release(&sb);
}

static struct MHD_Daemon *start_daemon(struct srv *s, unsigned int flags, const struct sockaddr *sa)
{
	/*
	 * MHD_USE_POLL: select() cannot watch an fd above FD_SETSIZE (1024),
	 * and the agent holds many (perf events per CPU, BPF maps, ELF files),
	 * so accepted sockets can land there.
	 *
	 * No MHD_OPTION_LISTENING_ADDRESS_REUSE: left out, MHD sets SO_REUSEADDR,
	 * which is what a restart during TIME_WAIT needs. 1 would set SO_REUSEPORT
	 * and let a second agent bind the same port and take half the scrapes;
	 * 0 drops SO_REUSEADDR. Both checked with MHD 0.9.75 via getsockopt().
	 */
	/* MHD_USE_ITC: MHD_quiesce_daemon() in srv__stop() needs it. */
	flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
		 MHD_USE_ERROR_LOG | MHD_USE_ITC;
	/* The logger goes first so that it also gets MHD's complaints about the rest. */
	return MHD_start_daemon(
		flags, 0, NULL, NULL, access_handler, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger,
		NULL, MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT, SRV_CONNECTION_LIMIT,
		MHD_OPTION_CONNECTION_TIMEOUT, SRV_CONNECTION_TIMEOUT, MHD_OPTION_END);
}

struct srv *srv__start(const char *address, const struct srv_source *src)
{
	return srv__start_opts(address, src, NULL);
}

struct srv *srv__start_opts(const char *address, const struct srv_source *src,
			    const struct srv_opts *opts)
{
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	unsigned int sslen, flags = 0;
	struct srv *s;
	int err;

	if (!src || !src->window) {
		errno = EINVAL;
		return NULL;
	}
	err = srv_parse_address(address, &ss, &sslen);
	if (err) {
		errno = -err;
		return NULL;
	}

	s = xcalloc(1, sizeof(*s));
	s->src = *src;
	if (opts && opts->token) {
		s->token = xstrdup(opts->token);
		s->token_len = strlen(s->token);
	}
	if (gethostname(s->host, sizeof(s->host) - 1))
		snprintf(s->host, sizeof(s->host), "localhost");

	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

		/* MHD picks the socket family from the flags, not from the sockaddr. */
		flags |= IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ? MHD_USE_DUAL_STACK
								   : MHD_USE_IPv6;
	}
	errno = 0;
	s->daemon = start_daemon(s, flags, (const struct sockaddr *)&ss);
	if (!s->daemon && errno == EAFNOSUPPORT &&
	    (flags & MHD_USE_DUAL_STACK) == MHD_USE_DUAL_STACK) {
		/* ":PORT" on a host without IPv6: every IPv4 address is what was meant. */
		struct sockaddr_in sin = {.sin_family = AF_INET};

		sin.sin_addr.s_addr = htonl(INADDR_ANY);
		sin.sin_port = ((const struct sockaddr_in6 *)&ss)->sin6_port;
		errno = 0;
		s->daemon = start_daemon(s, 0, (const struct sockaddr *)&sin);
	}
	if (!s->daemon) {
		/* MHD keeps the errno of the failed socket()/bind()/listen(). */
		err = errno ? errno : EIO;
		free(s->token);
		free(s);
		errno = err;
		return NULL;
	}

	info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	pr_info("http: listening on %s (port %d)", address, s->port);
	return s;
}

int srv__port(const struct srv *s)
{
	return s->port;
}

void srv__stats(const struct srv *s, struct srv_stats *out)
{
	unsigned int r, st;

	for (r = 0; r < SRV_ROUTE__NR; r++)
		for (st = 0; st < SRV_STATUS__NR; st++)
			out->requests[r][st] =
				__atomic_load_n(&s->stats.requests[r][st], __ATOMIC_RELAXED);
	out->windows_open = __atomic_load_n(&s->stats.windows_open, __ATOMIC_RELAXED);
}

/* How long srv__stop() lets requests in flight finish. */
#define SRV_STOP_GRACE_MS 5000
/* ... and how long it then lets MHD send their responses. */
#define SRV_STOP_FLUSH_MS 300

static unsigned int open_connections(const struct srv *s)
{
	const union MHD_DaemonInfo *i =
		MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return i ? i->num_connections : 0;
}

void srv__stop(struct srv *s)
{
	MHD_socket lsock;
	uint64_t deadline, flush_until = 0;

	if (!s)
		return;
	/*
	 * Stop accepting, then let requests in flight be answered: when the
	 * agent stops, the collector completes every open window with what it
	 * has, and a scraper should get that profile rather than a reset
	 * connection. Idle keep-alive connections do not hold us up: once no
	 * handler is busy, MHD gets SRV_STOP_FLUSH_MS to send what is queued.
	 */
	lsock = MHD_quiesce_daemon(s->daemon);
	deadline = now_mono_ns() + SRV_STOP_GRACE_MS * 1000000ULL;
	while (open_connections(s) > 0 && now_mono_ns() < deadline) {
		if (__atomic_load_n(&s->stats.windows_open, __ATOMIC_RELAXED) == 0) {
			if (!flush_until)
				flush_until = now_mono_ns() + SRV_STOP_FLUSH_MS * 1000000ULL;
			else if (now_mono_ns() >= flush_until)
				break;
		} else {
			flush_until = 0;
		}
		usleep(10 * 1000);
	}
	/* Joins the listening thread and every connection thread. */
	MHD_stop_daemon(s->daemon);
	/* MHD hands the quiesced listening socket to us; close it after the stop. */
	if (lsock != MHD_INVALID_SOCKET)
		close(lsock);
	free(s->token);
	free(s);
}
