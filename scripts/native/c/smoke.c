/* make test-native: what a connector does, against the emulator, on a cross-built library.
 *
 *   smoke BASE_URL CLIENT_ID CLIENT_SECRET USER_ID
 *
 * An organization token; the same token again from the cache (a cache hit, no second request);
 * a user token (not the organization's); a wrong secret refused with FINDITY_ERR_AUTH and the
 * HTTP status. Prints one line per check and "smoke: N passed, N failed". */
#include <findity.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (ok) passed++; else failed++;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s BASE_URL CLIENT_ID CLIENT_SECRET USER_ID\n", argv[0]);
        return 2;
    }
    const char *url = argv[1], *id = argv[2], *secret = argv[3], *user = argv[4];
    char org[4096], again[4096], usr[4096], msg[512];
    size_t n = 0, n2 = 0, n3 = 0, m = 0;
    struct FindityStats before, after;

    printf("libfindity %s\n", findity_version());
    uint32_t rc = findity_get_token(url, id, secret, org, sizeof org, &n);
    if (rc != FINDITY_OK) {
        findity_last_error(msg, sizeof msg, &m);
        printf("organization token: error %u: %s\n", rc, msg);
    }
    check(rc == FINDITY_OK && n > 0, "organization token");

    memset(&before, 0, sizeof before);
    memset(&after, 0, sizeof after);
    findity_stats(&before, sizeof before);
    rc = findity_get_token(url, id, secret, again, sizeof again, &n2);
    findity_stats(&after, sizeof after);
    check(rc == FINDITY_OK && n2 == n && memcmp(org, again, n) == 0, "the same token again");
    check(after.cache_hits == before.cache_hits + 1
              && after.client_credentials_requests == before.client_credentials_requests,
          "... from the cache (a hit, no request)");

    rc = findity_user_token(url, id, secret, user, usr, sizeof usr, &n3);
    check(rc == FINDITY_OK && n3 > 0 && (n3 != n || memcmp(usr, org, n) != 0), "user token");

    rc = findity_get_token(url, id, "not-the-secret", org, sizeof org, &n);
    uint16_t status = findity_last_http_status();
    findity_last_error(msg, sizeof msg, &m);
    printf("refused: error %u, HTTP %u: %s\n", rc, status, msg);
    check(rc == FINDITY_ERR_AUTH && (status == 400 || status == 401), "a wrong secret is refused");

    printf("smoke: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
