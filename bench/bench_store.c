/* bench_store: the shared cache's figures (bench/store.sh drives it).
 *
 *   bench_store load URL CLIENT SECRET STORE USER THREADS SECS TIMEOUT_MS
 *       THREADS threads call findity_user_token (USER "-": findity_get_token) back to back
 *       (0.5 ms apart) for SECS seconds; prints "ok=N fail=N slowest_ms=X" and the store counters.
 *   bench_store served URL CLIENT SECRET STORE N
 *       N times: clear this process's cache, then get the organization token, which another
 *       process put in the store: prints the median and p99 in microseconds; then the cache hit
 *       with the store configured ("hit_ns").
 */
#define _GNU_SOURCE
#include <findity.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *url, *client, *secret, *user;
static double secs;
static long ok_calls, failed_calls;
static double slowest_ms;
static char first_error[512];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t get(char *buf, size_t n) {
    size_t len = 0;
    return user ? findity_user_token(url, client, secret, user, buf, n, &len)
                : findity_get_token(url, client, secret, buf, n, &len);
}

static void *worker(void *arg) {
    (void)arg;
    char buf[4096];
    double end = now_s() + secs;
    long ok = 0, bad = 0;
    double worst = 0;
    do {
        double t0 = now_s();
        uint32_t rc = get(buf, sizeof buf);
        double ms = (now_s() - t0) * 1e3;
        if (ms > worst) worst = ms;
        if (rc == FINDITY_OK) {
            ok++;
        } else {
            bad++;
            pthread_mutex_lock(&mu);
            if (!first_error[0]) findity_last_error(first_error, sizeof first_error, NULL);
            pthread_mutex_unlock(&mu);
        }
        usleep(500);
    } while (now_s() < end);
    pthread_mutex_lock(&mu);
    ok_calls += ok;
    failed_calls += bad;
    if (worst > slowest_ms) slowest_ms = worst;
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void set(const char *name, const char *value) {
    if (findity_set_option(name, value) != FINDITY_OK) {
        char msg[512] = "";
        findity_last_error(msg, sizeof msg, NULL);
        fprintf(stderr, "bench_store: %s: %s\n", name, msg);
        exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc >= 7 && !strcmp(argv[1], "load") && argc == 10) {
        url = argv[2], client = argv[3], secret = argv[4];
        set("shared_cache", argv[5]);
        user = strcmp(argv[6], "-") ? argv[6] : NULL;
        int threads = atoi(argv[7]);
        secs = atof(argv[8]);
        set("timeout_ms", argv[9]);
        pthread_t t[64];
        if (threads > 64) threads = 64;
        for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        FindityStats s;
        findity_stats(&s, sizeof s);
        printf("ok=%ld fail=%ld slowest_ms=%.1f store_hits=%llu store_writes=%llu store_lock_waits=%llu "
               "store_errors=%llu background=%llu first_error=\"%s\"\n",
               ok_calls, failed_calls, slowest_ms, (unsigned long long)s.store_hits,
               (unsigned long long)s.store_writes, (unsigned long long)s.store_lock_waits,
               (unsigned long long)s.store_errors, (unsigned long long)s.background_refreshes, first_error);
        return 0;
    }
    if (argc == 7 && !strcmp(argv[1], "served")) {
        url = argv[2], client = argv[3], secret = argv[4];
        set("shared_cache", argv[5]);
        int n = atoi(argv[6]);
        double *us = calloc((size_t)n, sizeof *us);
        char buf[4096];
        for (int i = 0; i < n; i++) {
            findity_clear_cache();
            double t0 = now_s();
            if (get(buf, sizeof buf) != FINDITY_OK) {
                fprintf(stderr, "bench_store: token call failed\n");
                return 1;
            }
            us[i] = (now_s() - t0) * 1e6;
        }
        FindityStats s;
        findity_stats(&s, sizeof s);
        qsort(us, (size_t)n, sizeof *us, cmp);
        /* The cache hit, store configured: it must cost what it costs without one. */
        long hits = 2000000;
        double t0 = now_s();
        for (long i = 0; i < hits; i++) get(buf, sizeof buf);
        double hit_ns = (now_s() - t0) * 1e9 / hits;
        printf("median_us=%.1f p99_us=%.1f store_hits=%llu requests=%llu hit_ns=%.1f\n", us[n / 2],
               us[(n * 99) / 100], (unsigned long long)s.store_hits,
               (unsigned long long)(s.client_credentials_requests + s.refresh_token_requests),
               hit_ns);
        return 0;
    }
    fprintf(stderr, "usage: see the comment at the top of bench/bench_store.c\n");
    return 2;
}
