/* C test suite for libfindity, run against the Findity emulator.
 * Build and run: make test-c (or see .ci/run). Prints "N passed, M failed".
 * Windows (mingw, run under Wine by scripts/windows/test.sh): the emulators run on the host,
 * started through FINDITY_EMULATOR_LAUNCHER (see emu.h); the tests that need fork() or capture
 * fd 2 with dup2 are Unix-only and listed as skipped. */
#include "emu.h"
#include "findity.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define CLIENT "demo-client"
#define SECRET "demo-secret-0123456789"
#define TOKEN_MAX 4096

static int passed, failed, relaxed;
static const char *current;
/* Under valgrind (FINDITY_TEST_NO_TIMING=1) every test still runs; only checks of how fast
 * something happened (TCHECK) are reported instead of asserted, since valgrind is ~20x slower.
 * Checks of what happened, and lower bounds on waits, stay CHECKs. */
static int no_timing;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (cond) {                                                       \
            passed++;                                                     \
        } else {                                                          \
            failed++;                                                     \
            fprintf(stderr, "FAIL %s (%s:%d): %s: ", current, __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fprintf(stderr, "\n");                                        \
        }                                                                 \
    } while (0)

#define TCHECK(cond, ...)                                                 \
    do {                                                                  \
        if (no_timing) {                                                  \
            relaxed++;                                                    \
            printf("     relaxed under valgrind: %s: %s\n", current, #cond); \
        } else {                                                          \
            CHECK(cond, __VA_ARGS__);                                     \
        }                                                                 \
    } while (0)

#ifdef _WIN32
/* Unix-only tests are NULL in the table on Windows (and their code is not compiled). */
#define UNIX_ONLY(fn) NULL
#else
#define UNIX_ONLY(fn) fn
#endif

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Sleep until now_ms() reaches `t` (measured from a token's request, not from when a slow
 * earlier call happened to return). */
static void sleep_until(double t) {
    double left = t - now_ms();
    if (left > 0) usleep((useconds_t)(left * 1000));
}

static const char *last_error(void) {
    static __thread char msg[2048];
    size_t len = 0;
    if (findity_last_error(msg, sizeof msg, &len) != FINDITY_OK) snprintf(msg, sizeof msg, "(unreadable)");
    return msg;
}

static uint32_t org(const emu_t *e, char *tok) {
    size_t len = 0;
    return findity_get_token(e->url, CLIENT, SECRET, tok, TOKEN_MAX, &len);
}

static uint32_t user(const emu_t *e, const char *uid, char *tok) {
    size_t len = 0;
    return findity_user_token(e->url, CLIENT, SECRET, uid, tok, TOKEN_MAX, &len);
}

static void start(emu_t *e, const char *extra1, const char *extra2) {
    int rc = extra1 ? emu_start(e, "--client", CLIENT ":" SECRET, "--unknown-users", "unknown-person",
                                extra1, extra2, NULL)
                    : emu_start(e, "--client", CLIENT ":" SECRET, "--unknown-users", "unknown-person", NULL);
    if (rc != 0) {
        fprintf(stderr, "cannot start the emulator (set FINDITY_EMULATOR)\n");
        exit(2);
    }
}

/* ---------------------------------------------------------------- tests */

static void test_version(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", FINDITY_VERSION_MAJOR, FINDITY_VERSION_MINOR, FINDITY_VERSION_PATCH);
    CHECK(strcmp(findity_version(), want) == 0, "version %s, header %s", findity_version(), want);
}

static void test_org_token_and_cache(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char a[TOKEN_MAX], b[TOKEN_MAX];
    size_t len = 0;
    memset(a, 'x', sizeof a);
    CHECK(findity_get_token(e.url, CLIENT, SECRET, a, sizeof a, &len) == FINDITY_OK, "%s", last_error());
    CHECK(len == strlen(a) && len >= 32, "len %zu strlen %zu", len, strlen(a));
    CHECK(a[len] == 0, "NUL-terminated");
    CHECK(org(&e, b) == FINDITY_OK && strcmp(a, b) == 0, "second call returns the cached token");
    CHECK(emu_stat(&e, "client_credentials") == 1, "one request, got %ld", emu_stat(&e, "client_credentials"));
    /* Same key spelled differently: trailing slash, upper-case host. */
    char alt[300];
    snprintf(alt, sizeof alt, "HTTP://LOCALHOST:%d/", e.port);
    CHECK(findity_get_token(alt, CLIENT, SECRET, b, sizeof b, NULL) == FINDITY_OK, "%s", last_error());
    CHECK(emu_stat(&e, "client_credentials") == 2, "localhost is another host than 127.0.0.1");
    snprintf(alt, sizeof alt, "%s/", e.url);
    CHECK(findity_get_token(alt, CLIENT, SECRET, b, sizeof b, NULL) == FINDITY_OK && strcmp(a, b) == 0,
          "trailing slash is the same key");
    CHECK(emu_stat(&e, "client_credentials") == 2, "no request for the same normalised key");
    emu_stop(&e);
}

static void test_expires_in(void) {
    emu_t e;
    start(&e, "--lifetime", "600");
    char t[TOKEN_MAX];
    uint64_t secs = 0;
    secs = 99;
    CHECK(findity_token_expires_in(e.url, CLIENT, NULL, &secs) == FINDITY_OK && secs == 0, "nothing cached yet");
    CHECK(org(&e, t) == FINDITY_OK && user(&e, "exp-user", t) == FINDITY_OK, "%s", last_error());
    CHECK(findity_token_expires_in(e.url, CLIENT, NULL, &secs) == FINDITY_OK && secs > 590 && secs <= 600, "org %llu",
          (unsigned long long)secs);
    CHECK(findity_token_expires_in(e.url, CLIENT, "exp-user", &secs) == FINDITY_OK && secs > 590, "user %llu",
          (unsigned long long)secs);
    CHECK(findity_token_expires_in(e.url, CLIENT, NULL, NULL) == FINDITY_ERR_INVALID_ARGUMENT, "NULL out");
    CHECK(findity_token_expires_in(NULL, CLIENT, NULL, &secs) == FINDITY_ERR_INVALID_ARGUMENT, "NULL base");
    emu_stop(&e);
}

/* findity_cached_token never sends or waits: a token only when get_token would hand one out at
 * once, FINDITY_ERR_NOT_CACHED otherwise (nothing cached, other secret, inside the margin). */
static void test_cached_token(void) {
    emu_t e;
    start(&e, "--lifetime", "2");
    char t[TOKEN_MAX], c[TOKEN_MAX];
    size_t len = 0;
    CHECK(findity_cached_token(e.url, CLIENT, SECRET, NULL, c, sizeof c, &len) == FINDITY_ERR_NOT_CACHED, "cold");
    CHECK(strstr(last_error(), "without a request") != NULL, "%s", last_error());
    CHECK(emu_stat(&e, "token_requests") == 0, "asking sent nothing");
    double t_org = now_ms();
    CHECK(org(&e, t) == FINDITY_OK && user(&e, "cached-user", t) == FINDITY_OK, "%s", last_error());
    CHECK(findity_cached_token(e.url, CLIENT, SECRET, NULL, c, sizeof c, &len) == FINDITY_OK && len == strlen(c),
          "cached org token");
    CHECK(findity_cached_token(e.url, CLIENT, SECRET, "cached-user", c, sizeof c, &len) == FINDITY_OK &&
              strcmp(c, t) == 0, "cached user token");
    CHECK(findity_cached_token(e.url, CLIENT, "other-secret-1234", NULL, c, sizeof c, &len) == FINDITY_ERR_NOT_CACHED,
          "another secret is not served");
    CHECK(findity_cached_token(e.url, CLIENT, SECRET, "nobody-yet", c, sizeof c, &len) == FINDITY_ERR_NOT_CACHED,
          "another user");
    CHECK(findity_cached_token(e.url, CLIENT, SECRET, NULL, NULL, 0, &len) == FINDITY_ERR_BUFFER_TOO_SMALL && len > 0,
          "size query");
    CHECK(findity_cached_token(NULL, CLIENT, SECRET, NULL, c, sizeof c, &len) == FINDITY_ERR_INVALID_ARGUMENT, "NULL");
    long before = emu_stat(&e, "token_requests");
    CHECK(before == 2, "cached calls sent nothing (client credentials and one code): %ld", before);
    /* Renewal now hangs. In the refresh window the token is still handed out (and renewal starts
     * in the background); inside the hard margin it is not, and the answer comes at once. */
    emu_ctl(&e, "/_emulator/fault?kind=hang&count=0");
    sleep_until(t_org + 1150);
    uint32_t stale = findity_cached_token(e.url, CLIENT, SECRET, NULL, c, sizeof c, &len);
    if (now_ms() < t_org + 1450) CHECK(stale == FINDITY_OK, "stale: still served");
    else TCHECK(stale == FINDITY_OK, "stale: still served (checked too late)");
    sleep_until(t_org + 1650);
    double t0 = now_ms();
    CHECK(findity_cached_token(e.url, CLIENT, SECRET, NULL, c, sizeof c, &len) == FINDITY_ERR_NOT_CACHED,
          "inside the margin: not served");
    TCHECK(now_ms() - t0 < 100, "and no waiting (%.0f ms)", now_ms() - t0);
    emu_ctl(&e, "/_emulator/fault/clear");
    emu_stop(&e);
}

static void test_buffer_too_small(void) {
    emu_t e;
    start(&e, NULL, NULL);
    size_t len = 0;
    CHECK(findity_get_token(e.url, CLIENT, SECRET, NULL, 0, &len) == FINDITY_ERR_BUFFER_TOO_SMALL, "size query");
    CHECK(len >= 32, "needed length reported: %zu", len);
    char *exact = malloc(len);
    size_t len2 = 0;
    CHECK(findity_get_token(e.url, CLIENT, SECRET, exact, len, &len2) == FINDITY_ERR_BUFFER_TOO_SMALL,
          "no room for the NUL");
    CHECK(len2 == len, "same length");
    char *big = malloc(len + 1);
    CHECK(findity_get_token(e.url, CLIENT, SECRET, big, len + 1, &len2) == FINDITY_OK, "%s", last_error());
    CHECK(strlen(big) == len, "exact fit");
    CHECK(emu_stat(&e, "token_requests") == 1, "retry with a big buffer sent no request");
    CHECK(findity_get_token(e.url, CLIENT, SECRET, NULL, 5, &len2) == FINDITY_ERR_INVALID_ARGUMENT,
          "NULL buf with a length");
    free(exact);
    free(big);
    emu_stop(&e);
}

static void test_invalid_arguments(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char t[TOKEN_MAX];
    size_t len = 0;
    const char bad_utf8[] = {'a', (char)0xff, 'b', 0};
    CHECK(findity_get_token(NULL, CLIENT, SECRET, t, sizeof t, &len) == FINDITY_ERR_INVALID_ARGUMENT, "NULL base");
    CHECK(strstr(last_error(), "base_url is NULL") != NULL, "%s", last_error());
    CHECK(findity_last_http_status() == 0, "no HTTP status");
    CHECK(findity_get_token(e.url, NULL, SECRET, t, sizeof t, &len) == FINDITY_ERR_INVALID_ARGUMENT, "NULL id");
    CHECK(findity_get_token(e.url, CLIENT, NULL, t, sizeof t, &len) == FINDITY_ERR_INVALID_ARGUMENT, "NULL secret");
    CHECK(findity_get_token(e.url, "", SECRET, t, sizeof t, &len) == FINDITY_ERR_INVALID_ARGUMENT, "empty id");
    CHECK(findity_get_token(e.url, bad_utf8, SECRET, t, sizeof t, &len) == FINDITY_ERR_INVALID_ARGUMENT, "utf8");
    CHECK(strstr(last_error(), "UTF-8") != NULL, "%s", last_error());
    CHECK(findity_user_token(e.url, CLIENT, SECRET, NULL, t, sizeof t, &len) == FINDITY_ERR_INVALID_ARGUMENT, "NULL user");
    CHECK(findity_user_token(e.url, CLIENT, SECRET, "", t, sizeof t, &len) == FINDITY_ERR_INVALID_ARGUMENT, "empty user");
    CHECK(findity_get_token("http://expense.findity.com", CLIENT, SECRET, t, sizeof t, &len) ==
              FINDITY_ERR_INVALID_ARGUMENT, "http to a non-loopback host");
    CHECK(strstr(last_error(), "not loopback") != NULL, "%s", last_error());
    CHECK(findity_get_token("ftp://127.0.0.1", CLIENT, SECRET, t, sizeof t, &len) == FINDITY_ERR_INVALID_ARGUMENT, "ftp");
    CHECK(findity_get_token("https://u:pw@h", CLIENT, SECRET, t, sizeof t, &len) == FINDITY_ERR_INVALID_ARGUMENT, "userinfo");
    CHECK(findity_get_token("", CLIENT, SECRET, t, sizeof t, &len) == FINDITY_ERR_INVALID_ARGUMENT, "empty base");
    CHECK(findity_invalidate(NULL, CLIENT, NULL) == FINDITY_ERR_INVALID_ARGUMENT, "invalidate NULL");
    CHECK(findity_invalidate("production", CLIENT, NULL) == FINDITY_OK, "production is a known name");
    CHECK(findity_invalidate("stage", CLIENT, "u1") == FINDITY_OK, "stage is a known name");
    CHECK(findity_set_option(NULL, "1") == FINDITY_ERR_INVALID_ARGUMENT, "NULL name");
    CHECK(findity_set_option("timeout_ms", NULL) == FINDITY_ERR_INVALID_ARGUMENT, "NULL value");
    CHECK(findity_set_option("nope", "1") == FINDITY_ERR_INVALID_ARGUMENT, "unknown option");
    CHECK(findity_set_option("timeout_ms", "abc") == FINDITY_ERR_INVALID_ARGUMENT, "bad number");
    CHECK(findity_set_option("ca_file", "/nonexistent.pem") == FINDITY_ERR_INVALID_ARGUMENT, "missing ca");
    CHECK(findity_set_option("proxy", "::nope") == FINDITY_ERR_INVALID_ARGUMENT, "bad proxy");
    CHECK(findity_set_option("user_agent", "ok-agent/1") == FINDITY_OK, "%s", last_error());
    CHECK(findity_set_option("user_agent", "") == FINDITY_OK, "reset");
    CHECK(emu_stat(&e, "token_requests") == 0, "bad input sent nothing");
    emu_stop(&e);
}

static void test_last_error_buffer(void) {
    char t[8];
    size_t len = 0;
    findity_get_token(NULL, CLIENT, SECRET, t, sizeof t, &len);
    size_t need = 0;
    CHECK(findity_last_error(NULL, 0, &need) == FINDITY_ERR_BUFFER_TOO_SMALL && need > 5, "size query %zu", need);
    char small[4];
    CHECK(findity_last_error(small, sizeof small, &need) == FINDITY_ERR_BUFFER_TOO_SMALL, "small");
    CHECK(findity_last_error(NULL, 3, &need) == FINDITY_ERR_INVALID_ARGUMENT, "NULL with length");
    CHECK(strstr(last_error(), "base_url is NULL") != NULL, "reading it did not change it: %s", last_error());
}

static void test_auth_error(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char t[TOKEN_MAX];
    size_t len = 0;
    const char *wrong = "wrong-secret-value-987";
    CHECK(findity_get_token(e.url, CLIENT, wrong, t, sizeof t, &len) == FINDITY_ERR_AUTH, "%s", last_error());
    CHECK(findity_last_http_status() == 401, "status %u", findity_last_http_status());
    CHECK(strstr(last_error(), "invalid_client") != NULL, "%s", last_error());
    CHECK(strstr(last_error(), "/api/oauth/token") != NULL, "names the endpoint: %s", last_error());
    CHECK(strstr(last_error(), wrong) == NULL, "secret not in message");
    CHECK(emu_stat(&e, "client_credentials") == 1, "a refusal is not retried");
    /* A right secret afterwards works: nothing poisoned. */
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error());
    /* A wrong secret never gets the cached token. */
    CHECK(findity_get_token(e.url, CLIENT, wrong, t, sizeof t, &len) == FINDITY_ERR_AUTH, "cached token withheld");
    CHECK(org(&e, t) == FINDITY_OK, "right secret still served");
    emu_stop(&e);
}

static void test_user_token(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char u1[TOKEN_MAX], u1b[TOKEN_MAX], u2[TOKEN_MAX], o[TOKEN_MAX];
    CHECK(user(&e, "8ab28c3e6f8023c3016f8046be110002", u1) == FINDITY_OK, "%s", last_error());
    CHECK(user(&e, "8ab28c3e6f8023c3016f8046be110002", u1b) == FINDITY_OK && strcmp(u1, u1b) == 0, "cached");
    CHECK(user(&e, "erp-employee-42", u2) == FINDITY_OK && strcmp(u1, u2) != 0, "another user, another token");
    CHECK(org(&e, o) == FINDITY_OK && strcmp(o, u1) != 0, "org token differs");
    CHECK(emu_stat(&e, "client_credentials") == 1, "one org token for both users and the org call");
    CHECK(emu_stat(&e, "authorization_grant") == 2, "grants %ld", emu_stat(&e, "authorization_grant"));
    CHECK(emu_stat(&e, "authorization_code") == 2, "codes %ld", emu_stat(&e, "authorization_code"));
    CHECK(user(&e, "unknown-person", u2) == FINDITY_ERR_AUTH, "unknown user");
    CHECK(strstr(last_error(), "USER_NOT_FOUND") != NULL && strstr(last_error(), "user_id") != NULL, "%s", last_error());
    CHECK(findity_last_http_status() == 400, "status %u", findity_last_http_status());
    CHECK(emu_stat(&e, "code_reuse") == 0, "no code used twice");
    emu_stop(&e);
}

static void test_invalidate_uses_refresh_token_once(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char a[TOKEN_MAX], b[TOKEN_MAX], c[TOKEN_MAX];
    CHECK(org(&e, a) == FINDITY_OK, "%s", last_error());
    CHECK(findity_invalidate(e.url, CLIENT, NULL) == FINDITY_OK, "invalidate");
    CHECK(org(&e, b) == FINDITY_OK && strcmp(a, b) != 0, "new token after invalidate");
    CHECK(emu_stat(&e, "refresh_token") == 1 && emu_stat(&e, "client_credentials") == 1, "renewed with the refresh token");
    CHECK(findity_invalidate(e.url, CLIENT, NULL) == FINDITY_OK, "invalidate again");
    CHECK(org(&e, c) == FINDITY_OK && strcmp(c, b) != 0, "%s", last_error());
    CHECK(emu_stat(&e, "refresh_token") == 2 && emu_stat(&e, "refresh_reuse") == 0, "each refresh token once");
    /* User tokens likewise. */
    CHECK(user(&e, "u-1", a) == FINDITY_OK, "%s", last_error());
    CHECK(findity_invalidate(e.url, CLIENT, "u-1") == FINDITY_OK, "invalidate user");
    CHECK(user(&e, "u-1", b) == FINDITY_OK && strcmp(a, b) != 0, "%s", last_error());
    CHECK(emu_stat(&e, "refresh_token") == 3 && emu_stat(&e, "authorization_grant") == 1, "user renewed by refresh");
    emu_stop(&e);
}

static void test_refused_refresh_falls_back(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char a[TOKEN_MAX], b[TOKEN_MAX];
    CHECK(org(&e, a) == FINDITY_OK && user(&e, "u-2", a) == FINDITY_OK, "%s", last_error());
    CHECK(emu_ctl(&e, "/_emulator/revoke?what=refresh") == 200, "revoke");
    findity_invalidate(e.url, CLIENT, NULL);
    findity_invalidate(e.url, CLIENT, "u-2");
    CHECK(org(&e, b) == FINDITY_OK, "org falls back: %s", last_error());
    CHECK(emu_stat(&e, "client_credentials") == 2, "client credentials again");
    CHECK(user(&e, "u-2", b) == FINDITY_OK, "user falls back: %s", last_error());
    CHECK(emu_stat(&e, "authorization_grant") == 2, "authorization grant again");
    CHECK(emu_stat(&e, "refresh_reuse") == 0, "no reuse");
    /* A refresh with unknown outcome (connection cut after sending) is not replayed. */
    findity_invalidate(e.url, CLIENT, NULL);
    CHECK(emu_ctl(&e, "/_emulator/fault?kind=reset&grant=refresh_token") == 200, "fault");
    CHECK(org(&e, b) == FINDITY_OK, "%s", last_error());
    CHECK(emu_stat(&e, "refresh_reuse") == 0 && emu_stat(&e, "client_credentials") == 3, "fallback, no replay");
    emu_stop(&e);
}

static void test_no_refresh_token_in_answer(void) {
    emu_t e;
    start(&e, "--no-refresh-token", "--quiet");
    char a[TOKEN_MAX], b[TOKEN_MAX];
    CHECK(org(&e, a) == FINDITY_OK, "%s", last_error());
    findity_invalidate(e.url, CLIENT, NULL);
    CHECK(org(&e, b) == FINDITY_OK && strcmp(a, b) != 0, "%s", last_error());
    CHECK(emu_stat(&e, "client_credentials") == 2 && emu_stat(&e, "refresh_token") == 0, "client credentials again");
    emu_stop(&e);
}

/* ---- single flight */

typedef struct {
    const emu_t *e;
    const char *uid;
    char tok[TOKEN_MAX];
    uint32_t rc;
    double ms;
} call_t;

static void *call_thread(void *p) {
    call_t *c = p;
    double t0 = now_ms();
    c->rc = c->uid ? user(c->e, c->uid, c->tok) : org(c->e, c->tok);
    c->ms = now_ms() - t0;
    return NULL;
}

static void run_threads(call_t *calls, int n) {
    pthread_t th[64];
    for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, call_thread, &calls[i]);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
}

static void test_single_flight(void) {
    emu_t e;
    start(&e, "--latency-ms", "300");
    enum { N = 32 };
    static call_t calls[N];
    for (int i = 0; i < N; i++) calls[i] = (call_t){.e = &e};
    run_threads(calls, N);
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= calls[i].rc == FINDITY_OK && strcmp(calls[i].tok, calls[0].tok) == 0;
    CHECK(ok, "all %d threads got the same token", N);
    CHECK(emu_stat(&e, "client_credentials") == 1, "one request for %d threads, got %ld", N, emu_stat(&e, "client_credentials"));
    CHECK(emu_stat(&e, "max_concurrent") == 1, "never two requests at once");
    /* Users: 16 threads, 2 users, cold: one grant and one code per user, org token shared. */
    for (int i = 0; i < 16; i++) calls[i] = (call_t){.e = &e, .uid = (i % 2) ? "alice" : "bob"};
    run_threads(calls, 16);
    ok = 1;
    for (int i = 0; i < 16; i++) ok &= calls[i].rc == FINDITY_OK && strcmp(calls[i].tok, calls[i % 2].tok) == 0;
    CHECK(ok, "each user's threads share one token");
    CHECK(emu_stat(&e, "authorization_grant") == 2 && emu_stat(&e, "authorization_code") == 2,
          "one grant per user: %ld", emu_stat(&e, "authorization_grant"));
    CHECK(emu_stat(&e, "client_credentials") == 1, "org token reused");
    emu_stop(&e);
}

/* A failing flight's error is shared by its waiters: one request for many callers. */
static void test_single_flight_shares_errors(void) {
    emu_t e;
    start(&e, "--latency-ms", "300");
    emu_ctl(&e, "/_emulator/fault?kind=status:401");
    enum { N = 8 };
    static call_t calls[N];
    for (int i = 0; i < N; i++) calls[i] = (call_t){.e = &e};
    run_threads(calls, N);
    int all_auth = 1;
    for (int i = 0; i < N; i++) all_auth &= calls[i].rc == FINDITY_ERR_AUTH;
    CHECK(all_auth, "every waiter got the refusal");
    CHECK(emu_stat(&e, "client_credentials") == 1, "one request, got %ld", emu_stat(&e, "client_credentials"));
    emu_stop(&e);
}

/* ---- expiry */

/* Ask for the organization token every 20 ms for `ms`: counts the distinct tokens seen, the
 * errors, and the calls that break the hard margin. The library dates a token from before its
 * request was sent; the emulator holds every request `latency_ms`, so a token whose first
 * sighting returned at A was issued at A - latency_ms or earlier. A call that starts more than
 * `usable_ms` (lifetime minus hard margin) after that and is served the token broke the margin.
 * This bites for every token, the first and each one renewed in the background, and never
 * gives a false alarm on a slow machine (a slow call only makes the estimate later). */
typedef struct {
    int tokens, late, errors;
} rotation_t;

static rotation_t watch_rotation(const emu_t *e, double ms, double latency_ms, double usable_ms) {
    rotation_t r = {0, 0, 0};
    char cur[TOKEN_MAX] = "", t[TOKEN_MAX];
    double issued_by = 0, t0 = now_ms();
    while (now_ms() - t0 < ms) {
        double before = now_ms();
        uint32_t rc = org(e, t);
        double after = now_ms();
        if (rc != FINDITY_OK) {
            r.errors++;
        } else if (strcmp(t, cur) != 0) {
            strcpy(cur, t);
            issued_by = after - latency_ms;
            r.tokens++;
        } else if (before - issued_by > usable_ms + 20) {
            r.late++;
        }
        usleep(20000);
    }
    return r;
}

/* 2 s tokens: margin 0.5 s, background refresh from 1 s left; each request takes 0.9 s, so every
 * renewal lands only after its old token entered the margin (at 1.5 s): for 5 s, no token is
 * served with less than the margin left, the server sees no refresh token twice, and about one
 * request per renewal is made. */
static void test_short_tokens_rotate_in_background(void) {
    emu_t e;
    start(&e, "--latency-ms", "900");
    emu_ctl(&e, "/_emulator/config?lifetime=2");
    rotation_t r = watch_rotation(&e, 5000, 900, 1500);
    CHECK(r.errors == 0, "%d errors", r.errors);
    CHECK(r.late == 0, "%d calls got a token inside the hard margin", r.late);
    CHECK(r.tokens >= 2, "%d tokens in 5 s of 2 s tokens", r.tokens);
    TCHECK(r.tokens >= 3 && r.tokens <= 7, "%d tokens in 5 s of 2 s tokens", r.tokens);
    CHECK(emu_stat(&e, "refresh_token") >= 2, "renewed with refresh tokens: %ld", emu_stat(&e, "refresh_token"));
    CHECK(emu_stat(&e, "refresh_reuse") == 0, "no refresh token used twice");
    CHECK(emu_stat(&e, "client_credentials") == 1, "client credentials only once");
    emu_stop(&e);
}

/* A slow background refresh (1.5 s, 4 s tokens: margin 1 s, window 2 s) is still running when the
 * old token enters its hard margin: from then on callers wait for the refresh rather than get
 * a token with less than the margin left. */
static void test_hard_margin_with_slow_refresh(void) {
    emu_t e;
    start(&e, "--latency-ms", "1500");
    emu_ctl(&e, "/_emulator/config?lifetime=4");
    rotation_t r = watch_rotation(&e, 6500, 1500, 3000);
    CHECK(r.errors == 0, "%d errors", r.errors);
    CHECK(r.late == 0, "%d calls got a token inside the 1 s hard margin", r.late);
    CHECK(r.tokens >= 2, "%d tokens", r.tokens);
    CHECK(emu_stat(&e, "max_concurrent") == 1, "one request at a time");
    emu_stop(&e);
}

/* With 500 ms endpoint latency and 4 s tokens, only the first (cold) call waits on the network. */
static void test_no_caller_waits_for_refresh(void) {
    emu_t e;
    start(&e, "--latency-ms", "500");
    emu_ctl(&e, "/_emulator/config?lifetime=4");
    enum { N = 4 };
    static call_t calls[N];
    char t[TOKEN_MAX];
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error());
    double t0 = now_ms();
    int slow = 0, errors = 0, rounds = 0;
    while (now_ms() - t0 < 9000) {
        for (int i = 0; i < N; i++) calls[i] = (call_t){.e = &e};
        run_threads(calls, N);
        for (int i = 0; i < N; i++) {
            errors += calls[i].rc != FINDITY_OK;
            slow += calls[i].ms >= 400;
        }
        rounds++;
        usleep(50000);
    }
    CHECK(errors == 0, "%d errors", errors);
    TCHECK(slow == 0, "%d of %d calls waited on the network", slow, rounds * N);
    CHECK(emu_stat(&e, "refresh_token") >= 2, "background refreshes happened: %ld", emu_stat(&e, "refresh_token"));
    emu_stop(&e);
}

/* ---- retries, timeouts, hostile answers */

static void test_retries(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char t[TOKEN_MAX];
    emu_ctl(&e, "/_emulator/fault?kind=status:503&count=2");
    CHECK(org(&e, t) == FINDITY_OK, "503 twice then OK: %s", last_error());
    CHECK(emu_stat(&e, "client_credentials") == 3, "three attempts, got %ld", emu_stat(&e, "client_credentials"));
    findity_clear_cache();
    emu_ctl(&e, "/_emulator/fault?kind=429&retry_after=1");
    double t0 = now_ms();
    CHECK(org(&e, t) == FINDITY_OK, "429 then OK: %s", last_error());
    CHECK(now_ms() - t0 >= 950, "Retry-After honoured (%.0f ms)", now_ms() - t0);
    findity_clear_cache();
    emu_ctl(&e, "/_emulator/fault?endpoint=grant&kind=status:502");
    CHECK(user(&e, "u-3", t) == FINDITY_OK, "authorization grant retried: %s", last_error());
    CHECK(emu_stat(&e, "authorization_grant") == 2, "grants %ld", emu_stat(&e, "authorization_grant"));
    /* A failed code exchange is retried with a new code, never replayed. */
    findity_clear_cache();
    emu_ctl(&e, "/_emulator/fault?kind=status:500&grant=authorization_code");
    CHECK(user(&e, "u-4", t) == FINDITY_OK, "%s", last_error());
    CHECK(emu_stat(&e, "code_reuse") == 0, "no code reused");
    emu_stop(&e);
}

static void test_timeout_and_recovery(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char t[TOKEN_MAX];
    CHECK(findity_set_option("timeout_ms", "1000") == FINDITY_OK, "%s", last_error());
    emu_ctl(&e, "/_emulator/fault?kind=hang&count=0");
    double t0 = now_ms();
    CHECK(org(&e, t) == FINDITY_ERR_NETWORK, "hang → network error: %s", last_error());
    double took = now_ms() - t0;
    TCHECK(took < 2000, "returned within timeout_ms + 1 s (%.0f ms)", took);
    CHECK(strstr(last_error(), "timeout_ms") != NULL, "%s", last_error());
    emu_ctl(&e, "/_emulator/fault/clear");
    CHECK(findity_set_option("timeout_ms", "") == FINDITY_OK, "reset");
    CHECK(org(&e, t) == FINDITY_OK, "next call not poisoned: %s", last_error());
    emu_stop(&e);
    /* Connection refused: the emulator is gone. */
    CHECK(findity_set_option("timeout_ms", "800") == FINDITY_OK, "set");
    t0 = now_ms();
    CHECK(findity_get_token(e.url, "other-client", SECRET, t, sizeof t, NULL) == FINDITY_ERR_NETWORK, "refused");
    TCHECK(now_ms() - t0 < 1800, "retries stay inside timeout_ms");
    CHECK(strstr(last_error(), "connect") != NULL, "%s", last_error());
    findity_set_option("timeout_ms", "");
}

/* A port nothing listens on fails within 5 s with the default timeout_ms (30 s), naming host
 * and port: a few quick retries (refused_ms), not the whole timeout. */
static void test_refused_port(void) {
    CHECK(findity_set_option("timeout_ms", "") == FINDITY_OK, "default timeout_ms");
    emu_net_init();
    emu_sock s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    CHECK(s != EMU_BAD_SOCK && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(s, (struct sockaddr *)&a, &alen) == 0,
          "a free port");
    closesock(s); /* bound, then closed: nothing listens there */
    char url[64], where[64], t[TOKEN_MAX];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    snprintf(where, sizeof where, "nothing listens at 127.0.0.1:%d (connection refused", ntohs(a.sin_port));
    for (int as_user = 0; as_user < 2; as_user++) {
        size_t len = 0;
        double t0 = now_ms();
        uint32_t rc = as_user ? findity_user_token(url, CLIENT, SECRET, "someone", t, sizeof t, &len)
                              : findity_get_token(url, CLIENT, SECRET, t, sizeof t, &len);
        double took = now_ms() - t0;
        CHECK(rc == FINDITY_ERR_NETWORK, "refused: %u %s", rc, last_error());
        TCHECK(took < 5000, "within 5 s, not timeout_ms (%.0f ms): %s", took, last_error());
        CHECK(strstr(last_error(), where) != NULL, "host and port named: %s", last_error());
    }
}

static void test_hostile_answers(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char t[TOKEN_MAX];
    struct {
        const char *fault;
        uint32_t want;
        const char *in_message;
    } cases[] = {
        {"kind=redirect", FINDITY_ERR_SERVER, "redirect"},
        {"kind=malformed", FINDITY_ERR_SERVER, "not JSON"},
        {"kind=no_access_token", FINDITY_ERR_SERVER, "no access_token"},
        {"kind=huge", FINDITY_ERR_SERVER, "larger than"},
        {"kind=expires_in:-5", FINDITY_ERR_SERVER, "expires_in"},
        {"kind=expires_in:0", FINDITY_ERR_SERVER, "expires_in"},
        {"kind=html&count=10", FINDITY_ERR_SERVER, "HTML"},
        {"kind=invalid_grant", FINDITY_ERR_AUTH, "invalid_grant"},
    };
    findity_set_option("timeout_ms", "3000");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "/_emulator/fault?%s", cases[i].fault);
        emu_ctl(&e, "/_emulator/fault/clear");
        emu_ctl(&e, path);
        findity_clear_cache();
        uint32_t rc = org(&e, t);
        CHECK(rc == cases[i].want, "%s: status %u (%s)", cases[i].fault, rc, last_error());
        CHECK(strstr(last_error(), cases[i].in_message) != NULL, "%s: %s", cases[i].fault, last_error());
    }
    findity_set_option("timeout_ms", "");
    CHECK(emu_stat(&e, "redirect_target_hits") == 0, "redirect not followed");
    emu_ctl(&e, "/_emulator/fault/clear");
    emu_ctl(&e, "/_emulator/fault?kind=expires_in:99999999999");
    CHECK(org(&e, t) == FINDITY_OK, "absurd lifetime capped, token usable: %s", last_error());
    findity_clear_cache();
    emu_ctl(&e, "/_emulator/config?omit_expires_in=1");
    CHECK(org(&e, t) == FINDITY_OK, "missing expires_in: %s", last_error());
    emu_stop(&e);
}

/* A still-valid token keeps being served while the server fails. */
static void test_valid_token_survives_outage(void) {
    emu_t e;
    start(&e, "--lifetime", "3");
    char a[TOKEN_MAX], b[TOKEN_MAX];
    double t_org = now_ms();
    CHECK(org(&e, a) == FINDITY_OK, "%s", last_error());
    emu_ctl(&e, "/_emulator/fault?kind=status:503&count=0");
    sleep_until(t_org + 1700); /* inside the refresh window (1.5 s left), outside the margin (0.75 s) */
    int same = 1;
    for (int i = 0; i < 10; i++) {
        same &= org(&e, b) == FINDITY_OK && strcmp(a, b) == 0;
        usleep(20000);
    }
    CHECK(same, "current token served while renewal fails");
    emu_ctl(&e, "/_emulator/fault/clear");
    usleep(1500 * 1000);
    CHECK(org(&e, b) == FINDITY_OK && strcmp(a, b) != 0, "renewed once healthy: %s", last_error());
    emu_stop(&e);
}

/* ---- TLS */

static void test_tls_with_ca_file(void) {
#ifdef _WIN32
    /* A Windows path; the launcher writes the CA there through its drive mapping. */
    char ca[MAX_PATH + 64], dir[MAX_PATH + 1];
    DWORD n = GetTempPathA(sizeof dir, dir);
    snprintf(ca, sizeof ca, "%sfindity-test-ca-%lu.pem", n ? dir : "C:\\", (unsigned long)GetCurrentProcessId());
#else
    char ca[] = "/tmp/findity-test-ca-XXXXXX";
    int fd = mkstemp(ca);
    close(fd);
#endif
    emu_t e;
    if (emu_start(&e, "--client", CLIENT ":" SECRET, "--tls", "--ca-out", ca, NULL) != 0) {
        CHECK(0, "TLS emulator did not start");
        return;
    }
    CHECK(strncmp(e.url, "https://", 8) == 0, "%s", e.url);
    char t[TOKEN_MAX];
    findity_set_option("timeout_ms", "5000");
    CHECK(org(&e, t) == FINDITY_ERR_NETWORK, "untrusted certificate refused");
    CHECK(strstr(last_error(), "certificate") != NULL && strstr(last_error(), "ca_file") != NULL, "%s", last_error());
    CHECK(findity_set_option("ca_file", ca) == FINDITY_OK, "%s", last_error());
    CHECK(org(&e, t) == FINDITY_OK, "trusted with ca_file: %s", last_error());
    CHECK(user(&e, "tls-user", t) == FINDITY_OK, "user over TLS: %s", last_error());
    findity_set_option("ca_file", "");
    findity_set_option("timeout_ms", "");
    emu_stop(&e);
    unlink(ca);
}

/* ---- fork */
#ifndef _WIN32

/* A forked child's verdict travels through a pipe, not its exit status: under valgrind a child
 * inherits the other threads' allocations without their stacks, which memcheck reports as
 * leaks (exit code 99) whatever the child's own result. */
typedef struct {
    pid_t pid;
    int fd;
} child_t;

static child_t fork_child(void) {
    int p[2];
    if (pipe(p) != 0) return (child_t){-1, -1};
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        return (child_t){0, p[1]};
    }
    close(p[1]);
    return (child_t){pid, p[0]};
}

static void child_exit(child_t c, int ok) {
    char b = ok ? 'y' : 'n';
    (void)!write(c.fd, &b, 1);
    _exit(ok ? 0 : 1);
}

/* 1: the child reported success, 0: failure, -1: it died before reporting (a hang's alarm). */
static int child_wait(child_t c) {
    char b = 0;
    ssize_t n = read(c.fd, &b, 1);
    close(c.fd);
    int status = 0;
    waitpid(c.pid, &status, 0);
    if (n != 1) return -1;
    /* Outside valgrind the exit status must agree (no crash after reporting). */
    if (!no_timing && !(WIFEXITED(status) && WEXITSTATUS(status) == (b == 'y' ? 0 : 1))) return 0;
    return b == 'y';
}

static void *refresh_in_background(void *p) {
    call_t *c = p;
    c->rc = org(c->e, c->tok);
    return NULL;
}

static void test_fork(void) {
    emu_t e;
    start(&e, "--latency-ms", "1000");
    char t[TOKEN_MAX];
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error());
    /* Fork while another thread is inside a token request (holding the entry in flight). */
    findity_clear_cache();
    static call_t bg;
    bg = (call_t){.e = &e};
    pthread_t th;
    pthread_create(&th, NULL, refresh_in_background, &bg);
    usleep(300 * 1000);
    double t0 = now_ms();
    child_t c = fork_child();
    if (c.pid == 0) {
        char ct[TOKEN_MAX];
        uint32_t rc = org(&e, ct);
        uint32_t rc2 = user(&e, "forked-user", ct);
        child_exit(c, rc == FINDITY_OK && rc2 == FINDITY_OK);
    }
    CHECK(child_wait(c) == 1, "child got tokens");
    TCHECK(now_ms() - t0 < 5000, "child done within 5 s (%.0f ms)", now_ms() - t0);
    pthread_join(th, NULL);
    CHECK(bg.rc == FINDITY_OK, "parent's request finished");
    /* A child inherits the parent's valid access token without a request. */
    long before = emu_stat(&e, "client_credentials");
    c = fork_child();
    if (c.pid == 0) {
        char ct[TOKEN_MAX];
        child_exit(c, org(&e, ct) == FINDITY_OK && strcmp(ct, bg.tok) == 0);
    }
    CHECK(child_wait(c) == 1, "child served the inherited token");
    CHECK(emu_stat(&e, "client_credentials") == before, "without a request");
    /* ...but never the parent's refresh token, which the parent will still use: a child that
     * must renew asks for client credentials, and the parent's refresh token stays single use. */
    long refreshes = emu_stat(&e, "refresh_token");
    /* This thread forks holding a snapshot of the token (its last hit): in the child that
     * snapshot belongs to the parent's entry, which the child's invalidate cannot reach. */
    CHECK(org(&e, t) == FINDITY_OK && strcmp(t, bg.tok) == 0, "parent served its token");
    c = fork_child();
    if (c.pid == 0) {
        char ct[TOKEN_MAX];
        int inherited = org(&e, ct) == FINDITY_OK && strcmp(ct, bg.tok) == 0;
        findity_invalidate(e.url, CLIENT, NULL);
        child_exit(c, inherited && org(&e, ct) == FINDITY_OK && strcmp(ct, bg.tok) != 0);
    }
    CHECK(child_wait(c) == 1, "child served the inherited token, then renewed its own after invalidate");
    CHECK(emu_stat(&e, "refresh_token") == refreshes, "child sent no refresh token (%ld, was %ld)",
          emu_stat(&e, "refresh_token"), refreshes);
    CHECK(emu_stat(&e, "client_credentials") == before + 1, "child used client credentials");
    findity_invalidate(e.url, CLIENT, NULL);
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error());
    CHECK(emu_stat(&e, "refresh_token") == refreshes + 1 && emu_stat(&e, "refresh_reuse") == 0,
          "parent renewed with its refresh token, used once");
    emu_stop(&e);
}

/* A child forked while the parent's host is paused (429 with Retry-After) keeps the pause: the
 * workers of a prefork server must not each send into a throttle the server asked for. */
static void test_fork_keeps_throttle_pause(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char t[TOKEN_MAX];
    CHECK(findity_set_option("timeout_ms", "2000") == FINDITY_OK, "%s", last_error());
    emu_ctl(&e, "/_emulator/fault?kind=429&retry_after=30");
    /* The pause (30 s) outlasts the deadline (2 s): SERVER after the one request. */
    CHECK(org(&e, t) == FINDITY_ERR_SERVER, "throttled: %s", last_error());
    long sent = emu_stat(&e, "client_credentials");
    CHECK(sent == 1, "one request before the pause (%ld)", sent);
    child_t c = fork_child();
    if (c.pid == 0) {
        char ct[TOKEN_MAX];
        uint32_t rc = org(&e, ct);
        child_exit(c, rc == FINDITY_ERR_SERVER && strstr(last_error(), "throttl") != NULL);
    }
    CHECK(child_wait(c) == 1, "the child failed at once with SERVER, naming the throttle");
    CHECK(emu_stat(&e, "client_credentials") == sent, "the child sent nothing into the pause (%ld)",
          emu_stat(&e, "client_credentials"));
    findity_set_option("timeout_ms", "");
    emu_stop(&e);
}
#endif /* fork */

/* findity_invalidate_token drops the cached token only if it is still the rejected one: N threads
 * reporting a 401 for the same token cause one renewal, and a 401 for an old token leaves the
 * fresh one alone. */
typedef struct {
    const emu_t *e;
    const char *rejected;
} reject_t;

static void *reject_thread(void *p) {
    reject_t *r = p;
    char t[TOKEN_MAX];
    findity_invalidate_token(r->e->url, CLIENT, NULL, r->rejected);
    org(r->e, t);
    return NULL;
}

static void test_invalidate_token(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char a[TOKEN_MAX], b[TOKEN_MAX], c[TOKEN_MAX];
    CHECK(org(&e, a) == FINDITY_OK, "%s", last_error());
    enum { N = 16 };
    pthread_t th[N];
    reject_t r = {.e = &e, .rejected = a};
    for (int i = 0; i < N; i++) pthread_create(&th[i], NULL, reject_thread, &r);
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    CHECK(org(&e, b) == FINDITY_OK && strcmp(a, b) != 0, "renewed: %s", last_error());
    CHECK(emu_stat(&e, "client_credentials") + emu_stat(&e, "refresh_token") == 2,
          "%d threads with the same 401: one renewal (%ld requests)", N,
          emu_stat(&e, "client_credentials") + emu_stat(&e, "refresh_token"));
    CHECK(findity_invalidate_token(e.url, CLIENT, NULL, a) == FINDITY_OK, "old token: OK");
    CHECK(org(&e, c) == FINDITY_OK && strcmp(b, c) == 0, "an old token's 401 keeps the fresh one");
    CHECK(findity_invalidate_token(e.url, CLIENT, NULL, c) == FINDITY_OK && org(&e, c) == FINDITY_OK &&
              strcmp(b, c) != 0, "the current token's 401 drops it (snapshot included)");
    CHECK(findity_invalidate_token(e.url, CLIENT, NULL, NULL) == FINDITY_ERR_INVALID_ARGUMENT, "NULL token");
    CHECK(findity_invalidate_token(e.url, CLIENT, "nobody", "x") == FINDITY_OK, "nothing cached: OK");
    emu_stop(&e);
}

#ifndef _WIN32
/* Fork under contention: 8 threads hammer the library (contended entry locks, background
 * renewals of 2 s tokens, invalidations) while the main thread forks; every child must get an
 * organization and a user token (inherited or its own) within 5 s, or alarm() ends it with 14.
 * 200 forks; 10 under valgrind, where each child runs under memcheck too. */
static volatile int hammer_stop;

static void *hammer_thread(void *p) {
    const emu_t *e = p;
    char t[TOKEN_MAX], uid[32];
    for (unsigned i = 0; !hammer_stop; i++) {
        snprintf(uid, sizeof uid, "hammer-%u", i % 16);
        if (i % 3 == 0) org(e, t);
        else user(e, uid, t);
        if (i % 97 == 0) findity_invalidate(e->url, CLIENT, uid);
    }
    return NULL;
}

static void test_fork_under_contention(void) {
    emu_t e;
    start(&e, "--lifetime", "2");
    char t[TOKEN_MAX];
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error());
    enum { THREADS = 8 };
    pthread_t th[THREADS];
    hammer_stop = 0;
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, hammer_thread, &e);
    int forks = no_timing ? 10 : 200, ok = 0, hung = 0, other = 0;
    for (int i = 0; i < forks; i++) {
        child_t c = fork_child();
        if (c.pid == 0) {
            signal(SIGALRM, SIG_DFL);
            alarm(no_timing ? 60 : 5);
            char ct[TOKEN_MAX];
            child_exit(c, org(&e, ct) == FINDITY_OK && user(&e, "forked-contended", ct) == FINDITY_OK);
        }
        int r = child_wait(c);
        if (r == 1) ok++;
        else if (r < 0) hung++;
        else other++;
        usleep(2000);
    }
    hammer_stop = 1;
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    CHECK(hung == 0, "%d of %d children hung (no token within %d s)", hung, forks, no_timing ? 60 : 5);
    CHECK(ok == forks, "%d of %d children got tokens (%d failed)", ok, forks, other);
    CHECK(emu_stat(&e, "refresh_reuse") == 0, "no refresh token used twice across %d processes", forks);
    emu_stop(&e);
}

#endif /* fork */

static void test_clear_cache(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char a[TOKEN_MAX], b[TOKEN_MAX];
    CHECK(org(&e, a) == FINDITY_OK && user(&e, "u-9", a) == FINDITY_OK, "%s", last_error());
    findity_clear_cache();
    CHECK(org(&e, b) == FINDITY_OK, "%s", last_error());
    CHECK(emu_stat(&e, "client_credentials") == 2, "cleared: new request");
    CHECK(user(&e, "u-9", b) == FINDITY_OK && emu_stat(&e, "authorization_grant") == 2, "user cleared too");
    emu_stop(&e);
}

/* ---- stats and logging */

static void test_stats(void) {
    emu_t e;
    start(&e, "--lifetime", "2");
    FindityStats s0, s1;
    char t[TOKEN_MAX];
    CHECK(findity_stats(NULL, sizeof s0) == FINDITY_ERR_INVALID_ARGUMENT, "NULL out");
    CHECK(findity_stats(&s0, 3) == FINDITY_ERR_INVALID_ARGUMENT, "odd size");
    CHECK(findity_stats(&s0, sizeof s0) == FINDITY_OK, "stats");
    /* An older caller's shorter struct gets the fields it knows, nothing past them. */
    uint64_t older[3] = {0, 0, 0xdeadbeef};
    CHECK(findity_stats((FindityStats *)older, 2 * sizeof(uint64_t)) == FINDITY_OK && older[2] == 0xdeadbeef,
          "prefix only");
    CHECK(org(&e, t) == FINDITY_OK && org(&e, t) == FINDITY_OK && org(&e, t) == FINDITY_OK, "%s", last_error());
    CHECK(user(&e, "stats-user", t) == FINDITY_OK, "%s", last_error());
    findity_get_token(e.url, CLIENT, "wrong-secret-stats", t, sizeof t, NULL);
    emu_ctl(&e, "/_emulator/fault?kind=status:503&grant=client_credentials");
    findity_clear_cache();
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error());
    emu_ctl(&e, "/_emulator/revoke?what=refresh");
    findity_invalidate(e.url, CLIENT, NULL);
    double t_org = now_ms();
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error());
    sleep_until(t_org + 1200); /* into the refresh window of the 2 s token */
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error());
    usleep(300 * 1000);
    size_t need = 0;
    CHECK(findity_get_token(e.url, CLIENT, SECRET, NULL, 0, &need) == FINDITY_ERR_BUFFER_TOO_SMALL, "size query");
    CHECK(findity_stats(&s1, sizeof s1) == FINDITY_OK, "stats");
    /* Counters are process-wide: a background renewal left over from an earlier test (against
     * an emulator that is gone) may add requests and retries, never remove them. */
#define D(f) (s1.f - s0.f)
    CHECK(D(cache_hits) >= 3, "hits %llu", (unsigned long long)D(cache_hits));
    CHECK(D(cache_misses) >= 4, "misses %llu", (unsigned long long)D(cache_misses));
    CHECK(D(client_credentials_requests) >= (uint64_t)emu_stat(&e, "client_credentials"), "cc %llu vs emulator %ld",
          (unsigned long long)D(client_credentials_requests), emu_stat(&e, "client_credentials"));
    CHECK(D(refresh_token_requests) >= (uint64_t)emu_stat(&e, "refresh_token"), "refresh %llu vs %ld",
          (unsigned long long)D(refresh_token_requests), emu_stat(&e, "refresh_token"));
    CHECK(D(authorization_grant_requests) == 1 && D(authorization_code_requests) == 1, "user grant counted");
    CHECK(D(retries) >= 1, "a retry after the 503: %llu", (unsigned long long)D(retries));
    CHECK(D(fallbacks) >= 1, "revoked refresh token fell back");
    CHECK(D(background_refreshes) >= 1, "background refresh counted");
    CHECK(D(failures[FINDITY_ERR_AUTH]) == 1, "one auth failure: %llu", (unsigned long long)D(failures[FINDITY_ERR_AUTH]));
    CHECK(D(failures[FINDITY_ERR_BUFFER_TOO_SMALL]) == 0, "a size query is not a failure");
#undef D
    emu_stop(&e);
}

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[1 << 16];
static int log_lines, log_bad_level;

static void log_cb(uint32_t level, const char *message, void *userdata) {
    pthread_mutex_lock(&log_mu);
    if (level < FINDITY_LOG_ERROR || level > FINDITY_LOG_DEBUG || userdata != (void *)&log_lines) log_bad_level++;
    log_lines++;
    size_t used = strlen(log_text);
    snprintf(log_text + used, sizeof log_text - used, "%u %s\n", level, message);
    pthread_mutex_unlock(&log_mu);
}

static void test_log_callback(void) {
    emu_t e;
    start(&e, "--lifetime", "2");
    char a[TOKEN_MAX], u[TOKEN_MAX], t[TOKEN_MAX];
    log_text[0] = 0;
    CHECK(findity_set_log_callback(log_cb, &log_lines) == FINDITY_OK, "set");
    CHECK(findity_set_option("log_level", "debug") == FINDITY_OK, "%s", last_error());
    CHECK(findity_set_option("log_level", "chatty") == FINDITY_ERR_INVALID_ARGUMENT, "bad level");
    CHECK(org(&e, a) == FINDITY_OK && user(&e, "log-user", u) == FINDITY_OK, "%s", last_error());
    findity_get_token(e.url, CLIENT, "wrong-secret-for-log", t, sizeof t, NULL);
    findity_invalidate(e.url, CLIENT, NULL);
    double t_org = now_ms();
    CHECK(org(&e, a) == FINDITY_OK, "%s", last_error());
    sleep_until(t_org + 1200);
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error()); /* starts a background refresh */
    usleep(300 * 1000);
    CHECK(findity_set_log_callback(NULL, NULL) == FINDITY_OK, "unset");
    findity_set_option("log_level", "");
    pthread_mutex_lock(&log_mu);
    CHECK(log_lines >= 5 && log_bad_level == 0, "%d lines, %d bad", log_lines, log_bad_level);
    CHECK(strstr(log_text, "via client_credentials") != NULL, "grant named:\n%s", log_text);
    CHECK(strstr(log_text, "new token #") != NULL, "fingerprint shown");
    CHECK(strstr(log_text, "background") != NULL, "background refresh logged");
    CHECK(strstr(log_text, "invalidated") != NULL, "invalidation logged");
    CHECK(strstr(log_text, "invalid_client") != NULL, "failure logged");
    CHECK(strstr(log_text, SECRET) == NULL && strstr(log_text, "wrong-secret-for-log") == NULL, "no secret in log");
    CHECK(strstr(log_text, a) == NULL && strstr(log_text, u) == NULL && strstr(log_text, t) == NULL, "no token in log");
    int before = log_lines;
    pthread_mutex_unlock(&log_mu);
    findity_clear_cache();
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error());
    CHECK(log_lines == before, "no calls after the callback was removed");
    emu_stop(&e);
}

/* A callback may call back into the library (stats, clear, invalidate): no lock is held while
 * logging, so this must not deadlock. alarm() turns a deadlock into a failure, not a hang. */
static const emu_t *reentrant_emu;
static int reentrant_calls;

static void reentrant_cb(uint32_t level, const char *message, void *userdata) {
    (void)level, (void)userdata;
    FindityStats s;
    findity_stats(&s, sizeof s);
    findity_invalidate(reentrant_emu->url, "someone-else", NULL);
    if (reentrant_calls++ == 0 || strstr(message, "invalidated")) findity_clear_cache();
}

#ifndef _WIN32 /* Windows: no alarm(); scripts/windows/test.sh's timeout ends a hang */
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL log_callback_reentrant: deadlock (alarm)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
}
#endif

static void test_log_callback_reentrant(void) {
    emu_t e;
    start(&e, NULL, NULL);
    reentrant_emu = &e;
    char t[TOKEN_MAX];
#ifndef _WIN32
    signal(SIGALRM, on_alarm);
    alarm(20);
#endif
    findity_set_log_callback(reentrant_cb, NULL);
    findity_set_option("log_level", "debug");
    CHECK(org(&e, t) == FINDITY_OK && user(&e, "re-user", t) == FINDITY_OK, "%s", last_error());
    findity_invalidate(e.url, CLIENT, NULL);
    CHECK(org(&e, t) == FINDITY_OK, "%s", last_error());
    findity_get_token(e.url, CLIENT, "wrong-secret-reentrant", t, sizeof t, NULL);
    findity_set_log_callback(NULL, NULL);
    findity_set_option("log_level", "");
#ifndef _WIN32
    alarm(0);
#endif
    CHECK(reentrant_calls > 3, "callback ran %d times", reentrant_calls);
    emu_stop(&e);
}

#ifndef _WIN32
/* Installing a callback turns info lines on; removing it must turn them off again rather than
 * sending them to a stderr nobody asked to log to. */
static void test_log_callback_removed_restores_silence(void) {
    emu_t e;
    start(&e, NULL, NULL);
    char t[TOKEN_MAX];
    findity_set_log_callback(log_cb, &log_lines);
    findity_set_log_callback(NULL, NULL);
    int p[2], saved = dup(2);
    CHECK(pipe(p) == 0, "pipe");
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    dup2(p[1], 2);
    uint32_t rc = org(&e, t);
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    char out[512] = "";
    ssize_t n = read(p[0], out, sizeof out - 1);
    close(p[0]);
    CHECK(rc == FINDITY_OK, "token");
    CHECK(n <= 0, "nothing on stderr, got: %.200s", n > 0 ? out : "");
    emu_stop(&e);
}
#endif

/* FINDITY_LOG=info sends lines to stderr: run this program again with it set. */
static int child_log_mode(const char *url) {
    char t[TOKEN_MAX];
    size_t len;
    return findity_get_token(url, CLIENT, SECRET, t, sizeof t, &len) == FINDITY_OK ? 0 : 1;
}

static const char *self_path;

#ifndef _WIN32
static void test_log_env_to_stderr(void) {
    emu_t e;
    start(&e, NULL, NULL);
    int err[2];
    CHECK(pipe(err) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(err[1], 2);
        close(err[0]);
        setenv("FINDITY_LOG", "info", 1);
        execl(self_path, self_path, "--child-log", e.url, (char *)NULL);
        _exit(127);
    }
    close(err[1]);
    static char out[8192];
    size_t got = 0;
    ssize_t r;
    while (got + 1 < sizeof out && (r = read(err[0], out + got, sizeof out - 1 - got)) > 0) got += (size_t)r;
    out[got] = 0;
    close(err[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child got a token");
    CHECK(strstr(out, "findity info: organization token") != NULL, "stderr line:\n%s", out);
    CHECK(strstr(out, SECRET) == NULL, "no secret on stderr");
    emu_stop(&e);
}
#endif

int main(int argc, char **argv) {
    self_path = argv[0];
    if (argc == 3 && strcmp(argv[1], "--child-log") == 0) return child_log_mode(argv[2]);
#ifndef _WIN32
    signal(SIGPIPE, SIG_IGN);
#endif
    emu_net_init();
    struct {
        const char *name;
        void (*fn)(void);
        const char *unix_only; /* why, where fn is NULL (Windows) */
    } tests[] = {
        {"version", test_version, NULL},
        {"org_token_and_cache", test_org_token_and_cache, NULL},
        {"buffer_too_small", test_buffer_too_small, NULL},
        {"expires_in", test_expires_in, NULL},
        {"cached_token", test_cached_token, NULL},
        {"invalid_arguments", test_invalid_arguments, NULL},
        {"last_error_buffer", test_last_error_buffer, NULL},
        {"auth_error", test_auth_error, NULL},
        {"user_token", test_user_token, NULL},
        {"invalidate_uses_refresh_token_once", test_invalidate_uses_refresh_token_once, NULL},
        {"refused_refresh_falls_back", test_refused_refresh_falls_back, NULL},
        {"no_refresh_token_in_answer", test_no_refresh_token_in_answer, NULL},
        {"single_flight", test_single_flight, NULL},
        {"single_flight_shares_errors", test_single_flight_shares_errors, NULL},
        {"short_tokens_rotate_in_background", test_short_tokens_rotate_in_background, NULL},
        {"hard_margin_with_slow_refresh", test_hard_margin_with_slow_refresh, NULL},
        {"no_caller_waits_for_refresh", test_no_caller_waits_for_refresh, NULL},
        {"retries", test_retries, NULL},
        {"timeout_and_recovery", test_timeout_and_recovery, NULL},
        {"refused_port", test_refused_port, NULL},
        {"hostile_answers", test_hostile_answers, NULL},
        {"valid_token_survives_outage", test_valid_token_survives_outage, NULL},
        {"tls_with_ca_file", test_tls_with_ca_file, NULL},
        {"fork", UNIX_ONLY(test_fork), "needs fork()"},
        {"fork_keeps_throttle_pause", UNIX_ONLY(test_fork_keeps_throttle_pause), "needs fork()"},
        {"invalidate_token", test_invalidate_token, NULL},
        {"fork_under_contention", UNIX_ONLY(test_fork_under_contention), "needs fork()"},
        {"clear_cache", test_clear_cache, NULL},
        {"stats", test_stats, NULL},
        {"log_callback", test_log_callback, NULL},
        {"log_env_to_stderr", UNIX_ONLY(test_log_env_to_stderr), "needs fork() and execl()"},
        {"log_callback_removed_restores_silence", UNIX_ONLY(test_log_callback_removed_restores_silence),
         "captures fd 2 with pipe() and dup2()"},
        {"log_callback_reentrant", test_log_callback_reentrant, NULL},
    };
    const char *only = getenv("FINDITY_TEST_ONLY");
    no_timing = getenv("FINDITY_TEST_NO_TIMING") != NULL;
    int skipped = 0, unix_only = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (!tests[i].fn) {
            printf("skip %-40s (Unix only: %s)\n", tests[i].name, tests[i].unix_only);
            unix_only++;
            continue;
        }
        if (only && !strstr(tests[i].name, only)) {
            printf("skip %-40s (FINDITY_TEST_ONLY=%s)\n", tests[i].name, only);
            skipped++;
            continue;
        }
        /* FINDITY_TEST_SKIP="name:reason": a runner that cannot run one test says why. */
        const char *skip = getenv("FINDITY_TEST_SKIP");
        size_t n = strlen(tests[i].name);
        if (skip && !strncmp(skip, tests[i].name, n) && skip[n] == ':') {
            printf("skip %-40s (%s)\n", tests[i].name, skip + n + 1);
            skipped++;
            continue;
        }
        current = tests[i].name;
        int f0 = failed;
        double t0 = now_ms();
        tests[i].fn();
        printf("%-4s %-40s %6.0f ms\n", failed == f0 ? "ok" : "FAIL", current, now_ms() - t0);
        fflush(stdout);
    }
    if (relaxed) printf("%d wall-clock checks relaxed under valgrind (listed above)\n", relaxed);
    if (skipped) printf("%d tests skipped by FINDITY_TEST_ONLY or FINDITY_TEST_SKIP\n", skipped);
    if (unix_only) printf("%d tests skipped: Unix only (listed above)\n", unix_only);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
