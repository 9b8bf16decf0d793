/* SPDX-License-Identifier: MIT */
/*
 * tests/common/testutil.h — helpers shared by the criterion suites: running
 * programs, a minimal HTTP/1.1 client for 127.0.0.1, folded-stack parsing.
 */
#ifndef BPFPROF_TESTUTIL_H
#define BPFPROF_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../../common/util.h"

/* Directory of the build ($BPFPROF_BUILD, default "build"); "<build>/<rel>" in @out. */
const char *test_build_path(const char *rel, char *out, size_t len);

/*
 * Starts @argv[0] with @argv, stdout and stderr to the given files (NULL =
 * inherit). Returns the pid or -errno.
 */
pid_t test_spawn(char *const argv[], const char *out_path, const char *err_path);

/*
 * Waits up to @timeout_ms for @pid. Returns 0 and the wait status in
 * *@status, or -ETIMEDOUT (the child is then killed with SIGKILL and reaped).
 */
int test_wait(pid_t pid, int *status, int timeout_ms);
/* SIGKILLs *@pid when it is > 0, reaps it and sets *@pid to 0. */
void test_kill(pid_t *pid);

/* Runs @argv to completion (up to @timeout_ms), capturing stdout and stderr. Exit code or -errno.
 */
int test_run(char *const argv[], struct strbuf *out, struct strbuf *err, int timeout_ms);

struct test_http_response {
	int status;
	char content_type[128];
	struct strbuf body;
	char content_encoding[32]; /* "" when none */
};
/*
 * GET (or another @method) http://127.0.0.1:@port@path with "Connection:
 * close". Returns 0 with the response filled in (release its body), or -errno.
 */
int test_http(int port, const char *method, const char *path, struct test_http_response *r,
	      int timeout_ms);
/* test_http() with @headers ("Name: value\r\n" lines, or NULL) added to the request. */
int test_http_with(int port, const char *method, const char *path, const char *headers,
		   struct test_http_response *r, int timeout_ms);
/* Sends @raw bytes as they are and reads the reply into @out. 0 or -errno. */
int test_http_raw(int port, const void *raw, size_t len, struct strbuf *out, int timeout_ms);
/* A new directory /tmp/bpfprof-@prefix-XXXXXX (asserts on failure); free with test_rm_tree(). */
char *test_tmp_dir(const char *prefix);
/* Removes @dir and everything under it, and frees the string. */
void test_rm_tree(char *dir);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int test_free_port(void);

/* One parsed folded line: frames[0] is the comm. */
struct test_folded_line {
	char **frames;
	size_t nframes;
	unsigned long long count;
};
/* Parses folded text. Returns the number of lines or -EINVAL on a malformed line. */
long test_folded_parse(const char *text, struct test_folded_line **out);
void test_folded_free(struct test_folded_line *l, long n);

/*
 * Whether the root, privileges and kernel support for BPF are there. When
 * they are not: outside CI the test is skipped with a loud message; in CI
 * (CI=true) it fails, because there a missing capability is a defect.
 */
void test_require_bpf(void);

#endif
