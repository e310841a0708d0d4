using System;
using System.Runtime.Serialization;
using System.Text;

namespace Findity.Auth
{
    /// <summary>Status codes of libfindity; the numbers are those of include/findity.h.</summary>
    public enum FindityStatus
    {
        /// <summary>FINDITY_OK: success (never carried by an exception).</summary>
        Ok = 0,
        /// <summary>FINDITY_ERR_INVALID_ARGUMENT: a null, empty or malformed argument or option. Nothing was sent.</summary>
        InvalidArgument = 1,
        /// <summary>FINDITY_ERR_BUFFER_TOO_SMALL: handled inside the wrapper, which grows its buffer.</summary>
        BufferTooSmall = 2,
        /// <summary>FINDITY_ERR_NETWORK: no usable HTTP answer (connect failure, TLS failure, timeout, connection cut).</summary>
        Network = 3,
        /// <summary>FINDITY_ERR_AUTH: the server refused (bad client id or secret, unknown user, refused grant).</summary>
        Auth = 4,
        /// <summary>FINDITY_ERR_SERVER: the server failed or answered something unusable (5xx, 429, bad JSON).</summary>
        Server = 5,
        /// <summary>FINDITY_ERR_INTERNAL: a bug in libfindity.</summary>
        Internal = 6,
        /// <summary>FINDITY_ERR_NOT_CACHED: no token can be handed out without a request or a wait
        /// (<see cref="FindityAuth.TryGetCachedToken"/> returns false; never carried by an exception).</summary>
        NotCached = 7,
    }

    /// <summary>
    /// A libfindity call failed at run time (network, server, refused credentials, internal error).
    /// <see cref="Exception.Message"/> is the library's message: what failed, the endpoint, the HTTP
    /// status and the server's error code; it never holds a secret, token or code.
    /// Subclasses per status make <c>catch</c> clauses easy; <see cref="Status"/> says the same.
    /// </summary>
    [Serializable]
    public class FindityException : Exception
    {
        /// <summary>The libfindity status code.</summary>
        public FindityStatus Status { get; private set; }

        /// <summary>HTTP status of the answer behind the error; 0 when there was no HTTP answer.</summary>
        public int HttpStatus { get; private set; }

        /// <summary>Creates an exception (for tests and mocks; the library throws its own).</summary>
        public FindityException(FindityStatus status, int httpStatus, string message)
            : base(message)
        {
            Status = status;
            HttpStatus = httpStatus;
        }

        /// <summary>Deserialization constructor.</summary>
        protected FindityException(SerializationInfo info, StreamingContext context)
            : base(info, context)
        {
            Status = (FindityStatus)info.GetInt32("FindityStatus");
            HttpStatus = info.GetInt32("FindityHttpStatus");
        }

        /// <inheritdoc/>
        public override void GetObjectData(SerializationInfo info, StreamingContext context)
        {
            base.GetObjectData(info, context);
            info.AddValue("FindityStatus", (int)Status);
            info.AddValue("FindityHttpStatus", HttpStatus);
        }
    }

    /// <summary>No usable HTTP answer: connect failure, TLS failure, timeout, connection cut (<see cref="FindityStatus.Network"/>). Usually worth retrying later.</summary>
    [Serializable]
    public class FindityNetworkException : FindityException
    {
        /// <summary>Creates an exception.</summary>
        public FindityNetworkException(int httpStatus, string message) : base(FindityStatus.Network, httpStatus, message) { }
        /// <summary>Deserialization constructor.</summary>
        protected FindityNetworkException(SerializationInfo info, StreamingContext context) : base(info, context) { }
    }

    /// <summary>The server refused: wrong client id or secret, unknown user, refused grant (<see cref="FindityStatus.Auth"/>). Retrying won't help; fix the configuration.</summary>
    [Serializable]
    public class FindityAuthException : FindityException
    {
        /// <summary>Creates an exception.</summary>
        public FindityAuthException(int httpStatus, string message) : base(FindityStatus.Auth, httpStatus, message) { }
        /// <summary>Deserialization constructor.</summary>
        protected FindityAuthException(SerializationInfo info, StreamingContext context) : base(info, context) { }
    }

    /// <summary>The server failed or answered something unusable: 5xx, 429 past the timeout, bad JSON (<see cref="FindityStatus.Server"/>). Usually worth retrying later.</summary>
    [Serializable]
    public class FindityServerException : FindityException
    {
        /// <summary>Creates an exception.</summary>
        public FindityServerException(int httpStatus, string message) : base(FindityStatus.Server, httpStatus, message) { }
        /// <summary>Deserialization constructor.</summary>
        protected FindityServerException(SerializationInfo info, StreamingContext context) : base(info, context) { }
    }

    /// <summary>
    /// An argument or option was rejected (<see cref="FindityStatus.InvalidArgument"/>): null, empty,
    /// malformed, a bad base URL, an unknown option. Nothing was sent. It is an
    /// <see cref="ArgumentException"/>, the .NET idiom for a caller's mistake, and carries
    /// <see cref="Status"/> and <see cref="HttpStatus"/> (always 0) like <see cref="FindityException"/>.
    /// <see cref="ArgumentException.ParamName"/> is set when the message names a parameter.
    /// </summary>
    [Serializable]
    public class FindityArgumentException : ArgumentException
    {
        /// <summary>Always <see cref="FindityStatus.InvalidArgument"/>.</summary>
        public FindityStatus Status { get { return FindityStatus.InvalidArgument; } }

        /// <summary>Always 0: nothing was sent.</summary>
        public int HttpStatus { get { return 0; } }

        /// <summary>Creates an exception.</summary>
        public FindityArgumentException(string message, string paramName) : base(message, paramName) { }

        /// <summary>Deserialization constructor.</summary>
        protected FindityArgumentException(SerializationInfo info, StreamingContext context) : base(info, context) { }
    }

    /// <summary>Turns a failed status into the exception, reading the thread's last error (LibGit2Sharp's Ensure).</summary>
    internal static class Ensure
    {
        /// <summary>
        /// Throws for <paramref name="status"/> unless it is FINDITY_OK. Must run on the thread of the
        /// failed call, right after it: libfindity's last error is thread-local.
        /// <paramref name="paramNames"/> pairs the C parameter names with the C# ones, for ParamName.
        /// </summary>
        internal static void Ok(uint status, string[] paramNames)
        {
            if (status != NativeMethods.FINDITY_OK)
            {
                throw FromLastError(status, paramNames);
            }
        }

        internal static Exception FromLastError(uint status, string[] paramNames)
        {
            // Both reads are thread-local and leave the last error unchanged.
            string message = LastErrorMessage();
            int http = NativeMethods.findity_last_http_status();
            if (message.Length == 0)
            {
                message = "libfindity failed with status " + status;
            }
            switch (status)
            {
                case NativeMethods.FINDITY_ERR_INVALID_ARGUMENT:
                    return new FindityArgumentException(message, ParamNameOf(message, paramNames));
                case NativeMethods.FINDITY_ERR_NETWORK:
                    return new FindityNetworkException(http, message);
                case NativeMethods.FINDITY_ERR_AUTH:
                    return new FindityAuthException(http, message);
                case NativeMethods.FINDITY_ERR_SERVER:
                    return new FindityServerException(http, message);
                case NativeMethods.FINDITY_ERR_BUFFER_TOO_SMALL:
                case NativeMethods.FINDITY_ERR_INTERNAL:
                case NativeMethods.FINDITY_ERR_NOT_CACHED:
                    return new FindityException((FindityStatus)status, http, message);
                default:
                    // A status newer than this wrapper: report it as internal, keep the number in the text.
                    return new FindityException(FindityStatus.Internal, http,
                        message + " (unknown libfindity status " + status + ")");
            }
        }

        /// <summary>The argument error raised by the wrapper itself (text it can't marshal); the value is never echoed.</summary>
        internal static FindityArgumentException Argument(string paramName, string why)
        {
            return new FindityArgumentException(paramName + " " + why, paramName);
        }

        private static string LastErrorMessage()
        {
            byte[] buf = new byte[512];
            for (int attempt = 0; attempt < 4; attempt++)
            {
                UIntPtr len;
                uint st = NativeMethods.findity_last_error(buf, (UIntPtr)buf.Length, out len);
                if (st == NativeMethods.FINDITY_OK)
                {
                    return Encoding.UTF8.GetString(buf, 0, checked((int)len.ToUInt64()));
                }
                if (st != NativeMethods.FINDITY_ERR_BUFFER_TOO_SMALL)
                {
                    break;
                }
                buf = new byte[checked((int)len.ToUInt64() + 1)];
            }
            return "";
        }

        // libfindity's argument messages start with the C parameter name ("client_id is empty",
        // "base_url must ..."). pairs: { "base_url", "baseUrl", "client_id", "clientId", ... }.
        private static string ParamNameOf(string message, string[] pairs)
        {
            if (pairs == null)
            {
                return null;
            }
            for (int i = 0; i + 1 < pairs.Length; i += 2)
            {
                string c = pairs[i];
                if (message.Length > c.Length && message.StartsWith(c, StringComparison.Ordinal)
                    && (message[c.Length] == ' ' || message[c.Length] == ':'))
                {
                    return pairs[i + 1];
                }
            }
            return null;
        }
    }
}
