/* findity-token: print a Findity API access token, for shell scripts and support staff.
 *
 *   curl -H "Authorization: Bearer $(findity-token --client-id ID)" https://expense.findity.com/api/v1/...
 *
 * A thin command line over libfindity (findity_get_token / findity_user_token), in the spirit of
 * `gcloud auth print-access-token` and `az account get-access-token`. The client secret is read
 * from FINDITY_CLIENT_SECRET or from stdin, never from argv: every user of the machine can read
 * another process's arguments (ps, /proc/PID/cmdline). `findity-token --help` is the manual.
 */
#define _DEFAULT_SOURCE /* explicit_bzero, gmtime_r */
#include <findity.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
/* Windows (mingw-w64 or MSVC): the console API for a secret typed without echo, the CRT's
 * read/isatty on fd 0, SecureZeroMemory, %LOCALAPPDATA%\findity as the default cache. */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <fcntl.h>
#include <io.h>
#define STDIN_FILENO 0
#define read(fd, buf, n) _read((fd), (buf), (unsigned)(n))
#define isatty _isatty
typedef int read_result_t;
#else
#include <termios.h>
#include <unistd.h>
typedef ssize_t read_result_t;
#endif

#define STR2(x) #x
#define STR(x) STR2(x)
#define TOOL_VERSION STR(FINDITY_VERSION_MAJOR) "." STR(FINDITY_VERSION_MINOR) "." STR(FINDITY_VERSION_PATCH)

/* Exit codes (documented in --help; scripts may rely on them). */
enum {
    EXIT_OK = 0,
    EXIT_OTHER = 1,    /* e.g. stdout or stdin failed */
    EXIT_USAGE = 2,    /* bad option, missing client id or secret, invalid --env / id */
    EXIT_NETWORK = 3,  /* FINDITY_ERR_NETWORK */
    EXIT_AUTH = 4,     /* FINDITY_ERR_AUTH */
    EXIT_SERVER = 5,   /* FINDITY_ERR_SERVER */
    EXIT_INTERNAL = 6, /* FINDITY_ERR_INTERNAL */
};

/* --env as it may be shown: a URL with user:password@ in it is not echoed. */
static const char *shown_env(const char *env) {
    return strchr(env, '@') ? "(a URL with credentials in it, not shown)" : env;
}

#ifdef _WIN32
#define CACHE_DIR_HELP "%LOCALAPPDATA%\\findity."
#else
#define CACHE_DIR_HELP "$XDG_CACHE_HOME/findity, else ~/.cache/findity."
#endif
static const char USAGE[] =
    "Usage: findity-token [OPTIONS]\n"
    "\n"
    "Print an access token for the Findity API on stdout: the organization token (OAuth client\n"
    "credentials), or with --user the token of one user (employee) of the organization.\n"
    "Only the token and a newline go to stdout, so scripts can write:\n"
    "    curl -H \"Authorization: Bearer $(findity-token)\" https://expense.findity.com/api/v1/...\n"
    "\n"
    "The client secret is never taken from the command line (other users see arguments in ps):\n"
    "it is read from FINDITY_CLIENT_SECRET, or as one line from stdin when that is unset or with\n"
    "--secret-stdin; on a terminal it is asked for without echo.\n"
    "\n"
    "Options:\n"
    "  --env ENV          production (https://expense.findity.com), stage\n"
    "                     (https://stage-expense.findity.com), or a base URL\n"
    "                     https://host[:port][/prefix] (http:// only for loopback, e.g. the\n"
    "                     emulator). Default: $FINDITY_ENV, else production.\n"
    "  --client-id ID     the API client id. Default: $FINDITY_CLIENT_ID.\n"
    "  --user ID          print the token of this user (Findity person id or ExternalSourceID)\n"
    "                     instead of the organization token.\n"
    "  --json             print {\"access_token\",\"token_type\",\"expires_in\",\"expires_at\"} (seconds\n"
    "                     left; UTC time) instead of the bare token.\n"
    "  --secret-stdin     read the secret from stdin even when FINDITY_CLIENT_SECRET is set.\n"
    "  --timeout-ms N     give up after N milliseconds, retries included (default 30000).\n"
    "  --ca-file FILE     also trust the CA certificates in this PEM file (TLS-inspecting proxy).\n"
    "  --invalidate TOKEN the API answered 401 to TOKEN: forget it wherever it is cached (this\n"
    "                     run and the cache below), then print a valid token as a plain run\n"
    "                     would. If TOKEN is no longer the cached token (another script renewed\n"
    "                     it already), the current one is printed. Scripts that get the same 401\n"
    "                     and run it at once cause one renewal:\n"
    "                         curl -f -H \"Authorization: Bearer $TOKEN\" \"$URL\" ||\n"
    "                             TOKEN=$(findity-token --invalidate \"$TOKEN\")\n"
    "  --no-cache         do not use (or write) the token cache on disk; ask Findity.\n"
    "  -v, --verbose      log the requests made to stderr, and where the token came from (this\n"
    "                     run's cache, the shared cache, or a new request); never a token or the\n"
    "                     secret.\n"
    "  -h, --help         show this help.\n"
    "  --version          show the versions of findity-token and libfindity.\n"
    "\n"
    "Environment: FINDITY_CLIENT_ID, FINDITY_CLIENT_SECRET, FINDITY_ENV; HTTPS_PROXY, ALL_PROXY and\n"
    "NO_PROXY choose a proxy; FINDITY_LOG=error|warn|info|debug logs to stderr;\n"
    "FINDITY_SHARED_CACHE replaces the cache below (file:/dir, redis://host:port, or empty: none).\n"
    "\n"
    "Cache: tokens are kept between runs, as gcloud and az do, so a cron job or a script that\n"
    "runs findity-token many times makes one token request per token lifetime, and runs at the\n"
    "same time share one request. Records are encrypted with a key derived from the client\n"
    "secret (a wrong secret never gets a token from the cache) in a directory only you can read:\n"
    CACHE_DIR_HELP " --no-cache turns it off.\n"
    "\n"
    "Exit status:\n"
    "  0  the token was printed\n"
    "  1  another failure (stdin or stdout could not be read or written)\n"
    "  2  usage: bad option, no client id or secret, invalid --env, --user or --timeout-ms\n"
    "  3  network: no answer from Findity (DNS, connection, TLS, proxy, timeout)\n"
    "  4  refused: wrong client id or secret, or unknown user (HTTP 400/401/403)\n"
    "  5  Findity failed or answered something unusable (HTTP 5xx, 429, a bad answer)\n"
    "  6  internal error in libfindity: a bug, please report it\n"
    "Errors are explained on stderr, with a hint on what to check.\n"
    "\n"
    "Examples:\n"
    "  export FINDITY_CLIENT_ID=my-client FINDITY_CLIENT_SECRET=...   # or keep it in a file:\n"
    "  findity-token --client-id my-client < ~/.config/findity/secret\n"
    "  findity-token --user E1234 --json\n"
    "  TOKEN=$(findity-token --invalidate \"$TOKEN\")   # after a 401 from the API\n"
    "  findity-token --env stage\n";

static const char *prog = "findity-token";

#ifdef _WIN32
#define NO_CACHE_DIR "none (LOCALAPPDATA is not set)"
/* Windows: "file:%LOCALAPPDATA%\findity" (per user, not roamed); "" if it is not set. */
static void default_cache(char *out, size_t n) {
    const char *local = getenv("LOCALAPPDATA");
    int w = -1;
    if (local && local[0] && local[1] == ':') w = snprintf(out, n, "file:%s\\findity", local);
    if (w < 0 || (size_t)w >= n) out[0] = 0;
}
#else
#define NO_CACHE_DIR "none (neither XDG_CACHE_HOME nor HOME is set)"
/* The default cache: "file:$XDG_CACHE_HOME/findity", else "file:$HOME/.cache/findity"; "" if
 * neither is set (or the path is absurdly long). */
static void default_cache(char *out, size_t n) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int w = -1;
    if (xdg && xdg[0] == '/')
        w = snprintf(out, n, "file:%s/findity", xdg);
    else if (home && home[0] == '/')
        w = snprintf(out, n, "file:%s/.cache/findity", home);
    if (w < 0 || (size_t)w >= n) out[0] = 0;
}
#endif

/* Wiped before exit: the secret, and the token once printed. */
static char secret[4096];

#ifdef _WIN32
static void wipe(void *p, size_t n) { SecureZeroMemory(p, n); }
#else
static void wipe(void *p, size_t n) { explicit_bzero(p, n); }
#endif

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun '%s --help' for usage.\n", prog);
    return EXIT_USAGE;
}

/* ---- reading the secret ------------------------------------------------------------------ */

#ifdef _WIN32
/* The console's input mode without ENABLE_ECHO_INPUT while the secret is typed; a Ctrl+C or a
 * closed console window restores it (the handler runs on its own thread) and wipes the secret. */
static HANDLE console_in;
static DWORD saved_mode;
static volatile LONG echo_off = 0;

static BOOL WINAPI restore_echo_and_die(DWORD event) {
    (void)event;
    if (InterlockedExchange(&echo_off, 0)) SetConsoleMode(console_in, saved_mode);
    SecureZeroMemory(secret, sizeof secret);
    return FALSE; /* the default handler ends the process */
}

static void echo_off_begin(void) {
    console_in = GetStdHandle(STD_INPUT_HANDLE);
    if (console_in != INVALID_HANDLE_VALUE && GetConsoleMode(console_in, &saved_mode)) {
        SetConsoleCtrlHandler(restore_echo_and_die, TRUE);
        if (SetConsoleMode(console_in, saved_mode & ~(DWORD)ENABLE_ECHO_INPUT)) InterlockedExchange(&echo_off, 1);
    }
}

static int echo_off_end(void) {
    if (!InterlockedExchange(&echo_off, 0)) return 0;
    SetConsoleMode(console_in, saved_mode);
    SetConsoleCtrlHandler(restore_echo_and_die, FALSE);
    return 1;
}
#else
static struct termios saved_termios;
static volatile sig_atomic_t echo_off = 0;

static void restore_echo_and_die(int sig) {
    if (echo_off) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
    explicit_bzero(secret, sizeof secret);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void echo_off_begin(void) {
    if (tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
        struct termios t = saved_termios;
        t.c_lflag &= ~(tcflag_t)ECHO;
        signal(SIGINT, restore_echo_and_die);
        signal(SIGTERM, restore_echo_and_die);
        signal(SIGHUP, restore_echo_and_die);
        signal(SIGQUIT, restore_echo_and_die);
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0) echo_off = 1;
    }
}

static int echo_off_end(void) {
    if (!echo_off) return 0;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
    echo_off = 0;
    return 1;
}
#endif

/* Reads one line from stdin into `secret` with read(2), not stdio, so no copy stays behind in a
 * stdio buffer. On a terminal it prompts on stderr and turns echo off while typing.
 * Returns 0, or an exit code after printing why. */
static int read_secret_from_stdin(const char *client_id) {
    int tty = isatty(STDIN_FILENO);
    if (tty) {
        fprintf(stderr, "Client secret for %s: ", client_id);
        fflush(stderr);
        echo_off_begin();
    }
    size_t len = 0;
    int too_long = 0, failed = 0;
    for (;;) {
        char c;
        read_result_t n = read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) failed = errno;
        if (n <= 0 || c == '\n') break;
        if (len + 1 < sizeof secret)
            secret[len++] = c;
        else
            too_long = 1;
        c = 0;
    }
    if (echo_off_end()) fputc('\n', stderr);
    if (len > 0 && secret[len - 1] == '\r') len--; /* a secret file saved with CRLF */
    secret[len] = 0;
    if (failed) {
        fprintf(stderr, "%s: cannot read the client secret from stdin: %s\n", prog, strerror(failed));
        return EXIT_OTHER;
    }
    if (too_long) {
        fprintf(stderr, "%s: the client secret on stdin is longer than %zu bytes\n", prog,
                sizeof secret - 1);
        return EXIT_USAGE;
    }
    if (len == 0) {
        fprintf(stderr,
                "%s: no client secret: stdin %s an empty line.\n"
                "hint: set FINDITY_CLIENT_SECRET, or pipe the secret in: %s < secret-file\n",
                prog, tty ? "gave" : "was empty or began with", prog);
        return EXIT_USAGE;
    }
    return 0;
}

/* ---- errors -------------------------------------------------------------------------------- */

/* Prints the library's last error for a failed call, a hint on what to check, and returns the
 * exit code for the status. `what` says which token was asked for. */
static int library_error(uint32_t rc, const char *what, const char *env, const char *client_id,
                         const char *user_id) {
    char msg[2048] = "";
    findity_last_error(msg, sizeof msg, NULL);
    unsigned http = findity_last_http_status();
    fprintf(stderr, "%s: cannot get %s: %s\n", prog, what, msg[0] ? msg : "(no details)");
    switch (rc) {
    case FINDITY_ERR_INVALID_ARGUMENT:
        fprintf(stderr,
                "hint: --env must be production, stage or a base URL like https://host[:port][/prefix]\n"
                "      (http:// only for loopback addresses); ids must not be empty. --env is \"%s\".\n",
                shown_env(env));
        return EXIT_USAGE;
    case FINDITY_ERR_NETWORK:
        if (strstr(msg, "connection refused")) {
            fprintf(stderr,
                    "hint: nothing listens at that address: start the server, or fix --env (\"%s\").\n",
                    shown_env(env));
            return EXIT_NETWORK;
        }
        fprintf(stderr,
                "hint: Findity at \"%s\" did not answer. Check the network, DNS and the proxy settings\n"
                "      (HTTPS_PROXY, NO_PROXY), --env, and --ca-file behind a TLS-inspecting proxy;\n"
                "      --timeout-ms allows more time.\n",
                shown_env(env));
        return EXIT_NETWORK;
    case FINDITY_ERR_AUTH:
        if (user_id)
            fprintf(stderr,
                    "hint: the organization token was granted, so the client id and secret are right;\n"
                    "      check that user \"%s\" exists in this organization (a Findity person id or\n"
                    "      ExternalSourceID) and that client \"%s\" may act for users.\n",
                    user_id, client_id);
        else
            fprintf(stderr,
                    "hint: Findity refused client \"%s\"%s. Check the client id and the secret\n"
                    "      (FINDITY_CLIENT_SECRET or stdin), and that they belong to --env \"%s\"\n"
                    "      (stage and production have different clients).\n",
                    client_id, http ? "" : " (no HTTP status)", shown_env(env));
        return EXIT_AUTH;
    case FINDITY_ERR_SERVER:
        fprintf(stderr,
                "hint: Findity at \"%s\" failed or answered something unusable%s. Try again later;\n"
                "      check that --env points to the Findity API and not to another web site.\n",
                shown_env(env), http == 429 ? " (too many requests)" : "");
        return EXIT_SERVER;
    case FINDITY_ERR_INTERNAL:
        fprintf(stderr, "hint: this is a bug in libfindity %s; please report it with the message above.\n",
                findity_version());
        return EXIT_INTERNAL;
    default:
        fprintf(stderr, "hint: unexpected status %" PRIu32 " from libfindity %s.\n", rc, findity_version());
        return EXIT_OTHER;
    }
}

/* A process-wide option the library refused (the message says why). */
static int option_error(const char *option, const char *value) {
    char msg[1024] = "";
    findity_last_error(msg, sizeof msg, NULL);
    fprintf(stderr, "%s: invalid %s \"%s\": %s\n", prog, option, value, msg);
    return EXIT_USAGE;
}

/* ---- output -------------------------------------------------------------------------------- */

/* Writes `s` as a JSON string body (tokens are ASCII, but nothing is assumed). */
static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int print_token(const char *token, int json, const char *env, const char *client_id,
                       const char *user_id) {
    if (json) {
        uint64_t secs = 0;
        /* 0: nothing cached (cannot happen right after the call that got the token). */
        int have_expiry = findity_token_expires_in(env, client_id, user_id, &secs) == FINDITY_OK && secs > 0;
        fputs("{\"access_token\":", stdout);
        json_string(stdout, token);
        fputs(",\"token_type\":\"Bearer\"", stdout);
        if (have_expiry) {
            char at[32] = "";
            time_t when = time(NULL) + (time_t)secs;
            struct tm tm;
#ifdef _WIN32
            int utc = gmtime_s(&tm, &when) == 0;
#else
            int utc = gmtime_r(&when, &tm) != NULL;
#endif
            if (utc) strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
            printf(",\"expires_in\":%" PRIu64 ",\"expires_at\":\"%s\"", secs, at);
        }
        fputs("}\n", stdout);
    } else {
        fputs(token, stdout);
        fputc('\n', stdout);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: cannot write the token to stdout: %s\n", prog, strerror(errno));
        return EXIT_OTHER;
    }
    return EXIT_OK;
}

/* Gets the token into a buffer big enough for it (the retry after BUFFER_TOO_SMALL is answered
 * from the cache, no second request). *out is malloc'ed; the caller wipes and frees it. */
static uint32_t get_token(const char *env, const char *client_id, const char *user_id, char **out) {
    size_t cap = 8192, len = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        char *buf = malloc(cap);
        if (!buf) return FINDITY_ERR_INTERNAL;
        uint32_t rc = user_id ? findity_user_token(env, client_id, secret, user_id, buf, cap, &len)
                              : findity_get_token(env, client_id, secret, buf, cap, &len);
        if (rc == FINDITY_OK) {
            *out = buf;
            return rc;
        }
        wipe(buf, cap);
        free(buf);
        if (rc != FINDITY_ERR_BUFFER_TOO_SMALL) return rc;
        cap = len + 1;
    }
    return FINDITY_ERR_BUFFER_TOO_SMALL;
}

/* Where the last token came from, by what the library counted since `before` (--verbose). */
static void say_source(const FindityStats *before, const char *what, const char *cache) {
    FindityStats now;
    memset(&now, 0, sizeof now);
    if (findity_stats(&now, sizeof now) != FINDITY_OK) return;
    const char *from;
    if (now.authorization_code_requests > before->authorization_code_requests)
        from = "a new request (authorization grant and code exchange)";
    else if (now.refresh_token_requests > before->refresh_token_requests &&
             now.client_credentials_requests == before->client_credentials_requests)
        from = "a new request (refresh_token grant)";
    else if (now.client_credentials_requests > before->client_credentials_requests)
        from = "a new request (client_credentials grant)";
    else if (now.store_hits > before->store_hits)
        from = "the shared cache";
    else
        from = "this process's cache";
    fprintf(stderr, "%s: %s from %s%s%s%s\n", prog, what, from,
            now.store_hits > before->store_hits ? " (" : "",
            now.store_hits > before->store_hits ? (strncmp(cache, "file:", 5) ? "redis" : cache) : "",
            now.store_hits > before->store_hits ? ")" : "");
}

/* ---- main ---------------------------------------------------------------------------------- */

/* Matches "--name" (value in the next argument) or "--name=value". */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != 0) return 0;
    if (*i + 1 >= argc) {
        *value = NULL;
        return 1;
    }
    *value = argv[++*i];
    return 1;
}

static int is_secret_option(const char *a) {
    static const char *const names[] = {"--secret", "--client-secret", "--client_secret", "--password"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        size_t n = strlen(names[k]);
        if (strncmp(a, names[k], n) == 0 && (a[n] == 0 || a[n] == '=')) return 1;
    }
    return 0;
}

static int run(int argc, char **argv) {
    const char *env = getenv("FINDITY_ENV");
    const char *client_id = getenv("FINDITY_CLIENT_ID");
    const char *user_id = NULL, *timeout = NULL, *ca_file = NULL, *refused = NULL;
    int json = 0, secret_stdin = 0, verbose = 0, no_cache = 0;
    if (!env || !*env) env = "production";

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE, stdout);
            char where[4096];
            const char *over = getenv("FINDITY_SHARED_CACHE");
            default_cache(where, sizeof where);
            if (over)
                printf("Cache here and now: %s (from FINDITY_SHARED_CACHE)\n",
                       !*over ? "none" : strchr(over, '@') ? "(a URL with credentials in it, not shown)" : over);
            else
                printf("Cache here and now: %s\n", where[0] ? where + 5 : NO_CACHE_DIR);
            return EXIT_OK;
        } else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
            printf("findity-token %s (libfindity %s)\n", TOOL_VERSION, findity_version());
            return EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--no-cache")) {
            no_cache = 1;
        } else if (!strcmp(a, "--secret-stdin")) {
            secret_stdin = 1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (is_secret_option(a)) {
            /* Too late to hide it from ps, but don't leave it in this process's argv either. */
            char *eq = strchr(argv[i], '=');
            if (eq) memset(eq + 1, 'x', strlen(eq + 1));
            if (!eq && i + 1 < argc) memset(argv[i + 1], 'x', strlen(argv[i + 1]));
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
            fprintf(stderr,
                    "%s: refusing %s: a secret on the command line is visible to every user of\n"
                    "this machine (ps, /proc/PID/cmdline) and stays in shell history; if it was a real\n"
                    "secret, consider rotating it. Pass it in the environment or on stdin instead:\n"
                    "    FINDITY_CLIENT_SECRET=... %s --client-id ID\n"
                    "    %s --client-id ID < secret-file\n",
                    prog, name, prog, prog);
            return EXIT_USAGE;
        } else if (option_value(argc, argv, &i, "--env", &v)) {
            if (!v || !*v) return usage_error("--env needs a value: production, stage or a URL%s", "");
            env = v;
        } else if (option_value(argc, argv, &i, "--client-id", &v)) {
            if (!v || !*v) return usage_error("--client-id needs a value%s", "");
            client_id = v;
        } else if (option_value(argc, argv, &i, "--user", &v)) {
            if (!v || !*v) return usage_error("--user needs a user id%s", "");
            user_id = v;
        } else if (option_value(argc, argv, &i, "--invalidate", &v)) {
            if (!v || !*v) return usage_error("--invalidate needs the token the API refused%s", "");
            refused = v;
        } else if (option_value(argc, argv, &i, "--timeout-ms", &v)) {
            if (!v || !*v || strspn(v, "0123456789") != strlen(v))
                return usage_error("--timeout-ms needs a number of milliseconds, not \"%s\"", v ? v : "");
            timeout = v;
        } else if (option_value(argc, argv, &i, "--ca-file", &v)) {
            if (!v || !*v) return usage_error("--ca-file needs a PEM file%s", "");
            ca_file = v;
        } else if (a[0] == '-') {
            /* Only the name: a mistyped --secrt=VALUE must not put the value in a CI log. */
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(a, "="), a);
            return usage_error("unknown option \"%s\"", name);
        } else {
            /* Not echoed: it may be a secret typed where it does not belong. */
            char pos[16];
            snprintf(pos, sizeof pos, "%d", i);
            return usage_error("unexpected argument #%s (options only; the secret is never an argument)", pos);
        }
    }
    if (!client_id || !*client_id)
        return usage_error("no client id: pass --client-id ID or set FINDITY_CLIENT_ID%s", "");

    char ua[96];
    snprintf(ua, sizeof ua, "findity-token/%s libfindity/%s", TOOL_VERSION, findity_version());
    findity_set_option("user_agent", ua);
    if (verbose) findity_set_option("log_level", "info");
    if (timeout && findity_set_option("timeout_ms", timeout) != FINDITY_OK) return option_error("--timeout-ms", timeout);
    if (ca_file && findity_set_option("ca_file", ca_file) != FINDITY_OK) return option_error("--ca-file", ca_file);
    /* The cache never makes the tool fail: one it cannot use is reported and left out. */
    const char *cache_env = getenv("FINDITY_SHARED_CACHE");
    char cache[4096] = "";
    if (!no_cache) {
        if (cache_env) snprintf(cache, sizeof cache, "%s", cache_env);
        else default_cache(cache, sizeof cache);
    }
    if (findity_set_option("shared_cache", cache) != FINDITY_OK) {
        char msg[1024] = "";
        findity_last_error(msg, sizeof msg, NULL);
        fprintf(stderr, "%s: not caching tokens: %s\n", prog, msg);
        findity_set_option("shared_cache", "");
    }

    const char *from_env = getenv("FINDITY_CLIENT_SECRET");
    if (secret_stdin || !from_env || !*from_env) {
        int e = read_secret_from_stdin(client_id);
        if (e) return e;
    } else if (strlen(from_env) >= sizeof secret) {
        fprintf(stderr, "%s: FINDITY_CLIENT_SECRET is longer than %zu bytes\n", prog, sizeof secret - 1);
        return EXIT_USAGE;
    } else {
        strcpy(secret, from_env);
    }

    /* The refused token first: the calls below then neither serve it from this process nor
     * adopt it from the shared cache, and the one that renews replaces it there. */
    if (refused) findity_invalidate_token(env, client_id, user_id, refused);
    FindityStats before;
    memset(&before, 0, sizeof before);
    findity_stats(&before, sizeof before);

    /* For a user token, the organization token first: it tells a wrong secret (exit 4 with a
     * hint about the client) from an unknown user. It is the same request findity_user_token
     * would make, and is cached for it, so this costs nothing extra. */
    char *token = NULL;
    char what[320];
    uint32_t rc = get_token(env, client_id, NULL, &token);
    if (rc != FINDITY_OK) {
        if (user_id)
            snprintf(what, sizeof what, "a token for user \"%s\" (the organization token of client \"%s\", asked first)", user_id, client_id);
        else
            snprintf(what, sizeof what, "an organization token for client \"%s\"", client_id);
        return library_error(rc, what, env, client_id, NULL);
    }
    if (verbose) say_source(&before, "organization token", cache);
    if (user_id) {
        findity_stats(&before, sizeof before);
        wipe(token, strlen(token));
        free(token);
        token = NULL;
        rc = get_token(env, client_id, user_id, &token);
        if (rc != FINDITY_OK) {
            snprintf(what, sizeof what, "a token for user \"%s\"", user_id);
            return library_error(rc, what, env, client_id, user_id);
        }
        if (verbose) say_source(&before, "user token", cache);
    }
    wipe(secret, sizeof secret);
    int e = print_token(token, json, env, client_id, user_id);
    wipe(token, strlen(token));
    free(token);
    return e;
}

int main(int argc, char **argv) {
#ifdef _WIN32
    /* The token and "\n", as on Unix: no "\r" for scripts to strip (PowerShell and cmd's
     * for /f take either). */
    _setmode(_fileno(stdout), _O_BINARY);
#else
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is reported as an error, not a silent death */
#endif
    int e = run(argc, argv);
    wipe(secret, sizeof secret);
    return e;
}
