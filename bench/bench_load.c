/* Footprint of libfindity: dlopen time, resident memory added by loading it and by the first
 * token, threads it starts. Not linked to the library, so the load is measured.
 *   usage: bench_load LIBPATH URL */
#define _GNU_SOURCE
#include "findity.h"
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLIENT "bench-client"
#define SECRET "bench-secret-0123456789"

static const char *base;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long status_field(const char *name) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t len = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, name, len) == 0) v = atol(line + len);
    if (f) fclose(f);
    return v;
}

/* Loads the library itself (this binary is not linked to it) to time dlopen. */
static int footprint(const char *lib) {
    long rss0 = status_field("VmRSS:"), th0 = status_field("Threads:");
    double t0 = now_ms();
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    double load = now_ms() - t0;
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    long rss1 = status_field("VmRSS:");
    uint32_t (*get)(const char *, const char *, const char *, char *, size_t, size_t *) =
        (uint32_t(*)(const char *, const char *, const char *, char *, size_t, size_t *))dlsym(h, "findity_get_token");
    char t[4096];
    if (get(base, CLIENT, SECRET, t, sizeof t, NULL) != FINDITY_OK) return 1;
    long rss2 = status_field("VmRSS:"), th2 = status_field("Threads:");
    printf("load_ms=%.3f rss_load_kib=%ld rss_first_token_kib=%ld threads_started=%ld\n", load, rss1 - rss0, rss2 - rss1,
           th2 - th0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s LIBPATH URL\n", argv[0]);
        return 2;
    }
    base = argv[2];
    return footprint(argv[1]);
}
