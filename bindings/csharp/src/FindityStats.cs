using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Text;

namespace Findity.Auth
{
    /// <summary>
    /// A snapshot of libfindity's counters (<see cref="FindityAuth.Stats"/>), since the process
    /// started using the library. Each counter is exact; the set is not one atomic snapshot.
    /// </summary>
    public sealed class FindityStats
    {
        internal FindityStats(FindityStatsNative s)
        {
            CacheHits = (long)s.cache_hits;
            CacheMisses = (long)s.cache_misses;
            ClientCredentialsRequests = (long)s.client_credentials_requests;
            RefreshTokenRequests = (long)s.refresh_token_requests;
            AuthorizationGrantRequests = (long)s.authorization_grant_requests;
            AuthorizationCodeRequests = (long)s.authorization_code_requests;
            BackgroundRefreshes = (long)s.background_refreshes;
            Fallbacks = (long)s.fallbacks;
            Retries = (long)s.retries;
            ThrottlePauses = (long)s.throttle_pauses;
            ThrottleWaits = (long)s.throttle_waits;
            IdleEvictions = (long)s.idle_evictions;
            StoreHits = (long)s.store_hits;
            StoreWrites = (long)s.store_writes;
            StoreLockWaits = (long)s.store_lock_waits;
            StoreErrors = (long)s.store_errors;
            var failures = new Dictionary<FindityStatus, long>();
            foreach (FindityStatus status in Enum.GetValues(typeof(FindityStatus)))
            {
                int i = (int)status;
                failures[status] = s.failures != null && i < s.failures.Length ? (long)s.failures[i] : 0;
            }
            Failures = new ReadOnlyDictionary<FindityStatus, long>(failures);
        }

        /// <summary>Token calls answered from the cache without waiting for a request.</summary>
        public long CacheHits { get; private set; }

        /// <summary>Token calls that made, or waited for, a token request.</summary>
        public long CacheMisses { get; private set; }

        /// <summary>client_credentials requests sent (organization tokens).</summary>
        public long ClientCredentialsRequests { get; private set; }

        /// <summary>refresh_token requests sent.</summary>
        public long RefreshTokenRequests { get; private set; }

        /// <summary>Authorization-grant requests sent (user tokens).</summary>
        public long AuthorizationGrantRequests { get; private set; }

        /// <summary>Code exchanges sent (user tokens).</summary>
        public long AuthorizationCodeRequests { get; private set; }

        /// <summary>Renewals started in the background ahead of expiry.</summary>
        public long BackgroundRefreshes { get; private set; }

        /// <summary>Refresh tokens refused (or of unknown fate) followed by the primary grant.</summary>
        public long Fallbacks { get; private set; }

        /// <summary>Requests repeated after a retryable failure (connect error, 408, 429, 5xx).</summary>
        public long Retries { get; private set; }

        /// <summary>429 (or 503 with Retry-After) answers that paused every token request to a base URL.</summary>
        public long ThrottlePauses { get; private set; }

        /// <summary>Token requests that waited for such a pause, or for pacing, before they were sent.</summary>
        public long ThrottleWaits { get; private set; }

        /// <summary>Cache entries dropped after <c>idle_ms</c> without use.</summary>
        public long IdleEvictions { get; private set; }

        /// <summary>Shared cache: tokens taken from the store, with no request.</summary>
        public long StoreHits { get; private set; }

        /// <summary>Records written to the shared store.</summary>
        public long StoreWrites { get; private set; }

        /// <summary>Renewals that waited for another process holding the key's lock.</summary>
        public long StoreLockWaits { get; private set; }

        /// <summary>Shared-store failures; the call went on process-locally.</summary>
        public long StoreErrors { get; private set; }

        /// <summary>
        /// Failed calls by status, every <see cref="FindityStatus"/> a key:
        /// <c>stats.Failures[FindityStatus.Auth]</c>. <see cref="FindityStatus.Ok"/>,
        /// <see cref="FindityStatus.BufferTooSmall"/> and <see cref="FindityStatus.NotCached"/> are
        /// always 0 (asking for a size, or whether a token is cached, is not a failure).
        /// </summary>
        public IReadOnlyDictionary<FindityStatus, long> Failures { get; private set; }

        /// <summary>"cache_hits=3 cache_misses=1 ... failures[Auth]=1": the non-zero failures only.</summary>
        public override string ToString()
        {
            var sb = new StringBuilder();
            sb.Append("cache_hits=").Append(CacheHits)
                .Append(" cache_misses=").Append(CacheMisses)
                .Append(" client_credentials_requests=").Append(ClientCredentialsRequests)
                .Append(" refresh_token_requests=").Append(RefreshTokenRequests)
                .Append(" authorization_grant_requests=").Append(AuthorizationGrantRequests)
                .Append(" authorization_code_requests=").Append(AuthorizationCodeRequests)
                .Append(" background_refreshes=").Append(BackgroundRefreshes)
                .Append(" fallbacks=").Append(Fallbacks)
                .Append(" retries=").Append(Retries)
                .Append(" throttle_pauses=").Append(ThrottlePauses)
                .Append(" throttle_waits=").Append(ThrottleWaits)
                .Append(" idle_evictions=").Append(IdleEvictions)
                .Append(" store_hits=").Append(StoreHits)
                .Append(" store_writes=").Append(StoreWrites)
                .Append(" store_lock_waits=").Append(StoreLockWaits)
                .Append(" store_errors=").Append(StoreErrors);
            foreach (KeyValuePair<FindityStatus, long> f in Failures)
            {
                if (f.Value != 0)
                {
                    sb.Append(" failures[").Append(f.Key).Append("]=").Append(f.Value);
                }
            }
            return sb.ToString();
        }
    }
}
