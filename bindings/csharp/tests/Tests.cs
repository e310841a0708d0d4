// Tests of the C# wrapper against findity-emulator. Compiled with the library sources by
// scripts/test-csharp.sh (mcs) and run with mono. Environment: FINDITY_EMULATOR (path of
// findity-emulator), FINDITY_HEADER (include/findity.h, optional). Each test is a static method
// named Test* of the partial class Tests (Tests.cs, StatsAndLoggingTests.cs); prints
// "ok name" / "FAIL name: why" and closes with "N passed, M failed".

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Findity.Auth;

namespace Findity.Auth.Tests
{
    internal sealed class TestFailure : Exception
    {
        public TestFailure(string message) : base(message) { }
    }

    /// <summary>findity-emulator as a child process; exits when its stdin closes.</summary>
    internal sealed class Emulator : IDisposable
    {
        private readonly Process process;
        private readonly HttpClient http;
        public readonly string Url;

        public Emulator(string path, string clientId, string secret)
        {
            var psi = new ProcessStartInfo(path,
                "--port 0 --quiet --exit-on-stdin-close --client " + clientId + ":" + secret
                + " --unknown-users unknown-bob,unknown-1,unknown-3,unknown-5,unknown-7");
            psi.UseShellExecute = false;
            psi.RedirectStandardInput = true;
            psi.RedirectStandardOutput = true;
            process = Process.Start(psi);
            Task<string> line = process.StandardOutput.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromSeconds(15)) || line.Result == null || !line.Result.StartsWith("http://"))
            {
                try { process.Kill(); } catch (Exception) { }
                throw new Exception("findity-emulator did not print its URL");
            }
            Url = line.Result.Trim();
            http = new HttpClient(new HttpClientHandler { UseProxy = false });
            http.Timeout = TimeSpan.FromSeconds(30);
        }

        public string Post(string pathAndQuery)
        {
            using (var r = http.PostAsync(Url + pathAndQuery, new StringContent("")).GetAwaiter().GetResult())
            {
                string body = r.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                if (!r.IsSuccessStatusCode)
                    throw new Exception("emulator " + pathAndQuery + " answered " + (int)r.StatusCode + ": " + body);
                return body;
            }
        }

        public void Reset() { Post("/_emulator/reset"); }

        public Dictionary<string, long> Stats()
        {
            string json = http.GetStringAsync(Url + "/_emulator/stats").GetAwaiter().GetResult();
            var d = new Dictionary<string, long>();
            foreach (Match m in Regex.Matches(json, "\"([a-z_]+)\"\\s*:\\s*(\\d+)"))
                d[m.Groups[1].Value] = long.Parse(m.Groups[2].Value);
            return d;
        }

        public long Stat(string name)
        {
            long v;
            return Stats().TryGetValue(name, out v) ? v : 0;
        }

        /// <summary>GET a resource path with a bearer token: (status, body).</summary>
        public KeyValuePair<int, string> Api(string path, string token)
        {
            var req = new HttpRequestMessage(HttpMethod.Get, Url + path);
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            using (var r = http.SendAsync(req).GetAwaiter().GetResult())
                return new KeyValuePair<int, string>((int)r.StatusCode,
                    r.Content.ReadAsStringAsync().GetAwaiter().GetResult());
        }

        public void Dispose()
        {
            http.Dispose();
            try { process.StandardInput.Close(); } catch (Exception) { }
            if (!process.WaitForExit(5000))
            {
                try { process.Kill(); } catch (Exception) { }
            }
        }
    }

    /// <summary>A loopback resource server that records requests and answers from a script.</summary>
    internal sealed class ResourceServer : IDisposable
    {
        public sealed class Seen
        {
            public string Method, Authorization, Trace, ContentType, Body;
        }

        private readonly HttpListener listener = new HttpListener();
        private readonly Thread thread;
        private readonly Func<int, int> statusFor; // request index (0-based) -> HTTP status
        public readonly List<Seen> Requests = new List<Seen>();
        public readonly string Url;

        public ResourceServer(Func<int, int> statusFor)
        {
            this.statusFor = statusFor;
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            Url = "http://127.0.0.1:" + port + "/";
            listener.Prefixes.Add(Url);
            listener.Start();
            thread = new Thread(Serve) { IsBackground = true };
            thread.Start();
        }

        private void Serve()
        {
            while (listener.IsListening)
            {
                HttpListenerContext ctx;
                try { ctx = listener.GetContext(); }
                catch (Exception) { return; }
                var seen = new Seen();
                seen.Method = ctx.Request.HttpMethod;
                seen.Authorization = ctx.Request.Headers["Authorization"];
                seen.Trace = ctx.Request.Headers["X-Trace"];
                seen.ContentType = ctx.Request.ContentType;
                using (var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8))
                    seen.Body = reader.ReadToEnd();
                int index;
                lock (Requests)
                {
                    index = Requests.Count;
                    Requests.Add(seen);
                }
                int status = statusFor(index);
                byte[] body = Encoding.UTF8.GetBytes(status == 200 ? "done " + index : "no");
                ctx.Response.StatusCode = status;
                ctx.Response.ContentLength64 = body.Length;
                ctx.Response.OutputStream.Write(body, 0, body.Length);
                ctx.Response.Close();
            }
        }

        public void Dispose()
        {
            try { listener.Stop(); listener.Close(); } catch (Exception) { }
        }
    }

    internal static partial class Tests
    {
        private const string ClientId = "demo-client";
        private static string Secret;
        private static Emulator Emu;
        private static string HeaderPath;

        // ---------------------------------------------------------------- runner

        public static int Main(string[] args)
        {
            string emulatorPath = Environment.GetEnvironmentVariable("FINDITY_EMULATOR");
            HeaderPath = Environment.GetEnvironmentVariable("FINDITY_HEADER");
            if (string.IsNullOrEmpty(emulatorPath))
            {
                Console.WriteLine("FINDITY_EMULATOR is not set");
                Console.WriteLine("0 passed, 1 failed");
                return 1;
            }
            Secret = "s3cret-" + Guid.NewGuid().ToString("N");
            var sw = Stopwatch.StartNew();
            int passed = 0, failed = 0;
            using (Emu = new Emulator(emulatorPath, ClientId, Secret))
            {
                var tests = typeof(Tests).GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
                    .Where(m => m.Name.StartsWith("Test") && m.GetParameters().Length == 0)
                    .OrderBy(m => m.MetadataToken)
                    .ToList();
                foreach (MethodInfo m in tests)
                {
                    if (args.Length > 0 && !args.Any(a => m.Name.Contains(a))) continue;
                    string name = m.Name.Substring(4);
                    string why = Run(m);
                    if (why == null)
                    {
                        passed++;
                        Console.WriteLine("ok " + name);
                    }
                    else
                    {
                        failed++;
                        Console.WriteLine("FAIL " + name + ": " + why.Replace('\n', ' '));
                        if (why.StartsWith("timed out")) break; // a stuck thread: stop here
                    }
                }
            }
            Console.WriteLine("# " + sw.Elapsed.TotalSeconds.ToString("0.0") + " s");
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 && passed > 0 ? 0 : 1;
        }

        private static string Run(MethodInfo m)
        {
            string why = null;
            var t = new Thread(() =>
            {
                try
                {
                    Fresh();
                    m.Invoke(null, null);
                }
                catch (TargetInvocationException e)
                {
                    Exception inner = e.InnerException;
                    why = inner is TestFailure ? inner.Message : inner.GetType().Name + ": " + inner.Message;
                }
                catch (Exception e)
                {
                    why = "setup: " + e.GetType().Name + ": " + e.Message;
                }
            });
            t.IsBackground = true;
            t.Start();
            if (!t.Join(TimeSpan.FromSeconds(60))) return "timed out after 60 s";
            return why;
        }

        // Every test starts on a fresh emulator and an empty cache with default options.
        private static void Fresh()
        {
            Emu.Reset();
            FindityAuth.ClearCache();
            foreach (var o in new[] { "timeout_ms", "connect_timeout_ms", "ca_file", "proxy", "user_agent" })
                FindityAuth.SetOption(o, "");
            FindityAuth.InitialBufferSize = 512;
            FindityAuth.SetLogger(null);
            FindityAuthHandler.TokenCallHook = null;
        }

        // ---------------------------------------------------------------- asserts

        private static void Check(bool cond, string what)
        {
            if (!cond) throw new TestFailure(what);
        }

        private static void Eq<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new TestFailure(what + ": expected " + expected + ", got " + actual);
        }

        private static T Throws<T>(Action a, string what) where T : Exception
        {
            try
            {
                a();
            }
            catch (T e)
            {
                return e;
            }
            catch (Exception e)
            {
                throw new TestFailure(what + ": expected " + typeof(T).Name + ", got " + e.GetType().Name + ": " + e.Message);
            }
            throw new TestFailure(what + ": expected " + typeof(T).Name + ", nothing was thrown");
        }

        private static void NoTraffic(string what)
        {
            var s = Emu.Stats();
            Eq(0L, s["token_requests"], what + ": token_requests");
            Eq(0L, s["authorization_grant"], what + ": authorization_grant");
        }

        private static HttpClient Client(HttpMessageHandler h)
        {
            var c = new HttpClient(h);
            c.Timeout = TimeSpan.FromSeconds(30);
            return c;
        }

        private static HttpResponseMessage Get(HttpClient c, string url)
        {
            return c.GetAsync(url).GetAwaiter().GetResult();
        }

        // ---------------------------------------------------------------- version and codes

        private static void TestVersionIsTheLibrarysVersion()
        {
            string v = FindityAuth.Version;
            Check(Regex.IsMatch(v, @"^\d+\.\d+\.\d+$"), "version format: " + v);
            if (!string.IsNullOrEmpty(HeaderPath))
            {
                string h = File.ReadAllText(HeaderPath);
                Func<string, string> def = n => Regex.Match(h, "#define " + n + @"\s+(\d+)").Groups[1].Value;
                Eq(def("FINDITY_VERSION_MAJOR") + "." + def("FINDITY_VERSION_MINOR") + "." + def("FINDITY_VERSION_PATCH"),
                    v, "version vs findity.h");
            }
        }

        private static void TestStatusEnumMirrorsTheHeader()
        {
            var names = new Dictionary<string, FindityStatus>
            {
                { "FINDITY_OK", FindityStatus.Ok },
                { "FINDITY_ERR_INVALID_ARGUMENT", FindityStatus.InvalidArgument },
                { "FINDITY_ERR_BUFFER_TOO_SMALL", FindityStatus.BufferTooSmall },
                { "FINDITY_ERR_NETWORK", FindityStatus.Network },
                { "FINDITY_ERR_AUTH", FindityStatus.Auth },
                { "FINDITY_ERR_SERVER", FindityStatus.Server },
                { "FINDITY_ERR_INTERNAL", FindityStatus.Internal },
                { "FINDITY_ERR_NOT_CACHED", FindityStatus.NotCached },
            };
            Eq(8, Enum.GetValues(typeof(FindityStatus)).Length, "enum size");
            Eq((uint)NativeMethods.FINDITY_ERR_NOT_CACHED, (uint)FindityStatus.NotCached, "NotCached");
            Eq(4, (int)FindityStatus.Auth, "Auth");
            Eq((uint)NativeMethods.FINDITY_ERR_SERVER, (uint)FindityStatus.Server, "Server");
            if (string.IsNullOrEmpty(HeaderPath)) return;
            string h = File.ReadAllText(HeaderPath);
            foreach (var kv in names)
            {
                var m = Regex.Match(h, "#define " + kv.Key + @"\s+(\d+)");
                Check(m.Success, kv.Key + " in findity.h");
                Eq(int.Parse(m.Groups[1].Value), (int)kv.Value, kv.Key);
            }
        }

        // ---------------------------------------------------------------- tokens

        private static void TestGetTokenIsCachedAndAccepted()
        {
            string t1 = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            string t2 = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Check(t1.Length > 0, "token is empty");
            Eq(t1, t2, "cached token");
            Eq(1L, Emu.Stat("token_requests"), "token_requests");
            Eq(1L, Emu.Stat("client_credentials"), "client_credentials");
            var r = Emu.Api("/api/v1/me", t1);
            Eq(200, r.Key, "resource status");
            Check(r.Value.Contains("org:" + ClientId), "subject: " + r.Value);
        }

        private static void TestBufferGrowsWithoutNewRequest()
        {
            // The size query of the C ABI itself: NULL buffer, length 0.
            UIntPtr needed;
            byte[] b = Encoding.UTF8.GetBytes(Emu.Url + "\0"), c = Encoding.UTF8.GetBytes(ClientId + "\0"),
                s = Encoding.UTF8.GetBytes(Secret + "\0");
            uint st = NativeMethods.findity_get_token(b, c, s, null, UIntPtr.Zero, out needed);
            Eq(NativeMethods.FINDITY_ERR_BUFFER_TOO_SMALL, st, "status of a size query");
            Check(needed.ToUInt64() > 4, "needed length " + needed);
            // The wrapper from a 4-byte buffer: grows to the size asked for, no second request.
            FindityAuth.InitialBufferSize = 4;
            string t = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Eq((int)needed.ToUInt64(), Encoding.UTF8.GetByteCount(t), "token length");
            string u = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            Check(u.Length > 4 && u != t, "user token through a small buffer");
            Eq(1L, Emu.Stat("client_credentials"), "client_credentials");
            Eq(2L, Emu.Stat("token_requests"), "token_requests (org + code exchange)");
            Eq(200, Emu.Api("/api/v1/me", t).Key, "grown token is accepted");
            // A long error message through a small buffer too.
            var e = Throws<FindityAuthException>(() => FindityAuth.GetToken(Emu.Url, "other-client", "x"), "bad client");
            Check(e.Message.Length > 20, "message read in full: " + e.Message);
        }

        private static void TestGetUserTokenIsPerUserAndCached()
        {
            string org = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            string alice = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            string again = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            string bob = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "bob");
            Check(alice != org && bob != alice, "distinct tokens");
            Eq(alice, again, "cached user token");
            var s = Emu.Stats();
            Eq(1L, s["client_credentials"], "client_credentials");
            Eq(2L, s["authorization_grant"], "authorization_grant");
            Eq(2L, s["authorization_code"], "authorization_code");
            var r = Emu.Api("/api/v1/me", alice);
            Eq(200, r.Key, "resource status");
            Check(r.Value.Contains("user:alice"), "subject: " + r.Value);
        }

        private static void TestTryGetCachedTokenColdSendsNothing()
        {
            FindityStats before = FindityAuth.Stats;
            string token;
            Check(!FindityAuth.TryGetCachedToken(Emu.Url, ClientId, Secret, null, out token), "organization: nothing cached");
            Eq(null, token, "token when false");
            Check(!FindityAuth.TryGetCachedToken(Emu.Url, ClientId, Secret, "alice", out token), "alice: nothing cached");
            NoTraffic("TryGetCachedToken");
            FindityStats after = FindityAuth.Stats;
            Eq(before.Failures.Values.Sum(), after.Failures.Values.Sum(), "NotCached is not a failure");
            Eq(0L, after.Failures[FindityStatus.NotCached], "failures[NotCached]");
        }

        private static void TestTryGetCachedTokenAfterGetToken()
        {
            string org = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            string alice = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            var sent = Emu.Stats();
            string token;
            Check(FindityAuth.TryGetCachedToken(Emu.Url, ClientId, Secret, null, out token), "organization cached");
            Eq(org, token, "organization token");
            Check(FindityAuth.TryGetCachedToken(Emu.Url, ClientId, Secret, "alice", out token), "alice cached");
            Eq(alice, token, "alice's token");
            Check(!FindityAuth.TryGetCachedToken(Emu.Url, ClientId, Secret, "bob", out token), "bob has none");
            FindityAuth.InitialBufferSize = 4;
            string small = null;
            var t = new Thread(() => FindityAuth.TryGetCachedToken(Emu.Url, ClientId, Secret, null, out small));
            t.Start();
            t.Join();
            Eq(org, small, "through a 4-byte first buffer (a fresh thread)");
            FindityAuth.Invalidate(Emu.Url, ClientId);
            Check(!FindityAuth.TryGetCachedToken(Emu.Url, ClientId, Secret, null, out token), "after Invalidate");
            Eq(sent["token_requests"], Emu.Stat("token_requests"), "token_requests");
            Eq(sent["authorization_grant"], Emu.Stat("authorization_grant"), "authorization_grant");
        }

        private static void TestTryGetCachedTokenIsFalseForAnotherSecret()
        {
            string org = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            string token;
            Check(!FindityAuth.TryGetCachedToken(Emu.Url, ClientId, "wrong-" + Guid.NewGuid().ToString("N"), null, out token),
                "another secret");
            Eq(null, token, "token when false");
            Check(FindityAuth.TryGetCachedToken(Emu.Url, ClientId, Secret, null, out token), "the right secret");
            Eq(org, token, "organization token");
            Eq(1L, Emu.Stat("token_requests"), "token_requests");
        }

        private static void TestTryGetCachedTokenArgumentErrors()
        {
            string token;
            Eq("clientId", Throws<FindityArgumentException>(() => FindityAuth.TryGetCachedToken(Emu.Url, null, Secret, null, out token), "null clientId").ParamName, "ParamName");
            Eq("clientSecret", Throws<FindityArgumentException>(() => FindityAuth.TryGetCachedToken(Emu.Url, ClientId, null, null, out token), "null clientSecret").ParamName, "ParamName");
            Eq("baseUrl", Throws<FindityArgumentException>(() => FindityAuth.TryGetCachedToken("ftp://example.com", ClientId, Secret, null, out token), "bad baseUrl").ParamName, "ParamName");
            Throws<FindityArgumentException>(() => FindityAuth.TryGetCachedToken(Emu.Url, ClientId, Secret, "", out token), "empty userId");
            NoTraffic("argument errors");
        }

        private static void TestInvalidateOrganizationToken()
        {
            string t1 = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            FindityAuth.Invalidate(Emu.Url, ClientId);
            string t2 = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Check(t1 != t2, "new token after Invalidate");
            Eq(1L, Emu.Stat("client_credentials"), "client_credentials");
            Eq(1L, Emu.Stat("refresh_token"), "refresh_token");
            Eq(200, Emu.Api("/api/v1/me", t2).Key, "new token accepted");
        }

        private static void TestInvalidateUserTokenOnly()
        {
            string org = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            string u1 = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            FindityAuth.Invalidate(Emu.Url, ClientId, "alice");
            string u2 = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            Check(u1 != u2, "new user token");
            Eq(org, FindityAuth.GetToken(Emu.Url, ClientId, Secret), "organization token kept");
            Eq(1L, Emu.Stat("client_credentials"), "client_credentials");
            var r = Emu.Api("/api/v1/me", u2);
            Check(r.Key == 200 && r.Value.Contains("user:alice"), "renewed user token: " + r.Key + " " + r.Value);
        }

        private static void TestInvalidateWithNothingCached()
        {
            FindityAuth.Invalidate(Emu.Url, ClientId);
            FindityAuth.Invalidate(Emu.Url, ClientId, "nobody-yet");
            FindityAuth.Invalidate("production", "some-client", null);
            NoTraffic("Invalidate");
        }

        private static void TestClearCacheForgetsEverything()
        {
            string org = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            string user = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            long before = Emu.Stat("token_requests");
            FindityAuth.ClearCache();
            Check(FindityAuth.GetToken(Emu.Url, ClientId, Secret) != org, "new organization token");
            Check(FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice") != user, "new user token");
            Check(Emu.Stat("token_requests") >= before + 2, "requests after ClearCache");
        }

        // ---------------------------------------------------------------- options

        private static void TestSetOptionAcceptsAndResets()
        {
            FindityAuth.SetOption("timeout_ms", "5000");
            FindityAuth.SetOption("connect_timeout_ms", "2000");
            FindityAuth.SetOption("user_agent", "erp-connector/1.0");
            FindityAuth.SetOption("proxy", "http://127.0.0.1:3128");
            FindityAuth.SetOption("proxy", "");
            Check(FindityAuth.GetToken(Emu.Url, ClientId, Secret).Length > 0, "token with options set");
            FindityAuth.SetOption("timeout_ms", "");
            FindityAuth.SetOption("user_agent", "");
        }

        private static void TestSetOptionRejectsBadOptions()
        {
            var cases = new[]
            {
                new[] { "no_such_option", "1" },
                new[] { "timeout_ms", "abc" },
                new[] { "timeout_ms", "0" },
                new[] { "user_agent", "bad\nagent" },
                new[] { "ca_file", "/nonexistent/ca.pem" },
                new[] { "proxy", "not a url" },
                new[] { null, "1" },
                new[] { "timeout_ms", null },
            };
            foreach (var c in cases)
            {
                string what = "SetOption(" + (c[0] ?? "null") + ", " + (c[1] ?? "null") + ")";
                var e = Throws<FindityArgumentException>(() => FindityAuth.SetOption(c[0], c[1]), what);
                Check(e is ArgumentException, what + " is an ArgumentException");
                Eq(FindityStatus.InvalidArgument, e.Status, what + " status");
                Eq(0, e.HttpStatus, what + " http status");
                Check(e.Message.Length > 0, what + " message");
            }
            Eq("name", Throws<FindityArgumentException>(() => FindityAuth.SetOption(null, "1"), "null name").ParamName, "ParamName");
            // A rejected value changes nothing: the default 30 s still applies (a token is had).
            Check(FindityAuth.GetToken(Emu.Url, ClientId, Secret).Length > 0, "token after bad options");
        }

        // ---------------------------------------------------------------- argument errors

        private static void TestNullAndEmptyArgumentsThrowBeforeTraffic()
        {
            string u = Emu.Url, c = ClientId, s = Secret;
            var cases = new List<KeyValuePair<string, Action>>
            {
                Case("GetToken null baseUrl", "baseUrl", () => FindityAuth.GetToken(null, c, s)),
                Case("GetToken null clientId", "clientId", () => FindityAuth.GetToken(u, null, s)),
                Case("GetToken null secret", "clientSecret", () => FindityAuth.GetToken(u, c, null)),
                Case("GetToken empty baseUrl", "baseUrl", () => FindityAuth.GetToken("", c, s)),
                Case("GetToken empty clientId", "clientId", () => FindityAuth.GetToken(u, "", s)),
                Case("GetToken empty secret", "clientSecret", () => FindityAuth.GetToken(u, c, "")),
                Case("GetUserToken null baseUrl", "baseUrl", () => FindityAuth.GetUserToken(null, c, s, "alice")),
                Case("GetUserToken null clientId", "clientId", () => FindityAuth.GetUserToken(u, null, s, "alice")),
                Case("GetUserToken null secret", "clientSecret", () => FindityAuth.GetUserToken(u, c, null, "alice")),
                Case("GetUserToken null userId", "userId", () => FindityAuth.GetUserToken(u, c, s, null)),
                Case("GetUserToken empty userId", "userId", () => FindityAuth.GetUserToken(u, c, s, "")),
                Case("GetUserToken control char userId", "userId", () => FindityAuth.GetUserToken(u, c, s, "al\tice")),
                Case("Invalidate null baseUrl", "baseUrl", () => FindityAuth.Invalidate(null, c)),
                Case("Invalidate null clientId", "clientId", () => FindityAuth.Invalidate(u, null)),
                Case("Invalidate empty clientId", "clientId", () => FindityAuth.Invalidate(u, "")),
                Case("Invalidate empty userId", "userId", () => FindityAuth.Invalidate(u, c, "")),
                Case("GetToken ftp URL", "baseUrl", () => FindityAuth.GetToken("ftp://127.0.0.1/", c, s)),
                Case("GetToken http to a non-loopback host", "baseUrl", () => FindityAuth.GetToken("http://example.com", c, s)),
                Case("GetToken not a URL", "baseUrl", () => FindityAuth.GetToken("not a url", c, s)),
                Case("GetToken URL with password", "baseUrl", () => FindityAuth.GetToken("https://u:p@example.com", c, s)),
            };
            foreach (var kv in cases) kv.Value();
            NoTraffic("argument errors");
        }

        private static KeyValuePair<string, Action> Case(string what, string param, Action a)
        {
            return new KeyValuePair<string, Action>(what, () =>
            {
                var e = Throws<FindityArgumentException>(a, what);
                Eq(FindityStatus.InvalidArgument, e.Status, what + " status");
                Eq(0, e.HttpStatus, what + " http status");
                Eq(param, e.ParamName, what + " ParamName (" + e.Message + ")");
                Check(!e.Message.Contains(Secret), what + " message holds the secret");
            });
        }

        private static void TestUnmarshalableTextIsRejectedByTheWrapper()
        {
            string hidden = "hidden-" + Guid.NewGuid().ToString("N");
            var e1 = Throws<FindityArgumentException>(() => FindityAuth.GetToken(Emu.Url, ClientId, Secret + "\0" + hidden), "NUL in secret");
            Eq("clientSecret", e1.ParamName, "ParamName");
            Check(!e1.Message.Contains(hidden) && !e1.Message.Contains(Secret), "value not echoed");
            var e2 = Throws<FindityArgumentException>(() => FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "al\ud800ice"), "lone surrogate");
            Eq("userId", e2.ParamName, "ParamName");
            Throws<FindityArgumentException>(() => FindityAuth.SetOption("timeout_ms\0", "5"), "NUL in option name");
            NoTraffic("wrapper argument errors");
            // Non-ASCII text is fine (UTF-8): an unusual but valid user id.
            string u = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "åsa-öberg-\u6771\u4eac");
            Check(u.Length > 0, "non-ASCII user id");
        }

        // ---------------------------------------------------------------- runtime errors

        private static void TestWrongSecretIsAuth401WithoutTheSecret()
        {
            string wrong = "wrong-" + Guid.NewGuid().ToString("N");
            var e = Throws<FindityAuthException>(() => FindityAuth.GetToken(Emu.Url, ClientId, wrong), "wrong secret");
            Check(e is FindityException, "is a FindityException");
            Eq(FindityStatus.Auth, e.Status, "status");
            Eq(401, e.HttpStatus, "HttpStatus");
            Check(e.Message.Length > 0, "message");
            Check(!e.Message.Contains(wrong) && !e.ToString().Contains(wrong), "message holds the secret");
            Check(!e.Message.Contains(Secret), "message holds the real secret");
            Eq(1L, Emu.Stat("client_credentials"), "one request");
        }

        private static void TestUnknownUserIsAuth()
        {
            var e = Throws<FindityAuthException>(() => FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "unknown-bob"), "unknown user");
            Eq(FindityStatus.Auth, e.Status, "status");
            Eq(400, e.HttpStatus, "HttpStatus");
            Check(e.Message.Contains("USER_NOT_FOUND") || e.Message.ToLowerInvariant().Contains("user"), "message: " + e.Message);
            Check(!e.Message.Contains(Secret), "message holds the secret");
        }

        private static void TestServer503IsServerError()
        {
            FindityAuth.SetOption("timeout_ms", "1500");
            Emu.Post("/_emulator/fault?endpoint=token&kind=status:503&count=0");
            var sw = Stopwatch.StartNew();
            var e = Throws<FindityServerException>(() => FindityAuth.GetToken(Emu.Url, ClientId, Secret), "503");
            Eq(FindityStatus.Server, e.Status, "status");
            Eq(503, e.HttpStatus, "HttpStatus");
            Check(sw.Elapsed < TimeSpan.FromSeconds(6), "returned within the timeout: " + sw.Elapsed);
            Check(Emu.Stat("token_requests") >= 2, "retried before giving up");
            Emu.Post("/_emulator/fault/clear");
            Check(FindityAuth.GetToken(Emu.Url, ClientId, Secret).Length > 0, "token once the server is back");
        }

        private static void TestHangWithSmallTimeoutIsNetwork()
        {
            FindityAuth.SetOption("timeout_ms", "800");
            Emu.Post("/_emulator/fault?endpoint=token&kind=hang&count=0");
            var sw = Stopwatch.StartNew();
            var e = Throws<FindityNetworkException>(() => FindityAuth.GetToken(Emu.Url, ClientId, Secret), "hang");
            Eq(FindityStatus.Network, e.Status, "status");
            Eq(0, e.HttpStatus, "HttpStatus");
            Check(sw.Elapsed < TimeSpan.FromSeconds(5), "returned near timeout_ms: " + sw.Elapsed);
            Emu.Post("/_emulator/fault/clear");
        }

        private static void TestConnectionRefusedIsNetwork()
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            FindityAuth.SetOption("timeout_ms", "1000");
            var e = Throws<FindityNetworkException>(() => FindityAuth.GetToken("http://127.0.0.1:" + port, ClientId, Secret), "refused");
            Eq(0, e.HttpStatus, "HttpStatus");
        }

        private static void TestLastErrorIsReadOnTheFailingThread()
        {
            // Threads failing at once with different HTTP statuses each see their own error.
            var errors = new Exception[8];
            var threads = Enumerable.Range(0, 8).Select(i => new Thread(() =>
            {
                try
                {
                    if (i % 2 == 0) FindityAuth.GetToken(Emu.Url, ClientId, "wrong-" + i);
                    else FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "unknown-" + i);
                }
                catch (Exception e) { errors[i] = e; }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            for (int i = 0; i < 8; i++)
            {
                var e = errors[i] as FindityAuthException;
                Check(e != null, "thread " + i + ": " + errors[i]);
                Eq(i % 2 == 0 ? 401 : 400, e.HttpStatus, "thread " + i + " HttpStatus");
            }
        }

        // ---------------------------------------------------------------- concurrency

        private static void TestSixteenThreadsColdCacheOneRequest()
        {
            Emu.Post("/_emulator/config?latency_ms=300");
            const int n = 16;
            var tokens = new string[n];
            var errors = new Exception[n];
            var start = new Barrier(n);
            var threads = Enumerable.Range(0, n).Select(i => new Thread(() =>
            {
                try
                {
                    start.SignalAndWait();
                    tokens[i] = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
                }
                catch (Exception e) { errors[i] = e; }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            Check(errors.All(e => e == null), "errors: " + string.Join("; ", errors.Where(e => e != null).Select(e => e.Message)));
            Eq(1, tokens.Distinct().Count(), "distinct tokens");
            var s = Emu.Stats();
            Eq(1L, s["client_credentials"], "client_credentials");
            Eq(1L, s["token_requests"], "token_requests");
            Eq(1L, s["max_concurrent"], "max_concurrent");
        }

        private static void TestThreadsHammeringCachedTokensEachGetTheirOwn()
        {
            // Cached tokens go through per-thread buffers while other threads are in native code: no
            // thread may ever see another key's token, a torn one, or an argument of another thread.
            string[] users = { null, "alice", "bob", "åsa-\u6771\u4eac" };
            string[] expected = users.Select(u => u == null
                ? FindityAuth.GetToken(Emu.Url, ClientId, Secret)
                : FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, u)).ToArray();
            Eq(users.Length, expected.Distinct().Count(), "distinct tokens");
            var wrong = new int[8];
            var errors = new Exception[8];
            var threads = Enumerable.Range(0, 8).Select(i => new Thread(() =>
            {
                try
                {
                    for (int n = 0; n < 3000; n++)
                    {
                        int k = (i + n) % users.Length;
                        string t = users[k] == null
                            ? FindityAuth.GetToken(Emu.Url, ClientId, Secret)
                            : FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, users[k]);
                        if (t != expected[k]) wrong[i]++;
                    }
                }
                catch (Exception e) { errors[i] = e; }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            Check(errors.All(e => e == null), "errors: " + string.Join("; ", errors.Where(e => e != null).Select(e => e.Message)));
            Eq("0,0,0,0,0,0,0,0", string.Join(",", wrong), "wrong tokens per thread");
            Eq(1L + 3, Emu.Stat("token_requests"), "token_requests (org + 3 code exchanges)");
        }

        // ---------------------------------------------------------------- handler

        private static void TestHandlerAddsBearerTokens()
        {
            using (var client = Client(new FindityAuthHandler(Emu.Url, ClientId, Secret)))
            using (var r = Get(client, Emu.Url + "/api/v1/me"))
            {
                Eq(HttpStatusCode.OK, r.StatusCode, "status");
                Check(r.Content.ReadAsStringAsync().Result.Contains("org:" + ClientId), "organization subject");
            }
            using (var client = Client(new FindityAuthHandler(Emu.Url, ClientId, Secret, "alice")))
            using (var r = Get(client, Emu.Url + "/api/v1/expenses"))
            {
                Eq(HttpStatusCode.OK, r.StatusCode, "status");
                Check(r.Content.ReadAsStringAsync().Result.Contains("user:alice"), "user subject");
            }
            var s = Emu.Stats();
            Eq(2L, s["api_requests"], "api_requests");
            Eq(1L, s["client_credentials"], "client_credentials");
            Eq(1L, s["authorization_code"], "authorization_code");
        }

        private static void TestHandlerRetriesOnceAfter401FromEmulator()
        {
            string before = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Emu.Post("/_emulator/fault?endpoint=api&kind=status:401&count=1");
            using (var client = Client(new FindityAuthHandler(Emu.Url, ClientId, Secret)))
            using (var r = Get(client, Emu.Url + "/api/v1/me"))
                Eq(HttpStatusCode.OK, r.StatusCode, "status after the retry");
            var s = Emu.Stats();
            Eq(2L, s["api_requests"], "api_requests (401 + retry)");
            Eq(1L, s["refresh_token"], "token renewed after Invalidate");
            Eq(1L, s["client_credentials"], "client_credentials");
            string after = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Check(after != before, "the retry used a new token");
        }

        private static void TestHandlerRenewsARevokedAccessToken()
        {
            using (var client = Client(new FindityAuthHandler(Emu.Url, ClientId, Secret, "alice")))
            {
                using (var r = Get(client, Emu.Url + "/api/v1/me")) Eq(HttpStatusCode.OK, r.StatusCode, "first");
                Emu.Post("/_emulator/revoke?what=access");
                using (var r = Get(client, Emu.Url + "/api/v1/me")) Eq(HttpStatusCode.OK, r.StatusCode, "after revoke");
            }
            var s = Emu.Stats();
            Eq(3L, s["api_requests"], "api_requests");
            Eq(1L, s["refresh_token"], "user token renewed with its refresh token");
        }

        private static void TestHandlerResendsAFaithfulCloneToALoopbackServer()
        {
            using (var server = new ResourceServer(i => i == 0 ? 401 : 200))
            using (var client = Client(new FindityAuthHandler(new HttpClientHandler { UseProxy = false }, Emu.Url, ClientId, Secret)))
            {
                var req = new HttpRequestMessage(HttpMethod.Post, server.Url + "expenses?x=1");
                req.Headers.Add("X-Trace", "trace-42");
                req.Content = new StringContent("{\"amount\":12.5,\"note\":\"kaffe åäö\"}", Encoding.UTF8, "application/json");
                using (var r = client.SendAsync(req).GetAwaiter().GetResult())
                {
                    Eq(HttpStatusCode.OK, r.StatusCode, "status");
                    Eq("done 1", r.Content.ReadAsStringAsync().Result, "body of the second answer");
                }
                Eq(2, server.Requests.Count, "requests seen");
                var a = server.Requests[0];
                var b = server.Requests[1];
                Check(a.Authorization != null && a.Authorization.StartsWith("Bearer "), "first Authorization");
                Check(b.Authorization != null && b.Authorization.StartsWith("Bearer "), "second Authorization");
                Check(a.Authorization != b.Authorization, "the retry carries a different token");
                Eq("Bearer " + FindityAuth.GetToken(Emu.Url, ClientId, Secret), b.Authorization, "retry token is the cached one");
                Eq("POST", b.Method, "method");
                Eq(a.Body, b.Body, "body resent");
                Eq("{\"amount\":12.5,\"note\":\"kaffe åäö\"}", b.Body, "body");
                Eq("trace-42", b.Trace, "custom header resent");
                Check(b.ContentType != null && b.ContentType.StartsWith("application/json"), "content type: " + b.ContentType);
            }
            Eq(1L, Emu.Stat("refresh_token"), "token renewed");
        }

        private static void TestHandlerReturnsASecond401()
        {
            using (var server = new ResourceServer(i => 401))
            using (var client = Client(new FindityAuthHandler(new HttpClientHandler { UseProxy = false }, Emu.Url, ClientId, Secret)))
            using (var r = Get(client, server.Url + "me"))
            {
                Eq(HttpStatusCode.Unauthorized, r.StatusCode, "status");
                Eq(2, server.Requests.Count, "sent twice, not more");
            }
            Eq(1L, Emu.Stat("refresh_token"), "renewed once");
        }

        private static void TestHandlerThrowsFindityExceptionWhenNoToken()
        {
            using (var server = new ResourceServer(i => 200))
            using (var client = Client(new FindityAuthHandler(new HttpClientHandler { UseProxy = false }, Emu.Url, ClientId, "wrong-secret")))
            {
                var e = Throws<FindityAuthException>(() => Get(client, server.Url + "me"), "SendAsync");
                Eq(401, e.HttpStatus, "HttpStatus");
                Eq(0, server.Requests.Count, "nothing sent without a token");
            }
            using (var client = Client(new FindityAuthHandler("http://example.com", ClientId, Secret)))
                Throws<FindityArgumentException>(() => Get(client, "http://127.0.0.1:9/"), "bad base URL");
            Throws<ArgumentNullException>(() => new FindityAuthHandler(null, ClientId, Secret), "null baseUrl");
        }

        private static void TestHandlerConcurrentRequestsShareOneToken()
        {
            Emu.Post("/_emulator/config?latency_ms=200");
            using (var client = Client(new FindityAuthHandler(Emu.Url, ClientId, Secret)))
            {
                var tasks = Enumerable.Range(0, 8).Select(i => client.GetAsync(Emu.Url + "/api/v1/item/" + i)).ToArray();
                Task.WaitAll(tasks);
                foreach (var t in tasks)
                {
                    Eq(HttpStatusCode.OK, t.Result.StatusCode, "status");
                    t.Result.Dispose();
                }
            }
            Eq(1L, Emu.Stat("client_credentials"), "client_credentials");
            Eq(8L, Emu.Stat("api_requests"), "api_requests");
        }

        // ---------------------------------------------------------------- handler: threads and cancellation

        /// <summary>An inner handler answering 200 at once (synchronously), recording what it saw.</summary>
        private sealed class StubHandler : HttpMessageHandler
        {
            public readonly List<string> Authorizations = new List<string>();
            public int LastThread;

            protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
            {
                lock (Authorizations) Authorizations.Add(request.Headers.Authorization.ToString());
                LastThread = Thread.CurrentThread.ManagedThreadId;
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK));
            }
        }

        /// <summary>Counts the handler's native token calls through FindityAuthHandler.TokenCallHook:
        /// how many, the most at once, and how many took long (blocked a thread).</summary>
        private sealed class CallCounter
        {
            private readonly object gate = new object();
            private readonly TimeSpan longCall;
            [ThreadStatic] private static Stopwatch started;
            public int Calls, Now, Peak, Long;
            public readonly ManualResetEventSlim Entered = new ManualResetEventSlim();

            public CallCounter(TimeSpan longCall)
            {
                this.longCall = longCall;
                FindityAuthHandler.TokenCallHook = Hook;
            }

            private void Hook(bool entering)
            {
                lock (gate)
                {
                    if (entering)
                    {
                        Calls++;
                        Peak = Math.Max(Peak, ++Now);
                        started = Stopwatch.StartNew();
                        Entered.Set();
                    }
                    else
                    {
                        Now--;
                        if (started.Elapsed >= longCall) Long++;
                    }
                }
            }
        }

        private static HttpRequestMessage Req(int i)
        {
            return new HttpRequestMessage(HttpMethod.Get, "http://127.0.0.1:9/item/" + i);
        }

        private static void TestHandlerColdCacheBlocksOneThreadPerKey()
        {
            // 32 requests at once, nothing cached, a token endpoint taking 500 ms: one native call
            // waits for the token (on one pool thread); the others wait for it without a thread and
            // then take the cached token. Measured by the handler's hook around every native token
            // call that may block: at most 2 in native code at once (1 expected; slack for a fast
            // call overlapping), exactly one lasting 250 ms or more (the only blocked thread),
            // where Task.Run per request had one blocked pool thread per request.
            Emu.Post("/_emulator/config?latency_ms=500");
            var calls = new CallCounter(TimeSpan.FromMilliseconds(250));
            var stub = new StubHandler();
            using (var invoker = new HttpMessageInvoker(new FindityAuthHandler(stub, Emu.Url, ClientId, Secret)))
            {
                var sw = Stopwatch.StartNew();
                var tasks = Enumerable.Range(0, 32).Select(i => invoker.SendAsync(Req(i), CancellationToken.None)).ToArray();
                Check(Task.WaitAll(tasks, TimeSpan.FromSeconds(20)), "requests done within 20 s");
                foreach (var t in tasks) Eq(HttpStatusCode.OK, t.Result.StatusCode, "status");
                Check(sw.Elapsed < TimeSpan.FromSeconds(5), "took " + sw.Elapsed);
            }
            Eq(1L, Emu.Stat("client_credentials"), "client_credentials");
            Eq(1L, Emu.Stat("token_requests"), "token_requests");
            Eq(32, stub.Authorizations.Count, "requests sent");
            Eq(1, stub.Authorizations.Distinct().Count(), "one token for all");
            Eq(200, Emu.Api("/api/v1/me", stub.Authorizations[0].Substring("Bearer ".Length)).Key, "token accepted");
            Check(calls.Peak <= 2, "native token calls at once: " + calls.Peak);
            Eq(1, calls.Long, "native token calls that blocked");
        }

        private static void TestHandlerRequestCancelledWhileWaitingForTheGate()
        {
            Emu.Post("/_emulator/config?latency_ms=1000");
            var calls = new CallCounter(TimeSpan.FromMilliseconds(500));
            var stub = new StubHandler();
            using (var invoker = new HttpMessageInvoker(new FindityAuthHandler(stub, Emu.Url, ClientId, Secret)))
            {
                Task<HttpResponseMessage> first = invoker.SendAsync(Req(1), CancellationToken.None);
                Check(calls.Entered.Wait(TimeSpan.FromSeconds(5)), "the first request started its token call");
                var cts = new CancellationTokenSource();
                Task<HttpResponseMessage> second = invoker.SendAsync(Req(2), cts.Token);
                Thread.Sleep(100);
                Check(!second.IsCompleted, "the second request waits for the first one's token");
                var sw = Stopwatch.StartNew();
                cts.Cancel();
                Check(Task.WaitAny(new Task[] { second }, TimeSpan.FromSeconds(5)) == 0, "the second request ended");
                TimeSpan ended = sw.Elapsed;
                Check(ended < TimeSpan.FromMilliseconds(200), "ended " + ended.TotalMilliseconds + " ms after Cancel");
                Check(second.IsCanceled || second.Exception.InnerException is OperationCanceledException,
                    "second: " + second.Status + " " + second.Exception);
                Check(!first.IsCompleted, "the first request still waits for its token");
                Check(first.Wait(TimeSpan.FromSeconds(10)), "first request done");
                Eq(HttpStatusCode.OK, first.Result.StatusCode, "first status");
            }
            Eq(1, stub.Authorizations.Count, "requests sent");
            Eq(1, calls.Calls, "native token calls (none for the cancelled request)");
            Eq(1L, Emu.Stat("client_credentials"), "client_credentials");
        }

        private static void TestHandlerRequestCancelledDuringTheTokenCall()
        {
            // The native call can't be stopped: the request ends at once, the call goes on and
            // caches its token for the next request, which sends no token request of its own.
            Emu.Post("/_emulator/config?latency_ms=800");
            var calls = new CallCounter(TimeSpan.FromMilliseconds(400));
            var stub = new StubHandler();
            using (var invoker = new HttpMessageInvoker(new FindityAuthHandler(stub, Emu.Url, ClientId, Secret)))
            {
                var cts = new CancellationTokenSource();
                Task<HttpResponseMessage> first = invoker.SendAsync(Req(1), cts.Token);
                Check(calls.Entered.Wait(TimeSpan.FromSeconds(5)), "the token call started");
                var sw = Stopwatch.StartNew();
                cts.Cancel();
                Check(Task.WaitAny(new Task[] { first }, TimeSpan.FromSeconds(5)) == 0, "the request ended");
                Check(sw.Elapsed < TimeSpan.FromMilliseconds(200), "ended " + sw.Elapsed.TotalMilliseconds + " ms after Cancel");
                Check(first.IsCanceled || first.Exception.InnerException is OperationCanceledException,
                    "first: " + first.Status + " " + first.Exception);
                using (var r = invoker.SendAsync(Req(2), CancellationToken.None).GetAwaiter().GetResult())
                    Eq(HttpStatusCode.OK, r.StatusCode, "next request");
            }
            Eq(1, stub.Authorizations.Count, "requests sent");
            Eq(1L, Emu.Stat("client_credentials"), "client_credentials");
            Check(FindityAuth.TokenExpiresIn(Emu.Url, ClientId) > TimeSpan.Zero, "the abandoned call cached its token");
        }

        private static void TestHandlerCachedTokenStaysOnTheCallingThread()
        {
            // With a token cached, SendAsync (over an inner handler answering synchronously)
            // completes before it returns, on the calling thread (this test's own thread, not a pool
            // thread): no Task.Run, no hop. Deterministic, unlike a timing bound.
            var stub = new StubHandler();
            var calls = new CallCounter(TimeSpan.FromMilliseconds(100));
            using (var invoker = new HttpMessageInvoker(new FindityAuthHandler(stub, Emu.Url, ClientId, Secret, "alice")))
            {
                invoker.SendAsync(Req(0), CancellationToken.None).GetAwaiter().GetResult().Dispose();
                int me = Thread.CurrentThread.ManagedThreadId;
                var sw = Stopwatch.StartNew();
                for (int i = 1; i <= 10000; i++)
                {
                    Task<HttpResponseMessage> t = invoker.SendAsync(Req(i), CancellationToken.None);
                    if (!t.IsCompleted) throw new TestFailure("request " + i + " did not complete synchronously");
                    if (stub.LastThread != me) throw new TestFailure("request " + i + " was sent from another thread");
                    t.Result.Dispose();
                }
                Check(sw.Elapsed < TimeSpan.FromSeconds(20), "10000 cached requests took " + sw.Elapsed);
            }
            Eq(1, calls.Calls, "native token calls that may block (the other 10000 from findity_cached_token)");
            Eq(0, calls.Long, "native token calls that blocked");
            Eq(1L, Emu.Stat("authorization_code"), "authorization_code");
            Eq(1, stub.Authorizations.Distinct().Count(), "one token");
        }

        private static void TestHandlerWaitersShareTheFailureOfTheCallTheyWaitedFor()
        {
            // A token endpoint that hangs: the one gated call times out (timeout_ms 800) and the 7
            // requests waiting for it fail with its exception, together, instead of each making a
            // call of its own after it (8 x 800 ms). Then, with the endpoint back, a token.
            FindityAuth.SetOption("timeout_ms", "800");
            Emu.Post("/_emulator/fault?endpoint=token&kind=hang&count=0");
            var calls = new CallCounter(TimeSpan.FromMilliseconds(400));
            var stub = new StubHandler();
            using (var invoker = new HttpMessageInvoker(new FindityAuthHandler(stub, Emu.Url, ClientId, Secret)))
            {
                var sw = Stopwatch.StartNew();
                var tasks = Enumerable.Range(0, 8).Select(i => invoker.SendAsync(Req(i), CancellationToken.None)).ToArray();
                Check(Task.WaitAny(new Task[] { Task.WhenAll(tasks) }, TimeSpan.FromSeconds(20)) == 0, "requests ended");
                Check(sw.Elapsed < TimeSpan.FromMilliseconds(2500), "all failed within " + sw.Elapsed);
                foreach (var t in tasks)
                    Check(t.IsFaulted && t.Exception.InnerException is FindityNetworkException, "request: " + t.Status + " " + t.Exception);
                Eq(1, calls.Calls, "native token calls");
                Eq(0, stub.Authorizations.Count, "nothing sent without a token");
                Emu.Post("/_emulator/fault/clear");
                using (var r = invoker.SendAsync(Req(9), CancellationToken.None).GetAwaiter().GetResult())
                    Eq(HttpStatusCode.OK, r.StatusCode, "once the endpoint is back");
            }
        }
    }
}
