/* An ERP-connector style program: what calling the Findity API with libfindity looks like.
 *
 *   usage: FINDITY_CLIENT_SECRET=... connector BASE_URL CLIENT_ID USER_ID
 *
 * It reads the signed-in user's profile with a user token (GET /api/v1/me) and the organization's
 * expenses with the organization token (GET /api/v1/expenses), the two kinds of calls a connector
 * makes. The pattern to copy is api_get():
 *   1. ask libfindity for the token before EVERY request: a cached token costs no I/O, and the
 *      library renews it in the background, so never store a token yourself;
 *   2. send it as "Authorization: Bearer <token>";
 *   3. on a 401 answer, findity_invalidate() the token and retry once with a new one.
 *
 * The HTTP part is a deliberately tiny HTTP/1.1 client on plain sockets, so the example needs
 * nothing but libc: it speaks only http:// and only to loopback addresses, i.e. to the Findity
 * emulator (target/debug/findity-emulator). A real connector uses its own HTTP stack (libcurl,
 * ...) over https://; the token handling stays exactly as below.
 */
#define _DEFAULT_SOURCE /* explicit_bzero, and POSIX 2008 */
#include <findity.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- the token part: this is what to copy ------------------------------------------------ */

struct connection {
    const char *base_url; /* "production", "stage", or here the emulator's http://127.0.0.1:PORT */
    const char *client_id;
    const char *client_secret;
};

static int http_get(const char *base_url, const char *path, const char *token, char *body,
                    size_t body_len);

/* The token for `user_id`, or the organization token when it is NULL, into buf. */
static int get_token(const struct connection *c, const char *user_id, char *buf, size_t len) {
    uint32_t rc = user_id ? findity_user_token(c->base_url, c->client_id, c->client_secret,
                                               user_id, buf, len, NULL)
                          : findity_get_token(c->base_url, c->client_id, c->client_secret, buf,
                                              len, NULL);
    if (rc != FINDITY_OK) {
        char msg[1024];
        findity_last_error(msg, sizeof msg, NULL);
        fprintf(stderr, "no %s token (status %u, HTTP %u): %s\n", user_id ? "user" : "organization",
                rc, findity_last_http_status(), msg);
        return -1;
    }
    return 0;
}

/* GET {base}{path} as `user_id` (NULL: as the organization). Returns the HTTP status, or -1. */
static int api_get(const struct connection *c, const char *user_id, const char *path, char *body,
                   size_t body_len) {
    char token[16 * 1024 + 1]; /* the library accepts tokens of up to 16 KiB */
    int status = -1;
    for (int attempt = 1; attempt <= 2; attempt++) {
        if (get_token(c, user_id, token, sizeof token) != 0) return -1;
        status = http_get(c->base_url, path, token, body, body_len);
        if (status != 401 || attempt == 2) break;
        /* The API refused a token the library still considered valid (revoked, or the server
         * restarted): forget it, so the next get_token fetches a new one, and retry once. */
        printf("  %s answered 401: invalidating the %s token and retrying once\n", path,
               user_id ? "user" : "organization");
        findity_invalidate(c->base_url, c->client_id, user_id);
    }
    explicit_bzero(token, sizeof token); /* memset before going out of scope may be optimised away */
    return status;
}

int main(int argc, char **argv) {
    const char *secret = getenv("FINDITY_CLIENT_SECRET");
    if (argc != 4 || !secret) {
        fprintf(stderr, "usage: FINDITY_CLIENT_SECRET=... %s BASE_URL CLIENT_ID USER_ID\n", argv[0]);
        return 2;
    }
    struct connection c = {argv[1], argv[2], secret};
    const char *user = argv[3];
    printf("connector: libfindity %s, Findity API at %s\n", findity_version(), c.base_url);

    char body[8192];
    int failures = 0;

    int status = api_get(&c, user, "/api/v1/me", body, sizeof body);
    printf("GET /api/v1/me as user %s -> %d %s\n", user, status, status > 0 ? body : "");
    failures += status != 200;

    status = api_get(&c, NULL, "/api/v1/expenses", body, sizeof body);
    printf("GET /api/v1/expenses as the organization -> %d %s\n", status, status > 0 ? body : "");
    failures += status != 200;

    return failures ? 1 : 0;
}

/* ---- a minimal HTTP/1.1 GET over plain sockets: loopback http:// only --------------------- */

/* Splits "http://host[:port][/prefix]" into host, port and prefix (no trailing slash). */
static int parse_base_url(const char *url, char *host, size_t host_len, char *port,
                          size_t port_len, char *prefix, size_t prefix_len) {
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "this example speaks only http:// to the emulator, not \"%s\"\n", url);
        return -1;
    }
    const char *h = url + 7, *end;
    if (*h == '[') { /* [::1]:port */
        end = strchr(h, ']');
        if (!end) return -1;
        snprintf(host, host_len, "%.*s", (int)(end - h - 1), h + 1);
        end++;
    } else {
        end = h + strcspn(h, ":/");
        snprintf(host, host_len, "%.*s", (int)(end - h), h);
    }
    snprintf(port, port_len, "80");
    if (*end == ':') {
        size_t n = strcspn(end + 1, "/");
        snprintf(port, port_len, "%.*s", (int)n, end + 1);
        end += 1 + n;
    }
    snprintf(prefix, prefix_len, "%s", end);
    size_t n = strlen(prefix);
    while (n > 0 && prefix[n - 1] == '/') prefix[--n] = 0;
    return 0;
}

/* Connects to a loopback address only: the token must not travel in clear text anywhere else. */
static int connect_loopback(const char *host, const char *port) {
    struct addrinfo hints = {0}, *res, *ai;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        fprintf(stderr, "cannot resolve %s\n", host);
        return -1;
    }
    int fd = -1;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        char ip[64] = "";
        getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof ip, NULL, 0, NI_NUMERICHOST);
        if (strncmp(ip, "127.", 4) != 0 && strcmp(ip, "::1") != 0) continue;
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        struct timeval tv = {10, 0}; /* never hang forever on a stuck server */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) fprintf(stderr, "cannot connect to %s:%s (a loopback address)\n", host, port);
    return fd;
}

/* GET {base_url}{path} with the Bearer token; the response body goes to `body` (NUL-terminated,
 * truncated to fit). Returns the HTTP status, or -1. One request per connection
 * ("Connection: close"), so the body is everything after the head until the server closes. */
static int http_get(const char *base_url, const char *path, const char *token, char *body,
                    size_t body_len) {
    char host[256], port[16], prefix[512];
    if (parse_base_url(base_url, host, sizeof host, port, sizeof port, prefix, sizeof prefix) != 0)
        return -1;
    int fd = connect_loopback(host, port);
    if (fd < 0) return -1;

    char req[8192];
    int n = snprintf(req, sizeof req,
                     "GET %s%s HTTP/1.1\r\n"
                     "Host: %s:%s\r\n"
                     "Authorization: Bearer %s\r\n"
                     "Accept: application/json\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     prefix, path, host, port, token);
    int status = -1;
    if (n > 0 && (size_t)n < sizeof req && write(fd, req, (size_t)n) == n) {
        char resp[65536]; /* per call: this example's client must stay thread-safe when copied */
        size_t got = 0;
        ssize_t r;
        while (got + 1 < sizeof resp && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
            got += (size_t)r;
        resp[got] = 0;
        char *head_end = strstr(resp, "\r\n\r\n");
        if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1 || !head_end) {
            fprintf(stderr, "not an HTTP answer from %s\n", base_url);
            status = -1;
        } else {
            snprintf(body, body_len, "%s", head_end + 4);
        }
        explicit_bzero(resp, got);
    }
    explicit_bzero(req, sizeof req); /* it held the token */
    close(fd);
    return status;
}
