using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
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
    /// <para>The native token call blocks while a token is fetched, so it runs on the thread pool
    /// (<see cref="Task.Run(Func{string}, CancellationToken)"/>): an async caller's thread (a UI or
    /// request context) is never blocked. It can't be cancelled once started; it ends within
    /// the "timeout_ms" option.</para>
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

            string sent = await TokenAsync(cancellationToken).ConfigureAwait(false);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", sent);
            HttpResponseMessage response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.Unauthorized)
            {
                return response;
            }

            HttpRequestMessage retry = await CloneAsync(request).ConfigureAwait(false);
            response.Dispose();
            string fresh = await RenewAsync(sent, cancellationToken).ConfigureAwait(false);
            retry.Headers.Authorization = new AuthenticationHeaderValue("Bearer", fresh);
            return await base.SendAsync(retry, cancellationToken).ConfigureAwait(false);
        }

        private Task<string> TokenAsync(CancellationToken cancellationToken)
        {
            return Task.Run(() => Token(), cancellationToken);
        }

        // Invalidate the token the API refused, unless another request already replaced it (then
        // use the replacement): N requests failing together with one stale token renew it once.
        private Task<string> RenewAsync(string refused, CancellationToken cancellationToken)
        {
            return Task.Run(() =>
            {
                string current = Token();
                if (current != refused)
                {
                    return current;
                }
                FindityAuth.Invalidate(baseUrl, clientId, userId);
                return Token();
            }, cancellationToken);
        }

        private string Token()
        {
            return userId == null
                ? FindityAuth.GetToken(baseUrl, clientId, clientSecret)
                : FindityAuth.GetUserToken(baseUrl, clientId, clientSecret, userId);
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
    }
}
