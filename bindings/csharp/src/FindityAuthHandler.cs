using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;

namespace Findity.Auth
{
    /// <summary>
    /// An <see cref="HttpClient"/> handler that puts <c>Authorization: Bearer &lt;token&gt;</c> on
    /// every request: the organization token, or the token of <c>userId</c> when given. When the
    /// API answers 401 it invalidates that token, gets a new one and sends the request once more;
    /// a second 401 is returned to the caller.
    /// </summary>
    /// <remarks>
    /// <para>Without an inner handler an <see cref="HttpClientHandler"/> is created at the first
    /// request unless one was assigned by then, so both <c>new HttpClient(new FindityAuthHandler(...))</c>
    /// and IHttpClientFactory's <c>AddHttpMessageHandler(() =&gt; new FindityAuthHandler(...))</c> work.</para>
    /// <para>When the library holds a token it can hand out without a request or a wait
    /// (<see cref="FindityAuth.TryGetCachedToken"/>), it is taken on the calling thread and the
    /// request goes on at once. Otherwise the token call may block while a token is fetched (at most the
    /// "timeout_ms" option), so it runs on the thread pool, and only one such call at a time per
    /// (baseUrl, clientId, userId) in the process: the other requests for that key wait for it
    /// asynchronously, honouring their <see cref="CancellationToken"/>, then use the token it
    /// cached, or fail with its exception (as the library's own waiters do). A started native call
    /// can't be stopped: a request cancelled during it ends at once; the call finishes in the
    /// background and caches its token.</para>
    /// <para>Request bodies are buffered (<see cref="HttpContent.LoadIntoBufferAsync()"/>) so the
    /// request can be sent a second time.</para>
    /// <para>When no token can be had, <c>SendAsync</c> throws the <see cref="FindityException"/>
    /// (or <see cref="FindityArgumentException"/>) and nothing is sent.</para>
    /// </remarks>
    public class FindityAuthHandler : DelegatingHandler
    {
        private readonly string baseUrl;
        private readonly string clientId;
        private readonly string clientSecret;
        private readonly string userId;
        private readonly object innerGate = new object();

        // One gate per (baseUrl, clientId, userId), shared by the process's handlers.
        private static readonly ConcurrentDictionary<Tuple<string, string, string>, Gate> Gates =
            new ConcurrentDictionary<Tuple<string, string, string>, Gate>();

        // Tests only: called on the thread of each native call that may block (findity_get_token,
        // findity_user_token), before (true) and after (false); not for findity_cached_token.
        internal static Action<bool> TokenCallHook;

        private readonly Gate gate;

        /// <summary>A handler for the organization token, or the token of <paramref name="userId"/>.</summary>
        public FindityAuthHandler(string baseUrl, string clientId, string clientSecret, string userId = null)
        {
            if (baseUrl == null) throw new ArgumentNullException("baseUrl");
            if (clientId == null) throw new ArgumentNullException("clientId");
            if (clientSecret == null) throw new ArgumentNullException("clientSecret");
            this.baseUrl = baseUrl;
            this.clientId = clientId;
            this.clientSecret = clientSecret;
            this.userId = userId;
            gate = Gates.GetOrAdd(Tuple.Create(baseUrl, clientId, userId), k => new Gate());
        }

        /// <summary>As the other constructor, sending through <paramref name="innerHandler"/>.</summary>
        public FindityAuthHandler(HttpMessageHandler innerHandler, string baseUrl, string clientId,
            string clientSecret, string userId = null)
            : this(baseUrl, clientId, clientSecret, userId)
        {
            if (innerHandler == null) throw new ArgumentNullException("innerHandler");
            InnerHandler = innerHandler;
        }

        /// <summary>The base URL tokens are fetched from.</summary>
        public string BaseUrl { get { return baseUrl; } }

        /// <summary>The OAuth client id.</summary>
        public string ClientId { get { return clientId; } }

        /// <summary>The user whose token is sent, or null for the organization token.</summary>
        public string UserId { get { return userId; } }

        /// <inheritdoc/>
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request,
            CancellationToken cancellationToken)
        {
            if (request == null) throw new ArgumentNullException("request");
            EnsureInnerHandler();
            if (request.Content != null)
            {
                await request.Content.LoadIntoBufferAsync().ConfigureAwait(false);
            }

            string sent = CachedToken() ?? await GatedTokenAsync(null, cancellationToken).ConfigureAwait(false);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", sent);
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.Unauthorized)
            {
                return response;
            }

            HttpRequestMessage retry = await CloneAsync(request).ConfigureAwait(false);
            response.Dispose();
            string fresh = await GatedTokenAsync(sent, cancellationToken).ConfigureAwait(false);
            retry.Headers.Authorization = new AuthenticationHeaderValue("Bearer", fresh);
            return await base.SendAsync(retry, cancellationToken).ConfigureAwait(false);
        }

        // The token, from the calling thread, when the library can hand it out without a request
        // or a wait (under its own margin and renewal rules, and only if it was got with this
        // handler's secret); else null. One native call of well under a microsecond; nothing is
        // allocated but the token string.
        private string CachedToken()
        {
            string token;
            return FindityAuth.TryGetCachedToken(baseUrl, clientId, clientSecret, userId, out token) ? token : null;
        }

        // A token call that may block, made on the thread pool by one request at a time per key
        // (the gate): the others wait here without a thread. With `refused` (a token the API
        // answered 401 to) it is invalidated first if it is still the current one; if another
        // request replaced it already, the replacement is used: N requests failing together with
        // one stale token renew it once.
        private async Task<string> GatedTokenAsync(string refused, CancellationToken cancellationToken)
        {
            long seen = gate.Ended;
            await gate.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
            Task<string> call = null;
            try
            {
                // The call this request waited for, if any, left a token, or its failure, which is
                // this request's too when made with the same secret (one timeout for all, not one
                // after another).
                string cached = CachedToken();
                if (cached != null && cached != refused)
                {
                    return cached;
                }
                Exception failed = gate.FailureSince(seen, clientSecret);
                if (failed != null)
                {
                    ExceptionDispatchInfo.Capture(failed).Throw();
                }
                call = Task.Run(() => GatedCall(refused)); // releases the gate when it ends
            }
            finally
            {
                if (call == null)
                {
                    gate.Lock.Release();
                }
            }
            return await WhenDoneOrCancelled(call, cancellationToken).ConfigureAwait(false);
        }

        // On the thread pool, holding the gate.
        private string GatedCall(string refused)
        {
            try
            {
                if (refused != null)
                {
                    // Only if it is still the cached token: not a newer one another request renewed.
                    FindityAuth.InvalidateToken(baseUrl, clientId, refused, userId);
                }
                string token = Token();
                gate.Record(null, null);
                return token;
            }
            catch (Exception e)
            {
                gate.Record(e, clientSecret);
                throw;
            }
            finally
            {
                gate.Lock.Release();
            }
        }

        // The call's outcome, or OperationCanceledException as soon as the request is cancelled
        // (the native call can't be stopped: it goes on, holding the gate, and caches its token).
        private static Task<string> WhenDoneOrCancelled(Task<string> call, CancellationToken cancellationToken)
        {
            if (!cancellationToken.CanBeCanceled || call.IsCompleted)
            {
                return call;
            }
            return WhenDoneOrCancelledAsync(call, cancellationToken);
        }

        private static async Task<string> WhenDoneOrCancelledAsync(Task<string> call, CancellationToken cancellationToken)
        {
            var cancelled = new TaskCompletionSource<bool>();
            using (cancellationToken.Register(c => ((TaskCompletionSource<bool>)c).TrySetResult(true), cancelled))
            {
                if (await Task.WhenAny(call, cancelled.Task).ConfigureAwait(false) != call)
                {
                    // Nobody awaits the abandoned call: observe its exception, if any.
                    Task observed = call.ContinueWith(t => t.Exception, CancellationToken.None,
                        TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
                        TaskScheduler.Default);
                    GC.KeepAlive(observed);
                    throw new OperationCanceledException(cancellationToken);
                }
            }
            return await call.ConfigureAwait(false);
        }

        private string Token()
        {
            Action<bool> hook = TokenCallHook;
            if (hook != null) hook(true);
            try
            {
                return userId == null
                    ? FindityAuth.GetToken(baseUrl, clientId, clientSecret)
                    : FindityAuth.GetUserToken(baseUrl, clientId, clientSecret, userId);
            }
            finally
            {
                if (hook != null) hook(false);
            }
        }

        private void EnsureInnerHandler()
        {
            if (InnerHandler != null) return;
            lock (innerGate)
            {
                if (InnerHandler == null)
                {
                    InnerHandler = new HttpClientHandler();
                }
            }
        }

        // An HttpRequestMessage can be sent only once: copy method, URI, version, headers,
        // properties and the (buffered) content.
        private static async Task<HttpRequestMessage> CloneAsync(HttpRequestMessage request)
        {
            HttpRequestMessage clone = new HttpRequestMessage(request.Method, request.RequestUri);
            clone.Version = request.Version;
            foreach (KeyValuePair<string, IEnumerable<string>> h in request.Headers)
            {
                clone.Headers.TryAddWithoutValidation(h.Key, h.Value);
            }
            foreach (KeyValuePair<string, object> p in request.Properties)
            {
                clone.Properties[p.Key] = p.Value;
            }
            if (request.Content != null)
            {
                byte[] body = await request.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                ByteArrayContent content = new ByteArrayContent(body);
                foreach (KeyValuePair<string, IEnumerable<string>> h in request.Content.Headers)
                {
                    content.Headers.TryAddWithoutValidation(h.Key, h.Value);
                }
                clone.Content = content;
            }
            return clone;
        }

        // Lets one token call that may block run at a time for a key; records how it ended. Only
        // the holder of Lock writes or reads `failure` (the semaphore orders those accesses).
        private sealed class Gate
        {
            internal readonly SemaphoreSlim Lock = new SemaphoreSlim(1, 1);
            private long ended;
            private Exception failure;
            private string failureSecret; // the secret the failed call was made with

            // Gated calls ended so far.
            internal long Ended { get { return Interlocked.Read(ref ended); } }

            internal void Record(Exception e, string secret)
            {
                failure = e;
                failureSecret = e == null ? null : secret;
                Interlocked.Increment(ref ended);
            }

            // The exception of the last call, if one ended since `seen` and failed with `secret`.
            internal Exception FailureSince(long seen, string secret)
            {
                return Ended != seen && failure != null && string.Equals(failureSecret, secret, StringComparison.Ordinal)
                    ? failure
                    : null;
            }
        }
    }
}
