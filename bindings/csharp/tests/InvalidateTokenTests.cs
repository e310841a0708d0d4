// findity_invalidate_token through FindityAuth.InvalidateToken and the handler's 401 path.
using System;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using Findity.Auth;

namespace Findity.Auth.Tests
{
    internal static partial class Tests
    {
        private static void TestInvalidateTokenKeepsANewerToken()
        {
            string old = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            FindityAuth.InvalidateToken(Emu.Url, ClientId, old);
            string renewed = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Check(renewed != old, "the rejected token was dropped");
            FindityAuth.InvalidateToken(Emu.Url, ClientId, old); // stale: the renewed one stays
            Eq(renewed, FindityAuth.GetToken(Emu.Url, ClientId, Secret), "the newer token is kept");
            Eq(1L, Emu.Stat("refresh_token") + Emu.Stat("client_credentials") - 1, "one renewal");
            try
            {
                FindityAuth.InvalidateToken(Emu.Url, ClientId, null);
                Check(false, "a null token throws");
            }
            catch (ArgumentNullException) { }
        }

        // Holds the first `n` requests until all n have their (old) token, so all of them are sent
        // with it and answered 401 together.
        private sealed class Together : DelegatingHandler
        {
            private readonly int n;
            private int arrived;
            private readonly TaskCompletionSource<bool> all = new TaskCompletionSource<bool>();

            public Together(int n) : base(new HttpClientHandler { UseProxy = false }) { this.n = n; }

            protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage r, CancellationToken ct)
            {
                int i = Interlocked.Increment(ref arrived);
                if (i <= n)
                {
                    if (i == n) all.TrySetResult(true);
                    await all.Task.ConfigureAwait(false);
                }
                return await base.SendAsync(r, ct).ConfigureAwait(false);
            }
        }

        private static void TestHandler50Concurrent401sWithOneTokenRenewOnce()
        {
            const int n = 50;
            string old = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Emu.Post("/_emulator/revoke?what=access"); // every request with `old` is answered 401
            long before = Emu.Stat("refresh_token") + Emu.Stat("client_credentials");
            using (var client = Client(new FindityAuthHandler(new Together(n), Emu.Url, ClientId, Secret)))
            {
                var answers = Enumerable.Range(0, n)
                    .Select(_ => Task.Run(() => client.GetAsync(Emu.Url + "/api/v1/me")))
                    .ToArray();
                Task.WaitAll(answers);
                foreach (var a in answers)
                {
                    Eq(HttpStatusCode.OK, a.Result.StatusCode, "status after the one resend");
                    a.Result.Dispose();
                }
            }
            Eq(2L * n, Emu.Stat("api_requests"), "api_requests: n 401s + n resends");
            Eq(1L, Emu.Stat("refresh_token") + Emu.Stat("client_credentials") - before, "renewals");
            Check(FindityAuth.GetToken(Emu.Url, ClientId, Secret) != old, "renewed");
        }
    }
}
