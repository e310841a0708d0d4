// FindityAuth.Stats, FindityAuth.TokenExpiresIn and FindityAuth.SetLogger against findity-emulator.
// Part of the test runner in Tests.cs (same partial class, same Fresh() before every test).

using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using Findity.Auth;

namespace Findity.Auth.Tests
{
    internal static partial class Tests
    {
        // ---------------------------------------------------------------- stats

        // The counters that changed between two snapshots, by how much ("failures[Auth]" and so on).
        private static Dictionary<string, long> Delta(FindityStats a, FindityStats b)
        {
            var d = new Dictionary<string, long>();
            foreach (PropertyInfo p in typeof(FindityStats).GetProperties().Where(p => p.PropertyType == typeof(long)))
            {
                long n = (long)p.GetValue(b) - (long)p.GetValue(a);
                if (n != 0) d[p.Name] = n;
            }
            foreach (FindityStatus st in Enum.GetValues(typeof(FindityStatus)))
            {
                long n = b.Failures[st] - a.Failures[st];
                if (n != 0) d["failures[" + st + "]"] = n;
            }
            return d;
        }

        private static string Show(Dictionary<string, long> d)
        {
            return "{" + string.Join(", ", d.Select(kv => kv.Key + "=" + kv.Value)) + "}";
        }

        private static void TestStatsStructMatchesTheHeader()
        {
            Eq(23 * 8, Marshal.SizeOf(typeof(FindityStatsNative)), "sizeof(FindityStats)");
            if (string.IsNullOrEmpty(HeaderPath)) return;
            string h = File.ReadAllText(HeaderPath);
            Match body = Regex.Match(h, @"typedef struct FindityStats \{(.*?)\} FindityStats;", RegexOptions.Singleline);
            Check(body.Success, "struct FindityStats in findity.h");
            var inHeader = Regex.Matches(body.Groups[1].Value, @"uint64_t (\w+(\[\d+\])?);")
                .Cast<Match>().Select(m => m.Groups[1].Value).ToList();
            var inWrapper = typeof(FindityStatsNative).GetFields().OrderBy(f => f.MetadataToken)
                .Select(f => f.FieldType.IsArray ? f.Name + "[7]" : f.Name).ToList();
            Eq(string.Join(",", inHeader), string.Join(",", inWrapper), "fields in order");
        }

        private static void TestStatsCountersMoveWithTheCalls()
        {
            FindityStats s0 = FindityAuth.Stats;
            string token = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            FindityStats s1 = FindityAuth.Stats;
            Eq("{CacheMisses=1, ClientCredentialsRequests=1}", Show(Delta(s0, s1)), "cold call");

            Eq(token, FindityAuth.GetToken(Emu.Url, ClientId, Secret), "cached token");
            FindityStats s2 = FindityAuth.Stats;
            Eq("{CacheHits=1}", Show(Delta(s1, s2)), "cached call");

            FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            var d = Delta(s2, FindityAuth.Stats);
            Eq(1L, d["AuthorizationGrantRequests"], "authorization grant");
            Eq(1L, d["AuthorizationCodeRequests"], "code exchange");
            Check(!d.ContainsKey("ClientCredentialsRequests"), "the cached organization token was used: " + Show(d));

            FindityStats s3 = FindityAuth.Stats;
            string wrong = "wrong-" + Guid.NewGuid().ToString("N");
            Throws<FindityAuthException>(() => FindityAuth.GetToken(Emu.Url, ClientId, wrong), "wrong secret");
            d = Delta(s3, FindityAuth.Stats);
            Eq(1L, d["failures[Auth]"], "failures[Auth]: " + Show(d));
            Check(!d.ContainsKey("failures[Network]") && !d.ContainsKey("failures[Server]"), "other failures: " + Show(d));
            Eq(0L, FindityAuth.Stats.Failures[FindityStatus.Ok], "failures[Ok]");
            Eq(8, FindityAuth.Stats.Failures.Count, "one entry per status");
            Check(FindityAuth.Stats.ToString().Contains("cache_hits="), "ToString: " + FindityAuth.Stats);
        }

        private static void TestStatsCountRetriesAndFallbacks()
        {
            FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            FindityStats before = FindityAuth.Stats;
            Emu.Post("/_emulator/revoke?what=refresh"); // the held refresh token is refused: fall back
            Emu.Post("/_emulator/fault?endpoint=token&grant=client_credentials&kind=status:503"); // then one retry
            FindityAuth.Invalidate(Emu.Url, ClientId);
            FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            var d = Delta(before, FindityAuth.Stats);
            Eq(1L, d.ContainsKey("Fallbacks") ? d["Fallbacks"] : 0, "fallbacks " + Show(d));
            Eq(1L, d.ContainsKey("Retries") ? d["Retries"] : 0, "retries " + Show(d));
        }

        // ---------------------------------------------------------------- token expiry

        private static void TestTokenExpiresIn()
        {
            Emu.Post("/_emulator/config?lifetime=600");
            FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            TimeSpan left = FindityAuth.TokenExpiresIn(Emu.Url, ClientId);
            Check(left > TimeSpan.FromSeconds(590) && left <= TimeSpan.FromSeconds(600), "organization: " + left);
            Eq(0, left.Milliseconds, "whole seconds");

            Emu.Post("/_emulator/config?lifetime=120");
            FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            TimeSpan user = FindityAuth.TokenExpiresIn(Emu.Url, ClientId, "alice");
            Check(user > TimeSpan.FromSeconds(110) && user <= TimeSpan.FromSeconds(120), "alice: " + user);
            long sent = Emu.Stat("token_requests");
            FindityAuth.TokenExpiresIn(Emu.Url, ClientId);
            Eq(sent, Emu.Stat("token_requests"), "sends nothing");
        }

        private static void TestTokenExpiresInWithoutACachedToken()
        {
            Eq(TimeSpan.Zero, FindityAuth.TokenExpiresIn(Emu.Url, ClientId), "nothing cached yet");
            FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Eq(TimeSpan.Zero, FindityAuth.TokenExpiresIn(Emu.Url, ClientId, "bob"), "bob has none");
            FindityAuth.Invalidate(Emu.Url, ClientId);
            Eq(TimeSpan.Zero, FindityAuth.TokenExpiresIn(Emu.Url, ClientId), "after Invalidate");
            FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            FindityAuth.ClearCache();
            Eq(TimeSpan.Zero, FindityAuth.TokenExpiresIn(Emu.Url, ClientId), "after ClearCache");
            Eq(2L, Emu.Stat("token_requests"), "asking sent nothing");
            // Bad arguments are still errors, not zero.
            Eq("clientId", Throws<FindityArgumentException>(() => FindityAuth.TokenExpiresIn(Emu.Url, null), "null clientId").ParamName, "ParamName");
            Eq("clientId", Throws<FindityArgumentException>(() => FindityAuth.TokenExpiresIn(Emu.Url, ""), "empty clientId").ParamName, "ParamName");
            Eq("baseUrl", Throws<FindityArgumentException>(() => FindityAuth.TokenExpiresIn("ftp://example.com", ClientId), "bad baseUrl").ParamName, "ParamName");
        }

        private static void TestStatsSizeQueriesAreNotFailures()
        {
            FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            FindityStats before = FindityAuth.Stats;
            // The size query of the C ABI (NULL buffer) and the wrapper through a 1-byte first buffer
            // (a fresh thread: the buffers are per thread).
            UIntPtr needed;
            byte[] b = Encoding.UTF8.GetBytes(Emu.Url + "\0"), c = Encoding.UTF8.GetBytes(ClientId + "\0"),
                s = Encoding.UTF8.GetBytes(Secret + "\0");
            Eq(NativeMethods.FINDITY_ERR_BUFFER_TOO_SMALL, NativeMethods.findity_get_token(b, c, s, null, UIntPtr.Zero, out needed), "size query");
            FindityAuth.InitialBufferSize = 1;
            string token = null;
            var t = new Thread(() => token = FindityAuth.GetToken(Emu.Url, ClientId, Secret));
            t.Start();
            t.Join();
            Eq((int)needed.ToUInt64(), token.Length, "token through a 1-byte first buffer");
            FindityStats after = FindityAuth.Stats;
            Eq(0L, after.Failures[FindityStatus.BufferTooSmall], "failures[BufferTooSmall]");
            Eq(before.Failures.Values.Sum(), after.Failures.Values.Sum(), "no failures at all");
            Eq(1L, Emu.Stat("token_requests"), "token_requests");
        }

        // ---------------------------------------------------------------- logging

        private sealed class Line
        {
            public FindityLogLevel Level;
            public string Text;
            public int ThreadId;
        }

        private sealed class Lines
        {
            public readonly ConcurrentQueue<Line> All = new ConcurrentQueue<Line>();

            public void Add(FindityLogLevel level, string text)
            {
                All.Enqueue(new Line { Level = level, Text = text, ThreadId = Thread.CurrentThread.ManagedThreadId });
            }

            public Line WaitFor(string text)
            {
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
                while (DateTime.UtcNow < deadline)
                {
                    Line l = All.FirstOrDefault(x => x.Text.Contains(text));
                    if (l != null) return l;
                    Thread.Sleep(20);
                }
                throw new TestFailure("no \"" + text + "\" line in: " + string.Join(" | ", All.Select(x => x.Text)));
            }

            public void NoSecrets(params string[] more)
            {
                foreach (Line l in All)
                    foreach (string s in more.Concat(new[] { Secret }))
                        Check(!l.Text.Contains(s), "a secret or token in the line: " + l.Text);
            }
        }

        private static void TestLoggerGetsInfoLinesWithoutSecrets()
        {
            var lines = new Lines();
            FindityAuth.SetLogger(lines.Add);
            string token = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            string user = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            Line l = lines.WaitFor("via client_credentials");
            Eq(FindityLogLevel.Info, l.Level, "level");
            Check(l.Text.Contains(ClientId), "names the client: " + l.Text);
            Check(Regex.IsMatch(l.Text, "#[0-9a-f]{8}"), "a fingerprint: " + l.Text);
            lines.WaitFor("via authorization grant");
            Check(lines.All.All(x => x.Level <= FindityLogLevel.Info), "no debug lines at Info");
            lines.NoSecrets(token, user);
        }

        private static void TestLoggerLevels()
        {
            var lines = new Lines();
            FindityAuth.SetLogger(lines.Add, FindityLogLevel.Warn);
            string wrong = "wrong-" + Guid.NewGuid().ToString("N");
            Throws<FindityAuthException>(() => FindityAuth.GetToken(Emu.Url, ClientId, wrong), "wrong secret");
            Eq(FindityLogLevel.Error, lines.WaitFor("no token").Level, "a failed call");
            Emu.Post("/_emulator/fault?endpoint=token&kind=status:503");
            FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Eq(FindityLogLevel.Warn, lines.WaitFor("retried").Level, "a retry");
            Check(lines.All.All(x => x.Level <= FindityLogLevel.Warn), "nothing above Warn");
            lines.NoSecrets(wrong);

            var debug = new Lines();
            FindityAuth.SetLogger(debug.Add, FindityLogLevel.Debug);
            FindityAuth.Invalidate(Emu.Url, ClientId);
            FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Eq(FindityLogLevel.Debug, debug.WaitFor("refresh_token grant").Level, "debug line");
            Throws<ArgumentOutOfRangeException>(() => FindityAuth.SetLogger(debug.Add, (FindityLogLevel)9), "bad level");
        }

        private static void TestLoggerHearsTheBackgroundRefreshThread()
        {
            var lines = new Lines();
            FindityAuth.SetLogger(lines.Add);
            // Renewal starts in the background once half the lifetime, less a per-token jitter of
            // up to 0.19 s, is gone, and a token is never handed out in its last quarter: with 3 s,
            // a call between 1.69 and 2.25 s renews in the background (Sleep never wakes early).
            Emu.Post("/_emulator/config?lifetime=3");
            string token = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Thread.Sleep(1900);
            Eq(token, FindityAuth.GetToken(Emu.Url, ClientId, Secret), "the current token is served meanwhile");
            Line l = lines.WaitFor("background");
            Check(l.ThreadId != Thread.CurrentThread.ManagedThreadId, "logged from the library's own thread");
            lines.WaitFor("via refresh_token");
            Check(FindityAuth.Stats.BackgroundRefreshes >= 1, "background_refreshes");
        }

        private static void TestSetLoggerNullStopsTheLines()
        {
            var lines = new Lines();
            FindityAuth.SetLogger(lines.Add, FindityLogLevel.Debug);
            FindityAuth.SetLogger(null);
            FindityAuth.SetLogger(null);
            FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            Thread.Sleep(100);
            Eq(0, lines.All.Count, "lines after SetLogger(null)");
        }

        private static void TestThrowingLoggerNeverBreaksATokenCall()
        {
            int calls = 0;
            FindityAuth.SetLogger((level, line) =>
            {
                Interlocked.Increment(ref calls);
                throw new InvalidOperationException("logger bug");
            });
            Check(FindityAuth.GetToken(Emu.Url, ClientId, Secret).Length > 0, "token");
            Check(Volatile.Read(ref calls) >= 1, "the logger was called");
        }

        private static void TestALoggerMayFetchTokensOnTheCallingThread()
        {
            // The library logs on the calling thread in the middle of a token call (a Debug line
            // before the request, which still needs the secret). A logger that gets a token itself
            // (to ship its lines, say) must get its own without disturbing the outer call's buffers.
            string alice = FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice");
            string org = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            int me = Thread.CurrentThread.ManagedThreadId;
            var seen = new ConcurrentQueue<string>();
            FindityAuth.SetLogger((level, line) =>
            {
                if (Thread.CurrentThread.ManagedThreadId == me)
                    seen.Enqueue(FindityAuth.GetUserToken(Emu.Url, ClientId, Secret, "alice"));
            }, FindityLogLevel.Debug);
            FindityAuth.Invalidate(Emu.Url, ClientId);
            string renewed = FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            FindityAuth.SetLogger(null);
            Check(seen.Count > 0, "the logger ran on the calling thread");
            Check(seen.All(t => t == alice), "the logger's tokens");
            Check(renewed != org && renewed != alice, "the renewed organization token");
            Eq(renewed, FindityAuth.GetToken(Emu.Url, ClientId, Secret), "cached afterwards");
            Eq(200, Emu.Api("/api/v1/me", renewed).Key, "the renewed token is accepted");
        }

        private static void TestLoggerSurvivesGarbageCollection()
        {
            var lines = new Lines();
            SetLoggerFromAFrameThatIsGone(lines);
            for (int i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
            FindityAuth.GetToken(Emu.Url, ClientId, Secret);
            lines.WaitFor("via client_credentials");
        }

        private static void SetLoggerFromAFrameThatIsGone(Lines lines)
        {
            FindityAuth.SetLogger(new Action<FindityLogLevel, string>((l, m) => lines.Add(l, m)));
        }
    }
}
