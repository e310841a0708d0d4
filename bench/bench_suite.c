/* libfindity benchmarks beyond the cache hit (bench_cache.c):
 *   bench_suite concurrency URL   64 threads on a cold cache; 16 threads over 5 lifetimes of 2 s tokens
 *   bench_suite rollover URL      500 ms endpoint, 4 s tokens, 8 threads for 20 s: call latency p50/p99/max
 *   bench_suite cold URL CAFILE   one cold token over HTTPS (client set-up, TLS, request), in ms
 * The emulator is driven through its control API (tests/c/emu.h). Output: "key=value" lines. */
#define _GNU_SOURCE
#include "../tests/c/emu.h"
#include "findity.h"

#include <pthread.h>
#include <time.h>

#define CLIENT "bench-client"
#define SECRET "bench-secret-0123456789"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static emu_t emu_at(const char *url) {
    emu_t e = {0};
    snprintf(e.url, sizeof e.url, "%s", url);
    const char *colon = strrchr(url, ':');
    e.port = colon ? atoi(colon + 1) : 0;
    return e;
}

static const char *base;
static volatile int stop;

typedef struct {
    const char *user;
    double *lat;
    size_t n, cap;
    int errors;
    pthread_barrier_t *go;
} worker_t;

static void *cold_worker(void *p) {
    worker_t *w = p;
    char t[4096];
    pthread_barrier_wait(w->go);
    w->errors += findity_get_token(base, CLIENT, SECRET, t, sizeof t, NULL) != FINDITY_OK;
    return NULL;
}

static void *loop_worker(void *p) {
    worker_t *w = p;
    char t[4096];
    pthread_barrier_wait(w->go);
    while (!stop) {
        double t0 = now_ms();
        uint32_t rc = w->user ? findity_user_token(base, CLIENT, SECRET, w->user, t, sizeof t, NULL)
                              : findity_get_token(base, CLIENT, SECRET, t, sizeof t, NULL);
        double d = now_ms() - t0;
        w->errors += rc != FINDITY_OK;
        if (w->n < w->cap) w->lat[w->n++] = d;
        usleep(1000);
    }
    return NULL;
}

static void run_threads(int n, void *(*fn)(void *), worker_t *ws, double seconds) {
    pthread_t th[64];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)n);
    stop = 0;
    for (int i = 0; i < n; i++) {
        ws[i].go = &go;
        pthread_create(&th[i], NULL, fn, &ws[i]);
    }
    if (seconds > 0) {
        usleep((useconds_t)(seconds * 1e6));
        stop = 1;
    }
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int concurrency(void) {
    emu_t e = emu_at(base);
    emu_ctl(&e, "/_emulator/reset");
    emu_ctl(&e, "/_emulator/config?latency_ms=200");
    worker_t ws[64] = {0};
    run_threads(64, cold_worker, ws, 0);
    int errors = 0;
    for (int i = 0; i < 64; i++) errors += ws[i].errors;
    printf("cold64_token_requests=%ld cold64_errors=%d cold64_max_concurrent=%ld\n", emu_stat(&e, "token_requests"), errors,
           emu_stat(&e, "max_concurrent"));

    findity_clear_cache();
    emu_ctl(&e, "/_emulator/reset");
    emu_ctl(&e, "/_emulator/config?lifetime=2&latency_ms=0");
    static double lat[16][20000];
    for (int i = 0; i < 16; i++) ws[i] = (worker_t){.lat = lat[i], .cap = 20000};
    run_threads(16, loop_worker, ws, 10.0);
    errors = 0;
    for (int i = 0; i < 16; i++) errors += ws[i].errors;
    printf("lifetimes5_token_requests=%ld lifetimes5_errors=%d lifetimes5_refresh_reuse=%ld\n",
           emu_stat(&e, "token_requests"), errors, emu_stat(&e, "refresh_reuse"));
    return 0;
}

static int rollover(void) {
    emu_t e = emu_at(base);
    emu_ctl(&e, "/_emulator/reset");
    emu_ctl(&e, "/_emulator/config?lifetime=4&latency_ms=500");
    char t[4096];
    if (findity_get_token(base, CLIENT, SECRET, t, sizeof t, NULL) != FINDITY_OK) return 1; /* cold: not measured */
    enum { N = 8, CAP = 40000 };
    static double lat[N][CAP];
    worker_t ws[N];
    for (int i = 0; i < N; i++) ws[i] = (worker_t){.lat = lat[i], .cap = CAP};
    run_threads(N, loop_worker, ws, 20.0);
    static double all[N * CAP];
    size_t n = 0;
    int errors = 0;
    for (int i = 0; i < N; i++) {
        memcpy(all + n, ws[i].lat, ws[i].n * sizeof(double));
        n += ws[i].n;
        errors += ws[i].errors;
    }
    qsort(all, n, sizeof all[0], cmpd);
    printf("rollover_calls=%zu rollover_errors=%d rollover_p50_ms=%.4f rollover_p99_ms=%.4f rollover_max_ms=%.3f "
           "rollover_token_requests=%ld\n",
           n, errors, all[n / 2], all[n * 99 / 100], all[n - 1], emu_stat(&e, "token_requests"));
    return 0;
}

static int cold(const char *ca) {
    if (findity_set_option("ca_file", ca) != FINDITY_OK) return 1;
    char t[4096];
    double t0 = now_ms();
    uint32_t rc = findity_get_token(base, CLIENT, SECRET, t, sizeof t, NULL);
    double d = now_ms() - t0;
    if (rc != FINDITY_OK) {
        char msg[1024];
        findity_last_error(msg, sizeof msg, NULL);
        fprintf(stderr, "%s\n", msg);
        return 1;
    }
    printf("cold_https_ms=%.3f\n", d);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s concurrency|rollover|cold URL [CAFILE]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    base = argv[2];
    if (!strcmp(argv[1], "concurrency")) return concurrency();
    if (!strcmp(argv[1], "rollover")) return rollover();
    if (!strcmp(argv[1], "cold") && argc > 3) return cold(argv[3]);
    return 2;
}
