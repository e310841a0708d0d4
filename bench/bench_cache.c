/* Cache-hit cost of findity_get_token next to a C floor measured in the same binary:
 * a pthread mutex, a comparison of the three key strings and a 128-byte copy. Also, for
 * context, the floor plus the expiry check every correct cache makes on each hit (a coarse
 * clock read and a comparison), which the floor leaves out.
 * Ratios are medians of per-run ratios, each run measuring all three interleaved.
 *   usage: bench_cache BASE_URL [calls per mode and run]
 *   (prints one line per thread count: ns per call, medians of RUNS runs) */
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

/* The three measurements: 0 libfindity, 1 the floor, 2 the floor with the expiry check. */
#define MODES 3
#define CHUNK 10000 /* calls per slice */

typedef struct {
    double ns_per_call[MODES];
    pthread_barrier_t *start;
} job_t;

static long slices(void) { return iterations / CHUNK > 0 ? iterations / CHUNK : 1; }

/* Each thread runs the three in slices of CHUNK calls, rotating their order, all threads
 * starting each slice together: every measurement sees the same moments of this host, whose
 * speed swings within a second (a shared VM: two runs of the same build one after the other
 * differ by up to 2x, the hit, throughput-bound, more than the floor, latency-bound). */
static void *worker(void *p) {
    job_t *j = p;
    char buf[4096];
    size_t len;
    /* Each thread passes its own copies of the key strings, as separate callers would. */
    char b[256], id[64], s[64];
    strcpy(b, base_url);
    strcpy(id, CLIENT);
    strcpy(s, SECRET);
    double total[MODES] = {0, 0, 0};
    int bad = 0;
    long n = slices();
    for (long c = 0; c < n; c++) {
        for (int k = 0; k < MODES; k++) {
            int mode = (int)((c + k) % MODES);
            pthread_barrier_wait(j->start);
            double t0 = now_ns();
            for (long i = 0; i < CHUNK; i++) {
                if (mode)
                    bad |= !floor_get(b, id, s, buf, mode == 2);
                else
                    bad |= findity_get_token(b, id, s, buf, sizeof buf, &len) != FINDITY_OK;
            }
            total[mode] += now_ns() - t0;
        }
    }
    for (int m = 0; m < MODES; m++) j->ns_per_call[m] = total[m] / ((double)n * CHUNK);
    if (bad) {
        fprintf(stderr, "a call failed\n");
        exit(1);
    }
    return NULL;
}

/* ns per call of each mode with `threads` threads running at once (each thread's own figure,
 * averaged). */
static void run(int threads, double out[MODES]) {
    pthread_t th[8];
    job_t jobs[8];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        jobs[i] = (job_t){.start = &start};
        pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    for (int m = 0; m < MODES; m++) out[m] = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        for (int m = 0; m < MODES; m++) out[m] += jobs[i].ns_per_call[m] / threads;
    }
    pthread_barrier_destroy(&start);
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
        double lib[RUNS], flo[RUNS], clk[RUNS], ratio[RUNS], ratio_clk[RUNS], t[MODES];
        for (int r = 0; r < RUNS; r++) {
            run(threads, t);
            lib[r] = t[0];
            flo[r] = t[1];
            clk[r] = t[2];
            ratio[r] = t[0] / t[1]; /* within one run: the same moments of the host */
            ratio_clk[r] = t[0] / t[2];
        }
        qsort(lib, RUNS, sizeof lib[0], cmp);
        qsort(flo, RUNS, sizeof flo[0], cmp);
        qsort(clk, RUNS, sizeof clk[0], cmp);
        qsort(ratio, RUNS, sizeof ratio[0], cmp);
        qsort(ratio_clk, RUNS, sizeof ratio_clk[0], cmp);
        printf("cache_hit threads=%d libfindity_ns=%.1f floor_ns=%.1f ratio=%.2f floor_expiry_ns=%.1f "
               "ratio_expiry=%.2f ratio_min=%.2f ratio_max=%.2f\n",
               threads, lib[RUNS / 2], flo[RUNS / 2], ratio[RUNS / 2], clk[RUNS / 2],
               ratio_clk[RUNS / 2], ratio[0], ratio[RUNS - 1]);
    }
    return 0;
}
