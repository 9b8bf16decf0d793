/* SPDX-License-Identifier: MIT */
/*
 * profiler/push.h — pushes the agent's intervals to a Grafana Pyroscope
 * server through its HTTP ingest API:
 *
 *   POST URL/ingest?name=SERVICE{hostname=H,k=v}&from=S&until=S
 *        &format=pprof&sampleRate=HZ&spyName=bpfprof
 *   Content-Type: application/octet-stream, body: one gzip pprof
 *   X-Scope-OrgID: TENANT (with opts.tenant)
 *
 * (why this form and which Pyroscope versions take it: docs/DESIGN-NOTES.md).
 *
 * One thread of its own does the HTTP (libcurl, one reused connection), so
 * neither the collector nor the HTTP server ever waits for the network:
 * prof_push__submit() only queues.
 *
 * The queue is bounded (opts.queue_max intervals). With a store, an entry is
 * only a time range and the pusher reads the profile back from the store
 * (prof_store__query()) when it sends it, so a backlog costs no memory;
 * without one, an entry is the encoded profile. When the queue is full the
 * oldest entry is dropped and counted. Intervals go out in order, one at a
 * time.
 *
 * Outcomes of one request:
 *   - 2xx: sent.
 *   - 429, 5xx, and transport errors (refused, reset, timeout, DNS): the same
 *     interval is tried again after a capped exponential backoff with jitter
 *     (prof_push_backoff_ms()), honouring a longer Retry-After.
 *   - any other status (4xx, and 3xx: redirects are not followed): a
 *     permanent failure for that interval, counted and logged with the
 *     server's reply (once per distinct status, not for every interval).
 *
 * The cursor (opts.cursor_dir): the file PROF_PUSH_CURSOR_FILE holds the
 * end of the last interval the server accepted, and the target it was for
 * (URL without credentials, tenant, service name). It is replaced
 * atomically (temp file, fdatasync, rename) after every accepted interval.
 * At start, every stored interval that ends after it is queued, oldest
 * first, ahead of the new ones (what queue_max cannot hold is dropped,
 * oldest first, and counted); so the intervals a previous run stored but
 * could not push, even one killed with SIGKILL, go out after a restart.
 * Without a cursor for this target (the first start, or another URL,
 * tenant or service name) pushing starts now, and a cursor saying so is
 * written at once. An interval can be sent twice only if the agent dies
 * between the server's answer and the cursor's rename.
 *
 * Threads: prof_push__submit() from one thread (the collector's);
 * prof_push__stats(), __metrics() and __status() from any thread.
 */
#ifndef BPFPROF_PUSH_H
#define BPFPROF_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/util.h"
#include "profile.h"
#include "store.h"

#define PROF_PUSH_QUEUE_STORE 360 /* default with a store: an hour of 10 s intervals */
#define PROF_PUSH_QUEUE_MEMORY 30 /* default without: encoded profiles, a few MB at most */
#define PROF_PUSH_CURSOR_FILE "push-cursor" /* in opts.cursor_dir */

struct prof_push_opts {
	/*
	 * Base URL, http:// or https://, optionally with user:password@ (HTTP
	 * basic auth, but ps shows it: see @auth) and a path prefix; "/ingest"
	 * is appended. Copied. Never logged with its password.
	 */
	const char *url;
	const char *service_name; /* NULL = @hostname; prof_push_check_service_name() */
	const char *hostname; /* the "hostname" label; NULL = gethostname() */
	/* "name=value" labels (prof_push_check_label()); copied. A "hostname" one replaces it. */
	const char *const *labels;
	size_t nlabels;
	/*
	 * Multi-tenant Pyroscope: sent as "X-Scope-OrgID: TENANT" on every
	 * request (prof_push_check_tenant()); NULL = none. Copied.
	 */
	const char *tenant;
	/*
	 * Credentials, as prof_push_read_auth_file() returns them: "USER:PASSWORD"
	 * for HTTP basic auth, or a bearer token (no ':'). NULL = none (or
	 * user:password@ in @url; both at once are refused). Only libcurl keeps
	 * a copy; never logged.
	 */
	const char *auth;
	unsigned int sample_rate; /* Hz, sent as sampleRate= (informational for pprof) */
	unsigned int queue_max; /* intervals; 0 = PROF_PUSH_QUEUE_STORE or _MEMORY */
	/* NULL = keep encoded profiles in memory. Must outlive the pusher. */
	struct prof_store *store;
	/*
	 * With @store: the directory of the push cursor, usually the store's
	 * (see "The cursor" above). NULL = none: a restart forgets what was
	 * not pushed yet.
	 */
	const char *cursor_dir;
	unsigned int backoff_min_ms; /* first retry delay; 0 = 1000 */
	unsigned int backoff_max_ms; /* cap; 0 = 30000 */
	unsigned int timeout_ms; /* per request; 0 = 15000 */
};

struct prof_push_stats {
	uint64_t sent; /* intervals the server accepted */
	uint64_t failed; /* intervals refused for good (4xx other than 429) */
	uint64_t dropped; /* queue overflow, gone from the store, or left at exit */
	uint64_t retries; /* attempts that failed and were retried */
	uint64_t resumed; /* stored intervals queued at start, after the cursor */
	uint64_t queued; /* intervals waiting, including the one being sent */
	uint64_t queue_max;
	uint64_t bytes_sent; /* request bodies of accepted intervals */
	int64_t last_success_ns; /* wall clock of the last accepted interval, 0 = none */
	long last_status; /* HTTP status of the last attempt; 0 = transport error or none */
};

struct prof_push;

/*
 * Checks @o (URL scheme, service name, labels), builds the request name and
 * starts the pusher thread. NULL with errno set: EINVAL for bad options
 * (the reason has been logged), or the error of starting the thread.
 * Stop and free with prof_push__close().
 */
struct prof_push *prof_push__start(const struct prof_push_opts *o);

/*
 * Queues @interval ([time_nanos, time_nanos + duration_nanos)). With
 * @in_store, only the range is queued and the pusher reads it back from
 * opts.store; otherwise (no store, or the append failed) it is encoded here,
 * on the caller's thread, and kept in memory. The caller keeps @interval.
 * Never blocks on the network. 0, or -errno when it could not be encoded
 * (counted as dropped).
 */
int prof_push__submit(struct prof_push *p, const struct prof_profile *interval, bool in_store);

/* A consistent snapshot of the counters. */
void prof_push__stats(struct prof_push *p, struct prof_push_stats *st);

/* Appends the bpfprof_push_* families (Prometheus text, HELP and TYPE lines) for /metrics. */
void prof_push__metrics(struct prof_push *p, struct strbuf *out);

/* Appends "push_* N" lines for /healthz. */
void prof_push__status(struct prof_push *p, struct strbuf *out);

/*
 * Gives the pusher up to @flush_ms to deliver what is queued (a request in
 * flight past that is aborted), then stops the thread and frees everything.
 * What is left undelivered is counted as dropped and logged. NULL is a no-op.
 */
void prof_push__close(struct prof_push *p, unsigned int flush_ms);

/* ---- exposed for tests ------------------------------------------------------ */

enum prof_push_verdict {
	PROF_PUSH_SENT,
	PROF_PUSH_RETRY,
	PROF_PUSH_PERMANENT,
};

/* What to do after a request: @curl_code is a CURLcode (0 = a reply came), @status its HTTP code.
 */
enum prof_push_verdict prof_push_classify(int curl_code, long status);

/*
 * Delay before retry number @attempt (1 = the first retry): d = min(max_ms,
 * min_ms * 2^(attempt - 1)), then "equal jitter": d/2 + (@rnd % (d/2 + 1)),
 * so a retry never comes sooner than half the nominal delay and never later
 * than the cap, and agents that failed together spread out.
 */
uint64_t prof_push_backoff_ms(unsigned int attempt, unsigned int min_ms, unsigned int max_ms,
			      uint32_t rnd);

/*
 * "name=value" from --label. Names as Prometheus has them
 * ([A-Za-z_][A-Za-z0-9_]*), not starting with "__" (Pyroscope's) and not
 * "service_name" (that is --service-name). Values non-empty, without
 * control characters, ',', '{', '}', '=', '"' or '\\' (Pyroscope's name
 * syntax has no escapes) and without leading or trailing spaces (it trims
 * them). 0, or -EINVAL with the reason in @why.
 */
int prof_push_check_label(const char *kv, char *why, size_t whylen);

/* Pyroscope's application name characters: [A-Za-z0-9_.\-/]+. 0 or -EINVAL. */
int prof_push_check_service_name(const char *s);

/*
 * Reads --push-auth-file: a file only its owner may read (read_secret_file(),
 * 4 KiB at most) that holds "USER:PASSWORD" (HTTP basic auth, e.g. Grafana
 * Cloud's instance id and an access token) or, without ':', a bearer token.
 * One trailing newline ("\n" or "\r\n") is removed. 0 with the contents in
 * *@auth (the caller frees it, after explicit_bzero()), or -errno with a
 * one-line reason in *@why (static): the file's errors, or -EINVAL for an
 * empty file, control characters (a second line included), an empty user
 * or password, or a space in the user or the token. The reason never
 * quotes the file.
 */
int prof_push_read_auth_file(const char *path, char **auth, const char **why);

/* Whether @url has user[:password]@ in front of its host. */
bool prof_push_url_has_credentials(const char *url);

/*
 * A tenant id as Pyroscope (Grafana's dskit) takes it in X-Scope-OrgID: 1 to
 * 150 of [A-Za-z0-9!-_.*'()], and not "." or "..". 0 or -EINVAL.
 */
int prof_push_check_tenant(const char *s);

/*
 * The full ingest URL for one interval, appended to @out: @base (its
 * trailing '/' dropped) + "/ingest?name=" + URL-encoded @name + from= and
 * until= in Unix seconds, rounded to the nearest second (intervals end a
 * few ms after wall-clock multiples, so back-to-back intervals get
 * back-to-back ranges). A range under a second is widened to one second
 * on the side away from its aligned end.
 */
void prof_push_ingest_url(const char *base, const char *name, int64_t start_ns, int64_t end_ns,
			  unsigned int sample_rate, struct strbuf *out);

/* One queue entry: a time range, and the encoded profile when it is kept in memory. */
struct prof_push_item {
	int64_t start_ns, end_ns;
	void *body; /* gzip pprof (owned by the entry), or NULL: read it from the store */
	size_t len;
};

/* The bounded FIFO behind the pusher (no locking: the pusher locks around it). */
struct prof_push_queue;
struct prof_push_queue *prof_push_queue__new(size_t max);
/* Appends @it (the queue owns its body now). When full, the oldest is freed first: returns 1, else
 * 0. */
int prof_push_queue__put(struct prof_push_queue *q, const struct prof_push_item *it);
/* Takes the oldest into *@it (the caller owns its body). false when empty. */
bool prof_push_queue__take(struct prof_push_queue *q, struct prof_push_item *it);
size_t prof_push_queue__len(const struct prof_push_queue *q);
/* Frees the queue and every body in it; returns how many entries it held. NULL is a no-op. */
size_t prof_push_queue__free(struct prof_push_queue *q);

#endif
