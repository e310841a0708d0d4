/* Test harness: start the Findity emulator as a child process and drive its control API.
 * Plain sockets, no dependencies; HTTP only (the TLS emulator is not driven through here).
 *
 * With FINDITY_EMULATOR_LAUNCHER=http://127.0.0.1:PORT (scripts/windows/emu-launcher.py), the
 * emulators are started and stopped by that launcher on the host instead of fork/execv: how the
 * suite runs on Windows (under Wine), where it is the only way. */
#ifndef FINDITY_TEST_EMU_H
#define FINDITY_TEST_EMU_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <unistd.h>
typedef SOCKET emu_sock;
#define EMU_BAD_SOCK INVALID_SOCKET
#define closesock closesocket
#define sock_send(fd, b, n) send((fd), (b), (int)(n), 0)
#define sock_recv(fd, b, n) recv((fd), (b), (int)(n), 0)
static void emu_net_init(void) {
    static int done;
    WSADATA w;
    if (!done && WSAStartup(MAKEWORD(2, 2), &w) == 0) done = 1;
}
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
typedef int emu_sock;
#define EMU_BAD_SOCK (-1)
#define closesock close
#define sock_send(fd, b, n) write((fd), (b), (n))
#define sock_recv(fd, b, n) read((fd), (b), (n))
static void emu_net_init(void) {}
#endif

typedef struct {
#ifndef _WIN32
    pid_t pid;
    int stdin_fd; /* closing it makes the emulator exit (--exit-on-stdin-close) */
#endif
    long launched; /* the launcher's id of this emulator, 0 if not started through it */
    char url[256];
    int port;
} emu_t;

static int http_to(int port, const char *method, const char *path, char *body, size_t body_len);

/* The launcher's port (FINDITY_EMULATOR_LAUNCHER=http://127.0.0.1:PORT), or 0. */
static int emu_launcher_port(void) {
    const char *l = getenv("FINDITY_EMULATOR_LAUNCHER");
    const char *colon = l ? strrchr(l, ':') : NULL;
    return colon ? atoi(colon + 1) : 0;
}

/* Start an emulator through the launcher: GET /start?a=ARG... answers "ID URL". */
static int emu_start_launched(emu_t *e, int launcher, const char **argv, int n) {
    static char path[4096];
    size_t w = (size_t)snprintf(path, sizeof path, "/start?");
    for (int i = 0; i < n && w + 8 < sizeof path; i++) {
        w += (size_t)snprintf(path + w, sizeof path - w, "%sa=", i ? "&" : "");
        for (const unsigned char *c = (const unsigned char *)argv[i]; *c && w + 4 < sizeof path; c++) {
            if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("-_.~", *c))
                path[w++] = (char)*c;
            else
                w += (size_t)snprintf(path + w, sizeof path - w, "%%%02X", *c);
        }
        path[w] = 0;
    }
    char body[512] = "";
    if (http_to(launcher, "GET", path, body, sizeof body) != 200 ||
        sscanf(body, "%ld %255s", &e->launched, e->url) != 2) {
        fprintf(stderr, "the emulator launcher did not start an emulator: %s\n", body);
        return -1;
    }
    const char *colon = strrchr(e->url, ':');
    e->port = colon ? atoi(colon + 1) : 0;
    return e->port ? 0 : -1;
}

/* Start `$FINDITY_EMULATOR --port 0 --quiet --exit-on-stdin-close <args...>` (NULL-terminated),
 * or the launcher's emulator with <args...>. */
static int emu_start(emu_t *e, ...) {
    emu_net_init();
    memset(e, 0, sizeof *e);
    int launcher = emu_launcher_port();
    if (launcher) {
        const char *args[32];
        int k = 0;
        va_list ap;
        va_start(ap, e);
        const char *a;
        while ((a = va_arg(ap, const char *)) != NULL && k < 31) args[k++] = a;
        va_end(ap);
        return emu_start_launched(e, launcher, args, k);
    }
#ifdef _WIN32
    fprintf(stderr, "on Windows the emulator runs on the host: set FINDITY_EMULATOR_LAUNCHER (scripts/windows/emu-launcher.py)\n");
    return -1;
#else
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
#endif
}

static void emu_stop(emu_t *e) {
    if (e->launched) {
        char path[64];
        snprintf(path, sizeof path, "/stop?id=%ld", e->launched);
        http_to(emu_launcher_port(), "GET", path, NULL, 0);
        e->launched = 0;
        return;
    }
#ifndef _WIN32
    if (e->pid <= 0) return;
    close(e->stdin_fd);
    kill(e->pid, SIGTERM);
    waitpid(e->pid, NULL, 0);
    e->pid = 0;
#endif
}

/* One HTTP/1.1 request to 127.0.0.1:port; the body of the answer goes to `body` (may be NULL).
 * Returns the HTTP status, or -1. */
static int http_to(int port, const char *method, const char *path, char *body, size_t body_len) {
    emu_net_init();
    emu_sock fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd == EMU_BAD_SOCK) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        closesock(fd);
        return -1;
    }
    char req[4200];
    int rl = snprintf(req, sizeof req,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                      method, path);
    if (sock_send(fd, req, (size_t)rl) != rl) {
        closesock(fd);
        return -1;
    }
    static char resp[1 << 16];
    size_t got = 0;
    long r;
    while (got + 1 < sizeof resp && (r = (long)sock_recv(fd, resp + got, sizeof resp - 1 - got)) > 0) got += (size_t)r;
    resp[got] = 0;
    closesock(fd);
    int status = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) return -1;
    if (body && body_len) {
        const char *b = strstr(resp, "\r\n\r\n");
        snprintf(body, body_len, "%s", b ? b + 4 : "");
    }
    return status;
}

/* One HTTP/1.1 request to the emulator (see http_to). */
static int emu_http(const emu_t *e, const char *method, const char *path, char *body, size_t body_len) {
    return http_to(e->port, method, path, body, body_len);
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
