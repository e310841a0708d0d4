package com.findity.auth;

/**
 * libfindity's counters since the process started using the library ({@code struct FindityStats}
 * of findity.h, in Java's casing). Each counter is exact; the set is not one atomic snapshot.
 * Subtract two of them to see what a piece of code did, e.g.
 * {@code after.clientCredentialsRequests - before.clientCredentialsRequests}.
 */
public final class FindityStats {
    /** Token calls answered from the cache without waiting for a request. */
    public final long cacheHits;
    /** Token calls that made, or waited for, a token request. */
    public final long cacheMisses;
    /** client_credentials requests sent (organization tokens). */
    public final long clientCredentialsRequests;
    /** refresh_token requests sent. */
    public final long refreshTokenRequests;
    /** Authorization-grant requests sent (user tokens). */
    public final long authorizationGrantRequests;
    /** Code exchanges sent (user tokens). */
    public final long authorizationCodeRequests;
    /** Renewals started in the background ahead of expiry. */
    public final long backgroundRefreshes;
    /** Refresh tokens refused (or of unknown fate) followed by the primary grant. */
    public final long fallbacks;
    /** Requests repeated after a retryable failure (connect error, 408, 429, 5xx). */
    public final long retries;
    /**
     * Failed calls by status: {@code failures[FindityException.AUTH]} and so on (7 entries;
     * [0] and [2] are always 0). This object's own copy.
     */
    public final long[] failures;
    /** 429 (or 503 with Retry-After) answers that paused every token request to a base URL. */
    public final long throttlePauses;
    /** Token requests that waited for such a pause, or for pacing, before they were sent. */
    public final long throttleWaits;
    /** Cache entries dropped after {@code idle_ms} without use. */
    public final long idleEvictions;
    /** Shared cache (option {@code shared_cache}): tokens taken from the store, no request. */
    public final long storeHits;
    /** Records written to the shared store. */
    public final long storeWrites;
    /** Renewals that waited for another process holding the key's lock. */
    public final long storeLockWaits;
    /** Shared-store failures; the call went on process-locally and did not fail because of it. */
    public final long storeErrors;

    FindityStats(long[] v) { // the struct's uint64_t fields in declaration order
        int i = 0;
        cacheHits = v[i++];
        cacheMisses = v[i++];
        clientCredentialsRequests = v[i++];
        refreshTokenRequests = v[i++];
        authorizationGrantRequests = v[i++];
        authorizationCodeRequests = v[i++];
        backgroundRefreshes = v[i++];
        fallbacks = v[i++];
        retries = v[i++];
        failures = new long[FindityNative.STATS_FAILURES];
        for (int f = 0; f < failures.length; f++) {
            failures[f] = v[i++];
        }
        throttlePauses = v[i++];
        throttleWaits = v[i++];
        idleEvictions = v[i++];
        storeHits = v[i++];
        storeWrites = v[i++];
        storeLockWaits = v[i++];
        storeErrors = v[i++];
    }

    @Override
    public String toString() {
        return "FindityStats{cacheHits=" + cacheHits + ", cacheMisses=" + cacheMisses
                + ", clientCredentialsRequests=" + clientCredentialsRequests
                + ", refreshTokenRequests=" + refreshTokenRequests
                + ", authorizationGrantRequests=" + authorizationGrantRequests
                + ", authorizationCodeRequests=" + authorizationCodeRequests
                + ", backgroundRefreshes=" + backgroundRefreshes + ", fallbacks=" + fallbacks
                + ", retries=" + retries + ", failures=" + java.util.Arrays.toString(failures)
                + ", throttlePauses=" + throttlePauses + ", throttleWaits=" + throttleWaits
                + ", idleEvictions=" + idleEvictions + ", storeHits=" + storeHits
                + ", storeWrites=" + storeWrites + ", storeLockWaits=" + storeLockWaits
                + ", storeErrors=" + storeErrors + "}";
    }
}
