/* Cache-hit cost of findity_get_token next to a C floor measured in the same binary:
 * a pthread mutex, a comparison of the three key strings and a 128-byte copy. Also, for
 * context, the floor plus the expiry check every correct cache makes on each hit (a coarse
 * clock read and a comparison), which the floor leaves out.
 *   usage: bench_cache BASE_URL   (prints one line per measurement, ns per call, medians) */
#define _GNU_SOURCE
#include "findity.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLIENT "bench-client"
#define SECRET "bench-secret-0123456789"
#define RUNS 7

static const char *base_url;
static volatile long iterations = 2000000;

/* The floor: what a hand-written cache needs at least. */
static pthread_mutex_t floor_mu = PTHREAD_MUTEX_INITIALIZER;
static char floor_base[256], floor_id[64], floor_secret[64], floor_token[129];

static long long floor_expires_ns;

static int floor_get(const char *b, const char *id, const char *s, char *out, int check_expiry) {
    int ok = 0;
    struct timespec ts = {0, 0};
    if (check_expiry) clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* outside the lock */
    pthread_mutex_lock(&floor_mu);
    if ((!check_expiry || ts.tv_sec * 1000000000LL + ts.tv_nsec < floor_expires_ns) &&
        strcmp(b, floor_base) == 0 && strcmp(id, floor_id) == 0 && strcmp(s, floor_secret) == 0) {
        memcpy(out, floor_token, 128);
        ok = 1;
    }
    pthread_mutex_unlock(&floor_mu);
    return ok;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

typedef struct {
    int use_floor; /* 0: libfindity, 1: the floor, 2: the floor with the expiry check */
    double ns_per_call;
    pthread_barrier_t *start;
} job_t;

static void *worker(void *p) {
    job_t *j = p;
    char buf[4096];
    size_t len;
    /* Each thread passes its own copies of the key strings, as separate callers would. */
    char b[256], id[64], s[64];
    strcpy(b, base_url);
    strcpy(id, CLIENT);
    strcpy(s, SECRET);
    pthread_barrier_wait(j->start);
    double t0 = now_ns();
    long n = iterations;
    int bad = 0;
    for (long i = 0; i < n; i++) {
        if (j->use_floor)
            bad |= !floor_get(b, id, s, buf, j->use_floor == 2);
        else
            bad |= findity_get_token(b, id, s, buf, sizeof buf, &len) != FINDITY_OK;
    }
    j->ns_per_call = (now_ns() - t0) / n;
    if (bad) {
        fprintf(stderr, "a call failed\n");
        exit(1);
    }
    return NULL;
}

/* ns per call with `threads` threads running at once (each thread's own figure, averaged). */
static double run(int use_floor, int threads) {
    pthread_t th[8];
    job_t jobs[8];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        jobs[i] = (job_t){.use_floor = use_floor, .start = &start};
        pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    double sum = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        sum += jobs[i].ns_per_call;
    }
    pthread_barrier_destroy(&start);
    return sum / threads;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BASE_URL [iterations]\n", argv[0]);
        return 2;
    }
    base_url = argv[1];
    if (argc > 2) iterations = atol(argv[2]);
    char tok[4096];
    size_t len = 0;
    if (findity_get_token(base_url, CLIENT, SECRET, tok, sizeof tok, &len) != FINDITY_OK) {
        char msg[1024];
        findity_last_error(msg, sizeof msg, NULL);
        fprintf(stderr, "no token: %s\n", msg);
        return 1;
    }
    snprintf(floor_base, sizeof floor_base, "%s", base_url);
    snprintf(floor_id, sizeof floor_id, "%s", CLIENT);
    snprintf(floor_secret, sizeof floor_secret, "%s", SECRET);
    memcpy(floor_token, tok, 128);
    floor_expires_ns = (long long)(now_ns() + 3600e9);

    for (int threads = 1; threads <= 2; threads++) {
        double lib[RUNS], flo[RUNS], clk[RUNS];
        for (int r = 0; r < RUNS; r++) { /* interleaved, so drift hits all alike */
            flo[r] = run(1, threads);
            lib[r] = run(0, threads);
            clk[r] = run(2, threads);
        }
        qsort(lib, RUNS, sizeof lib[0], cmp);
        qsort(flo, RUNS, sizeof flo[0], cmp);
        qsort(clk, RUNS, sizeof clk[0], cmp);
        printf("cache_hit threads=%d libfindity_ns=%.1f floor_ns=%.1f ratio=%.2f floor_expiry_ns=%.1f "
               "ratio_expiry=%.2f\n",
               threads, lib[RUNS / 2], flo[RUNS / 2], lib[RUNS / 2] / flo[RUNS / 2], clk[RUNS / 2],
               lib[RUNS / 2] / clk[RUNS / 2]);
    }
    return 0;
}
