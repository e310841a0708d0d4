/* libfindity demo: an organization token and a user token, then what an error looks like.
 *   usage: FINDITY_CLIENT_SECRET=SECRET demo BASE_URL CLIENT_ID USER_ID
 *   e.g.   FINDITY_CLIENT_SECRET=my-secret ./demo http://127.0.0.1:8080 my-client-id E1234
 *          (against `findity-emulator --port 8080 --client my-client-id:my-secret`)
 * BASE_URL is production, stage or an emulator's http://127.0.0.1:PORT. The last step asks for
 * the user "unknown-employee", whom the emulator refuses only when started with
 * `--unknown-users unknown-employee` (as `make demo` does); Findity refuses it too.
 * Tokens are printed shortened: a real program sends them, it never prints them. */
#define _POSIX_C_SOURCE 200809L
#include <findity.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void print_error(const char *what, uint32_t status) {
    char msg[1024];
    size_t len = 0;
    findity_last_error(msg, sizeof msg, &len);
    printf("%s failed: status %u, HTTP %u: %s\n", what, status, findity_last_http_status(), msg);
}

/* A call made to show an error: print the error, or say that there was none (the last error
 * is then the previous failure's, so it must not be printed as this call's). */
static void show_refusal(const char *what, uint32_t status, const char *why_not) {
    if (status == FINDITY_OK) {
        printf("%s: no error, a token was issued (%s)\n", what, why_not);
        return;
    }
    print_error(what, status);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc != 4 || !getenv("FINDITY_CLIENT_SECRET")) {
        fprintf(stderr,
                "usage: FINDITY_CLIENT_SECRET=SECRET %s BASE_URL CLIENT_ID USER_ID\n"
                "  BASE_URL   production, stage, or http://127.0.0.1:PORT for findity-emulator\n"
                "  CLIENT_ID  the API client id (its secret in FINDITY_CLIENT_SECRET)\n"
                "  USER_ID    an employee to get a user token for, e.g. E1234\n"
                "example: FINDITY_CLIENT_SECRET=my-secret %s http://127.0.0.1:8080 my-client-id E1234\n"
                "  (with: findity-emulator --port 8080 --client my-client-id:my-secret)\n",
                argv[0], argv[0]);
        return 2;
    }
    const char *base = argv[1], *client = argv[2], *user = argv[3];
    const char *secret = getenv("FINDITY_CLIENT_SECRET");
    printf("libfindity %s, base URL %s\n", findity_version(), base);

    char token[4096];
    size_t len = 0;
    double t0 = now_us();
    uint32_t rc = findity_get_token(base, client, secret, token, sizeof token, &len);
    if (rc != FINDITY_OK) {
        print_error("organization token", rc);
        return 1;
    }
    double t1 = now_us();
    printf("organization token: %.8s… (%zu chars) in %.1f ms\n", token, len, (t1 - t0) / 1e3);

    /* A connector calls this before every API request: from the cache it costs no I/O. */
    for (int i = 0; i < 100000; i++) rc |= findity_get_token(base, client, secret, token, sizeof token, &len);
    double t2 = now_us();
    printf("100000 calls more, from the cache: %.8s… %.3f µs per call\n", token, (t2 - t1) / 100000);

    rc = findity_user_token(base, client, secret, user, token, sizeof token, &len);
    if (rc != FINDITY_OK) {
        print_error("user token", rc);
        return 1;
    }
    printf("user token for %s: %.8s… (%zu chars)\n", user, token, len);

    /* What a mistake looks like: the message says what failed, where and why. */
    rc = findity_get_token(base, client, "not-the-secret", token, sizeof token, &len);
    show_refusal("with a wrong secret (expected to fail)", rc, "the server took \"not-the-secret\"");
    rc = findity_user_token(base, client, secret, "unknown-employee", token, sizeof token, &len);
    show_refusal("for an unknown user (expected to fail)", rc,
                 "this server knows \"unknown-employee\": findity-emulator refuses only the ids "
                 "given to --unknown-users");
    return 0;
}
