/* Test harness: start the Findity emulator as a child process and drive its control API.
 * Plain sockets, no dependencies; HTTP only (the TLS emulator is not driven through here). */
#ifndef FINDITY_TEST_EMU_H
#define FINDITY_TEST_EMU_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int stdin_fd; /* closing it makes the emulator exit (--exit-on-stdin-close) */
    char url[256];
    int port;
} emu_t;

/* Start `$FINDITY_EMULATOR --port 0 --quiet --exit-on-stdin-close <args...>` (NULL-terminated). */
static int emu_start(emu_t *e, ...) {
    const char *bin = getenv("FINDITY_EMULATOR");
    if (!bin) bin = "target/debug/findity-emulator";
    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--quiet";
    argv[n++] = "--exit-on-stdin-close";
    va_list ap;
    va_start(ap, e);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;

    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    e->pid = pid;
    e->stdin_fd = in[1];
    /* The first stdout line is the base URL. */
    size_t len = 0;
    char c;
    while (len + 1 < sizeof e->url && read(out[0], &c, 1) == 1 && c != '\n') e->url[len++] = c;
    e->url[len] = 0;
    close(out[0]);
    const char *colon = strrchr(e->url, ':');
    e->port = colon ? atoi(colon + 1) : 0;
    if (len == 0 || e->port == 0) {
        fprintf(stderr, "emulator did not print its URL\n");
        return -1;
    }
    return 0;
}

static void emu_stop(emu_t *e) {
    if (e->pid <= 0) return;
    close(e->stdin_fd);
    kill(e->pid, SIGTERM);
    waitpid(e->pid, NULL, 0);
    e->pid = 0;
}

/* One HTTP/1.1 request to the emulator; the body of the answer goes to `body` (may be NULL).
 * Returns the HTTP status, or -1. */
static int emu_http(const emu_t *e, const char *method, const char *path, char *body, size_t body_len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)e->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    int rl = snprintf(req, sizeof req,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                      method, path);
    if (write(fd, req, (size_t)rl) != rl) {
        close(fd);
        return -1;
    }
    static char resp[1 << 16];
    size_t got = 0;
    ssize_t r;
    while (got + 1 < sizeof resp && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0) got += (size_t)r;
    resp[got] = 0;
    close(fd);
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) return -1;
    if (body && body_len) {
        const char *b = strstr(resp, "\r\n\r\n");
        snprintf(body, body_len, "%s", b ? b + 4 : "");
    }
    return status;
}

/* POST a control request, e.g. emu_ctl(e, "/_emulator/fault?kind=status:503&count=2"). */
static int emu_ctl(const emu_t *e, const char *path) {
    return emu_http(e, "POST", path, NULL, 0);
}

/* One integer field of /_emulator/stats, or -1. */
static long emu_stat(const emu_t *e, const char *field) {
    char body[8192], pat[128];
    if (emu_http(e, "GET", "/_emulator/stats", body, sizeof body) != 200) return -1;
    snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *p = strstr(body, pat);
    if (!p) return -1;
    return strtol(p + strlen(pat), NULL, 10);
}

#endif
