package com.findity.auth;

import com.sun.jna.Memory;
import java.util.logging.Level;

import static com.findity.auth.FindityNative.check;
import static com.findity.auth.FindityNative.cstr;

/**
 * OAuth access tokens for the Findity Expense API, from libfindity (a thin JNA wrapper of its C
 * ABI, findity.h).
 *
 * <pre>{@code
 * String token = FindityAuth.getToken("production", "my-client-id", "my-secret");
 * String user  = FindityAuth.getUserToken("production", "my-client-id", "my-secret", "E1234");
 * }</pre>
 *
 * <p>Caching, renewal ahead of expiry, refresh tokens and single flight (one request per key
 * however many threads ask) are done by the native library, process-wide; every method is
 * thread-safe. {@code baseUrl} is {@code "production"}, {@code "stage"} or
 * {@code "https://host[:port][/prefix]"} ({@code http://} only for loopback hosts).
 *
 * <p>Errors: {@link IllegalArgumentException} (the library's message) for a null, empty or
 * malformed argument, nothing sent; {@link FindityNetworkException},
 * {@link FindityAuthException}, {@link FindityServerException} (all {@link FindityException})
 * when no token could be had. {@link UnsatisfiedLinkError} when libfindity could not be loaded
 * (see {@link #libraryPath()}).
 */
public final class FindityAuth {
    private FindityAuth() {}

    /**
     * An organization access token (OAuth client credentials) for {@code clientId}: the cached
     * one, or a new one when none is valid. Blocks at most {@code timeout_ms} (30 s by default,
     * see {@link #setOption}) when no valid token is cached; a cached token is returned at once.
     */
    public static String getToken(String baseUrl, String clientId, String clientSecret) {
        FindityNative.ensureLoaded();
        final byte[] b = cstr(baseUrl, "baseUrl");
        final byte[] c = cstr(clientId, "clientId");
        final byte[] s = cstr(clientSecret, "clientSecret");
        return FindityNative.tokenCall((buf, len, out) -> FindityNative.findity_get_token(b, c, s, buf, len, out), false);
    }

    /**
     * An access token for one user (employee) of the organization: an authorization grant for
     * {@code userId} (a Findity person id or ExternalSourceID) made with the organization token,
     * then the code exchange. Cached per (baseUrl, clientId, userId). Blocking and errors as
     * {@link #getToken}; an unknown user is a {@link FindityAuthException} (HTTP 400).
     */
    public static String getUserToken(String baseUrl, String clientId, String clientSecret, String userId) {
        FindityNative.ensureLoaded();
        final byte[] b = cstr(baseUrl, "baseUrl");
        final byte[] c = cstr(clientId, "clientId");
        final byte[] s = cstr(clientSecret, "clientSecret");
        final byte[] u = cstr(userId, "userId");
        return FindityNative.tokenCall((buf, len, out) -> FindityNative.findity_user_token(b, c, s, u, buf, len, out), false);
    }

    /**
     * The cached token of {@code userId} ({@code null}: the organization's) if one can be handed
     * out right now, else {@code null}. Never sends a request and never waits: for threads that
     * must not block (event loops, reactive pipelines), which then get the token elsewhere.
     * A token got with another {@code clientSecret} is not handed out ({@code null}).
     */
    public static String cachedToken(String baseUrl, String clientId, String clientSecret, String userId) {
        FindityNative.ensureLoaded();
        final byte[] b = cstr(baseUrl, "baseUrl");
        final byte[] c = cstr(clientId, "clientId");
        final byte[] s = cstr(clientSecret, "clientSecret");
        final byte[] u = cstr(userId, "userId");
        return FindityNative.tokenCall((buf, len, out) -> FindityNative.findity_cached_token(b, c, s, u, buf, len, out), true);
    }

    /**
     * Forget the cached token of {@code userId} ({@code null}: the organization's) only if it is
     * still {@code token}, the one the API answered 401 to: a newer token renewed meanwhile (by
     * another thread that got the same 401) is kept, so N threads rejected with one token cause
     * one renewal. Sends no request; not an error when nothing was cached. {@link FindityHttp}
     * does this for you.
     */
    public static void invalidateToken(String baseUrl, String clientId, String token, String userId) {
        FindityNative.ensureLoaded();
        check(FindityNative.findity_invalidate_token(cstr(baseUrl, "baseUrl"), cstr(clientId, "clientId"),
                cstr(userId, "userId"), cstr(token, "token")));
    }

    /**
     * Forget the cached token of {@code userId} ({@code null}: the organization's), whatever it
     * is; the next call gets a new one. Prefer {@link #invalidateToken} on a 401.
     */
    public static void invalidate(String baseUrl, String clientId, String userId) {
        FindityNative.ensureLoaded();
        check(FindityNative.findity_invalidate(cstr(baseUrl, "baseUrl"), cstr(clientId, "clientId"),
                cstr(userId, "userId")));
    }

    /** Forget every cached token, organization and user, in this process. */
    public static void clearCache() {
        FindityNative.ensureLoaded();
        FindityNative.findity_clear_cache();
    }

    /**
     * Whole seconds until the cached token of {@code userId} ({@code null}: the organization's)
     * expires; 0 when none is cached (or less than a second is left). For display or scheduling
     * only: the library renews tokens by itself. Sends no request.
     */
    public static Long tokenExpiresIn(String baseUrl, String clientId, String userId) {
        FindityNative.ensureLoaded();
        Memory seconds = new Memory(8);
        seconds.setLong(0, 0);
        check(FindityNative.findity_token_expires_in(cstr(baseUrl, "baseUrl"), cstr(clientId, "clientId"),
                cstr(userId, "userId"), seconds));
        return seconds.getLong(0);
    }

    /**
     * Set a process-wide option; {@code null} or {@code ""} restores its default. Options:
     * {@code timeout_ms}, {@code connect_timeout_ms}, {@code ca_file}, {@code proxy},
     * {@code user_agent}, {@code renewal_threads}, {@code idle_ms}, {@code log_level},
     * {@code shared_cache} ({@code "file:/abs/dir"} or {@code "redis://host:port"}: one token
     * request per key across processes). An unknown name or bad value throws
     * {@link IllegalArgumentException} and changes nothing.
     */
    public static void setOption(String name, String value) {
        FindityNative.ensureLoaded();
        check(FindityNative.findity_set_option(cstr(name, "name"), cstr(value == null ? "" : value, "value")));
    }

    /** The version of the loaded libfindity, "MAJOR.MINOR.PATCH". */
    public static String version() {
        FindityNative.ensureLoaded();
        return FindityNative.findity_version().getString(0, "UTF-8");
    }

    /** Where libfindity was loaded from (see the loading order in the README). */
    public static String libraryPath() {
        FindityNative.ensureLoaded();
        return FindityNative.LOADED_FROM;
    }

    /** A snapshot of libfindity's counters. */
    public static FindityStats stats() {
        FindityNative.ensureLoaded();
        Memory out = new Memory(FindityNative.STATS_SIZE);
        out.clear();
        check(FindityNative.findity_stats(out, FindityNative.STATS_SIZE));
        long[] v = new long[FindityNative.STATS_SIZE / 8];
        out.read(0, v, 0, v.length);
        return new FindityStats(v);
    }

    /**
     * Send libfindity's log lines to {@code java.util.logging}, logger {@code "com.findity.auth"}
     * (error: SEVERE, warn: WARNING, info: INFO, debug: FINE), at the library's level
     * {@code level} (FINE or finer: debug; INFO or CONFIG: info; WARNING: warn; SEVERE: error;
     * OFF: off). Lines come from whichever thread the library is on, its background renewal
     * threads included; they name the grant, endpoint and key, tokens only as a fingerprint,
     * never a secret, token or code.
     */
    public static void enableLogging(Level level) {
        FindityNative.ensureLoaded();
        String name;
        int v = level.intValue();
        if (level == Level.OFF) {
            name = "off";
        } else if (v <= Level.FINE.intValue()) {
            name = "debug";
        } else if (v <= Level.INFO.intValue()) {
            name = "info";
        } else if (v <= Level.WARNING.intValue()) {
            name = "warn";
        } else {
            name = "error";
        }
        synchronized (FindityNative.class) {
            FindityNative.logging = true;
            check(FindityNative.findity_set_log_callback(FindityNative.LOG_CALLBACK, null));
            check(FindityNative.findity_set_option(cstr("log_level", "name"), cstr(name, "value")));
        }
    }

    /** {@link #enableLogging(Level)} at INFO: new tokens, invalidations, renewals, fallbacks. */
    public static void enableLogging() {
        enableLogging(Level.INFO);
    }

    /** Stop sending lines to java.util.logging; back to the library's default (stderr, only
     * when {@code $FINDITY_LOG} is set). */
    public static void disableLogging() {
        FindityNative.ensureLoaded();
        synchronized (FindityNative.class) {
            FindityNative.logging = false;
            check(FindityNative.findity_set_log_callback(null, null));
            check(FindityNative.findity_set_option(cstr("log_level", "name"), cstr("", "value")));
        }
    }
}
