using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Findity.Auth
{
    /// <summary>
    /// OAuth access tokens for the Findity Expense API, from libfindity. A thin wrapper: caching,
    /// renewal, retries and single-flight requests all happen in the native library, shared by
    /// every thread of the process. Every method is thread-safe. The token methods block (at most
    /// the "timeout_ms" option, 30 s by default) only when no valid token is cached.
    /// </summary>
    /// <remarks>
    /// <c>baseUrl</c> is "production", "stage", or "https://host[:port][/prefix]" ("http://" only
    /// for loopback hosts such as findity-emulator).
    /// Errors: <see cref="FindityArgumentException"/> (an <see cref="ArgumentException"/>) for a
    /// null, empty or malformed argument, before anything is sent; otherwise
    /// <see cref="FindityException"/> (<see cref="FindityNetworkException"/>,
    /// <see cref="FindityAuthException"/>, <see cref="FindityServerException"/>).
    /// <see cref="DllNotFoundException"/> when libfindity can't be loaded.
    /// </remarks>
    public static partial class FindityAuth
    {
        // First buffer for a token; grown to the size libfindity asks for. Tests shrink it.
        internal static int InitialBufferSize = 512;

        private static readonly string[] TokenParams =
            { "base_url", "baseUrl", "client_id", "clientId", "client_secret", "clientSecret", "user_id", "userId", "token", "token" };
        private static readonly string[] OptionParams = { "name", "name", "value", "value" };

        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        // sizeof(FindityStats) as FindityStatsNative declares it, for findity_stats.
        private static readonly UIntPtr StatsSize = (UIntPtr)Marshal.SizeOf(typeof(FindityStatsNative));

        // One thread's buffers for the token calls: the NUL-terminated UTF-8 arguments and the output,
        // reused call after call instead of four arrays and a 512-byte buffer per call, and grown
        // when an argument or token doesn't fit. Per thread because the native call runs while
        // other threads make theirs. The secret's bytes and the token's bytes are wiped after each
        // call, so neither outlives it here.
        private sealed class TokenBuffers
        {
            internal byte[] BaseUrl = new byte[64];
            internal byte[] ClientId = new byte[64];
            internal byte[] ClientSecret = new byte[64];
            internal byte[] UserId = new byte[64];
            internal byte[] Output = new byte[Math.Max(1, InitialBufferSize)];
        }

        // Taken (set to null) for the duration of a call: a token call made from inside another on
        // the same thread (a logger that fetches a token: the library logs on the calling thread,
        // mid-call) gets buffers of its own instead of overwriting ones the outer call is using.
        [ThreadStatic]
        private static TokenBuffers threadBuffers;

        /// <summary>The libfindity version, "MAJOR.MINOR.PATCH".</summary>
        public static string Version
        {
            get
            {
                // A static string owned by the library: read it, never free it.
                return FromUtf8(NativeMethods.findity_version());
            }
        }

        /// <summary>
        /// libfindity's counters since this process started using it: cache hits and misses,
        /// requests by grant, background renewals, fallbacks, retries, failures by status.
        /// Each read is a new snapshot; subtract two to see what a piece of code did.
        /// </summary>
        public static FindityStats Stats
        {
            get
            {
                FindityStatsNative s;
                Ensure.Ok(NativeMethods.findity_stats(out s, StatsSize), null);
                return new FindityStats(s);
            }
        }

        /// <summary>
        /// Time left on the cached token of (baseUrl, clientId, userId), or of the organization token
        /// when <paramref name="userId"/> is null, in whole seconds; e.g. to print next to it. Tokens
        /// are renewed by the library, so callers never need this to stay valid. Sends no request.
        /// <see cref="TimeSpan.Zero"/> when no token is cached for that key (none fetched yet,
        /// invalidated, cleared) or it has less than a second left: either way the next token call
        /// gets a new one. A null, empty or malformed argument throws <see cref="FindityArgumentException"/>.
        /// </summary>
        public static TimeSpan TokenExpiresIn(string baseUrl, string clientId, string userId = null)
        {
            byte[] b = Encode(baseUrl, "baseUrl");
            byte[] c = Encode(clientId, "clientId");
            byte[] u = Encode(userId, "userId");
            ulong seconds;
            Ensure.Ok(NativeMethods.findity_token_expires_in(b, c, u, out seconds), TokenParams);
            return TimeSpan.FromSeconds(seconds);
        }

        /// <summary>
        /// An organization access token (OAuth client credentials) for <paramref name="clientId"/>,
        /// cached per (baseUrl, clientId) and renewed before it expires.
        /// </summary>
        public static string GetToken(string baseUrl, string clientId, string clientSecret)
        {
            return TokenCall(baseUrl, clientId, clientSecret, null, false, false);
        }

        /// <summary>
        /// An access token for one user (employee) of the organization, <paramref name="userId"/>
        /// being a Findity person id or ExternalSourceID; cached per (baseUrl, clientId, userId).
        /// </summary>
        public static string GetUserToken(string baseUrl, string clientId, string clientSecret, string userId)
        {
            return TokenCall(baseUrl, clientId, clientSecret, userId, true, false);
        }

        /// <summary>
        /// The cached token of (baseUrl, clientId, userId), or the organization token when
        /// <paramref name="userId"/> is null, if one can be handed out right now: true and the token,
        /// as <see cref="GetToken"/> / <see cref="GetUserToken"/> would return it without a request
        /// (a token in its renewal window is returned and renewed in the background). Otherwise
        /// false and null: nothing cached, too close to expiry, or got with another
        /// <paramref name="clientSecret"/>. Never sends a request and never blocks: for async code,
        /// which tries this first and calls <see cref="GetToken"/> off the calling thread
        /// (<c>Task.Run</c>) only when it returns false, as <see cref="FindityAuthHandler"/> does.
        /// A null, empty or malformed argument throws <see cref="FindityArgumentException"/>.
        /// </summary>
        public static bool TryGetCachedToken(string baseUrl, string clientId, string clientSecret, string userId,
            out string token)
        {
            token = TokenCall(baseUrl, clientId, clientSecret, userId, userId != null, true);
            return token != null;
        }

        /// <summary>
        /// Forgets the cached token of (baseUrl, clientId, userId), or the organization token when
        /// <paramref name="userId"/> is null. Call it when the API answers 401 to a token from here;
        /// the next call gets a new one. Sends no request; fine when nothing was cached.
        /// </summary>
        public static void Invalidate(string baseUrl, string clientId, string userId = null)
        {
            byte[] b = Encode(baseUrl, "baseUrl");
            byte[] c = Encode(clientId, "clientId");
            byte[] u = Encode(userId, "userId");
            Ensure.Ok(NativeMethods.findity_invalidate(b, c, u), TokenParams);
        }

        /// <summary>
        /// Forgets the cached token of (baseUrl, clientId, userId; null: the organization) only if it
        /// is still <paramref name="token"/>, the one the API answered 401 to. A newer token, renewed
        /// meanwhile by another request that got the same 401, is kept, so N requests rejected with
        /// one token renew it once. Prefer it to <see cref="Invalidate"/>. Sends no request.
        /// </summary>
        public static void InvalidateToken(string baseUrl, string clientId, string token, string userId = null)
        {
            byte[] b = Encode(baseUrl, "baseUrl");
            byte[] c = Encode(clientId, "clientId");
            byte[] u = Encode(userId, "userId");
            if (token == null) throw new ArgumentNullException("token");
            byte[] t = Encode(token, "token");
            Ensure.Ok(NativeMethods.findity_invalidate_token(b, c, u, t), TokenParams);
        }

        /// <summary>Forgets every cached token, organization and user, in this process.</summary>
        public static void ClearCache()
        {
            NativeMethods.findity_clear_cache();
        }

        /// <summary>
        /// Sets a process-wide option; an empty <paramref name="value"/> restores its default.
        /// Options: "timeout_ms" (30000), "connect_timeout_ms" (10000), "ca_file" (extra trusted
        /// PEM certificates), "proxy" ("http://host:port"), "user_agent", "log_level" ("off",
        /// "error", "warn", "info", "debug"; see <see cref="SetLogger"/>). An unknown name or bad
        /// value throws <see cref="FindityArgumentException"/> and changes nothing.
        /// </summary>
        public static void SetOption(string name, string value)
        {
            byte[] n = Encode(name, "name");
            byte[] v = Encode(value, "value");
            Ensure.Ok(NativeMethods.findity_set_option(n, v), OptionParams);
        }

        // findity_get_token, or findity_user_token when `user`; with `cached`, findity_cached_token
        // (userId NULL unless `user`), null for FINDITY_ERR_NOT_CACHED. The hot path: a cached token
        // costs the native call plus encoding the arguments into this thread's buffers and decoding
        // the token's bytes (no delegate, no per-call arrays, no [Out] copy; see NativeMethods).
        private static string TokenCall(string baseUrl, string clientId, string clientSecret, string userId,
            bool user, bool cached)
        {
            if (baseUrl == null || clientId == null || clientSecret == null || (user && userId == null))
            {
                throw TokenCallWithNull(baseUrl, clientId, clientSecret, userId, user, cached);
            }
            TokenBuffers b = threadBuffers ?? new TokenBuffers();
            threadBuffers = null;
            int secretLength = 0;
            try
            {
                EncodeInto(baseUrl, ref b.BaseUrl, "baseUrl");
                EncodeInto(clientId, ref b.ClientId, "clientId");
                secretLength = EncodeInto(clientSecret, ref b.ClientSecret, "clientSecret");
                if (user)
                {
                    EncodeInto(userId, ref b.UserId, "userId");
                }
                for (int attempt = 0; ; attempt++)
                {
                    byte[] buf = b.Output;
                    UIntPtr outLen;
                    uint status;
                    if (cached)
                    {
                        status = user
                            ? NativeMethods.findity_cached_token(ref b.BaseUrl[0], ref b.ClientId[0], ref b.ClientSecret[0],
                                ref b.UserId[0], ref buf[0], (UIntPtr)buf.Length, out outLen)
                            : NativeMethods.findity_cached_token(ref b.BaseUrl[0], ref b.ClientId[0], ref b.ClientSecret[0],
                                IntPtr.Zero, ref buf[0], (UIntPtr)buf.Length, out outLen);
                    }
                    else
                    {
                        status = user
                            ? NativeMethods.findity_user_token(ref b.BaseUrl[0], ref b.ClientId[0], ref b.ClientSecret[0],
                                ref b.UserId[0], ref buf[0], (UIntPtr)buf.Length, out outLen)
                            : NativeMethods.findity_get_token(ref b.BaseUrl[0], ref b.ClientId[0], ref b.ClientSecret[0],
                                ref buf[0], (UIntPtr)buf.Length, out outLen);
                    }
                    if (status == NativeMethods.FINDITY_OK)
                    {
                        int n = checked((int)outLen.ToUInt64());
                        string token = Encoding.UTF8.GetString(buf, 0, n);
                        Array.Clear(buf, 0, n); // only the bytes written: the rest is zero already
                        return token;
                    }
                    if (status == NativeMethods.FINDITY_ERR_BUFFER_TOO_SMALL && attempt < 3)
                    {
                        // The token stays cached in the library: the retry sends no request. The
                        // larger buffer stays this thread's.
                        b.Output = new byte[checked((int)outLen.ToUInt64() + 1)];
                        continue;
                    }
                    if (status == NativeMethods.FINDITY_ERR_NOT_CACHED && cached)
                    {
                        return null;
                    }
                    throw Ensure.FromLastError(status, TokenParams);
                }
            }
            finally
            {
                Array.Clear(b.ClientSecret, 0, secretLength);
                threadBuffers = b;
            }
        }

        // A null argument goes to the library as NULL, which refuses it with its own message (and
        // counts it, like any failed call); the ref-byte overloads can't pass NULL.
        private static Exception TokenCallWithNull(string baseUrl, string clientId, string clientSecret, string userId,
            bool user, bool cached)
        {
            byte[] b = Encode(baseUrl, "baseUrl");
            byte[] c = Encode(clientId, "clientId");
            byte[] s = Encode(clientSecret, "clientSecret");
            byte[] u = Encode(userId, "userId");
            try
            {
                UIntPtr outLen;
                uint status;
                if (cached)
                {
                    status = NativeMethods.findity_cached_token(b, c, s, u, null, UIntPtr.Zero, out outLen);
                }
                else
                {
                    status = user
                        ? NativeMethods.findity_user_token(b, c, s, u, null, UIntPtr.Zero, out outLen)
                        : NativeMethods.findity_get_token(b, c, s, null, UIntPtr.Zero, out outLen);
                }
                return Ensure.FromLastError(status, TokenParams);
            }
            finally
            {
                Wipe(s);
            }
        }

        // s as NUL-terminated UTF-8 in dest, grown when it might not fit; the byte count without the
        // NUL. The same checks as Encode: an embedded NUL or a lone surrogate is refused (on failure
        // dest is wiped: it may hold part of a secret).
        private static int EncodeInto(string s, ref byte[] dest, string paramName)
        {
            if (s.IndexOf('\0') >= 0)
            {
                throw Ensure.Argument(paramName, "contains a NUL character");
            }
            try
            {
                // UTF-8 takes at most 3 bytes per UTF-16 code unit; count exactly only when that
                // bound doesn't fit (a long string for this thread's buffer).
                if ((long)s.Length * 3 >= dest.Length)
                {
                    int needed = StrictUtf8.GetByteCount(s) + 1;
                    if (needed > dest.Length)
                    {
                        dest = new byte[needed];
                    }
                }
                int n = StrictUtf8.GetBytes(s, 0, s.Length, dest, 0);
                dest[n] = 0;
                return n;
            }
            catch (EncoderFallbackException)
            {
                Array.Clear(dest, 0, dest.Length);
                throw Ensure.Argument(paramName, "is not valid Unicode text (a lone surrogate)");
            }
        }

        // NUL-terminated UTF-8 for the native side; null stays null (a NULL pointer, which the
        // library rejects as INVALID_ARGUMENT with its own message). Text that UTF-8 can't carry
        // faithfully (an embedded NUL would silently cut it, a lone surrogate would be replaced)
        // is refused here, without echoing the value.
        private static byte[] Encode(string s, string paramName)
        {
            if (s == null)
            {
                return null;
            }
            if (s.IndexOf('\0') >= 0)
            {
                throw Ensure.Argument(paramName, "contains a NUL character");
            }
            byte[] bytes;
            try
            {
                bytes = new byte[StrictUtf8.GetByteCount(s) + 1];
                StrictUtf8.GetBytes(s, 0, s.Length, bytes, 0);
            }
            catch (EncoderFallbackException)
            {
                throw Ensure.Argument(paramName, "is not valid Unicode text (a lone surrogate)");
            }
            return bytes;
        }

        // A NUL-terminated UTF-8 string owned by the library (never freed here).
        private static string FromUtf8(IntPtr p)
        {
            if (p == IntPtr.Zero)
            {
                return "";
            }
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0)
            {
                n++;
            }
            byte[] bytes = new byte[n];
            Marshal.Copy(p, bytes, 0, n);
            return Encoding.UTF8.GetString(bytes);
        }

        private static void Wipe(byte[] a)
        {
            if (a != null)
            {
                Array.Clear(a, 0, a.Length);
            }
        }
    }
}
