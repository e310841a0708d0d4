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
            { "base_url", "baseUrl", "client_id", "clientId", "client_secret", "clientSecret", "user_id", "userId" };
        private static readonly string[] OptionParams = { "name", "name", "value", "value" };

        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        private delegate uint BufferCall(byte[] buf, UIntPtr bufLen, out UIntPtr outLen);

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
                Ensure.Ok(NativeMethods.findity_stats(out s), null);
                return new FindityStats(s);
            }
        }

        /// <summary>
        /// Time left on the cached token of (baseUrl, clientId, userId), or of the organization token
        /// when <paramref name="userId"/> is null, in whole seconds; e.g. to print next to it. Tokens
        /// are renewed by the library, so callers never need this to stay valid. Sends no request.
        /// Throws <see cref="FindityArgumentException"/> when no token is cached for that key.
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
            byte[] b = Encode(baseUrl, "baseUrl");
            byte[] c = Encode(clientId, "clientId");
            byte[] s = Encode(clientSecret, "clientSecret");
            try
            {
                return CallForString(
                    delegate(byte[] buf, UIntPtr len, out UIntPtr outLen)
                    {
                        return NativeMethods.findity_get_token(b, c, s, buf, len, out outLen);
                    },
                    TokenParams);
            }
            finally
            {
                Wipe(s);
            }
        }

        /// <summary>
        /// An access token for one user (employee) of the organization, <paramref name="userId"/>
        /// being a Findity person id or ExternalSourceID; cached per (baseUrl, clientId, userId).
        /// </summary>
        public static string GetUserToken(string baseUrl, string clientId, string clientSecret, string userId)
        {
            byte[] b = Encode(baseUrl, "baseUrl");
            byte[] c = Encode(clientId, "clientId");
            byte[] s = Encode(clientSecret, "clientSecret");
            byte[] u = Encode(userId, "userId");
            try
            {
                return CallForString(
                    delegate(byte[] buf, UIntPtr len, out UIntPtr outLen)
                    {
                        return NativeMethods.findity_user_token(b, c, s, u, buf, len, out outLen);
                    },
                    TokenParams);
            }
            finally
            {
                Wipe(s);
            }
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

        // Calls a (buf, buf_len, out_len) function, growing the buffer on BUFFER_TOO_SMALL (the
        // token stays cached in the library, so the retry sends no request).
        private static string CallForString(BufferCall call, string[] paramNames)
        {
            int size = Math.Max(1, InitialBufferSize);
            for (int attempt = 0; ; attempt++)
            {
                byte[] buf = new byte[size];
                try
                {
                    UIntPtr outLen;
                    uint status = call(buf, (UIntPtr)buf.Length, out outLen);
                    if (status == NativeMethods.FINDITY_OK)
                    {
                        return Encoding.UTF8.GetString(buf, 0, checked((int)outLen.ToUInt64()));
                    }
                    if (status == NativeMethods.FINDITY_ERR_BUFFER_TOO_SMALL && attempt < 3)
                    {
                        size = checked((int)outLen.ToUInt64() + 1);
                        continue;
                    }
                    throw Ensure.FromLastError(status, paramNames);
                }
                finally
                {
                    Wipe(buf);
                }
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
