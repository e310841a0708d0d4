using System;

namespace Findity.Auth
{
    /// <summary>Levels of libfindity's log lines; the numbers are FINDITY_LOG_* of findity.h.</summary>
    public enum FindityLogLevel
    {
        /// <summary>A call failed (no token).</summary>
        Error = 1,
        /// <summary>A retry, a refused organization token, a failed background renewal.</summary>
        Warn = 2,
        /// <summary>New tokens (by grant, with a fingerprint), invalidations, background renewals, fallbacks.</summary>
        Info = 3,
        /// <summary>Every request.</summary>
        Debug = 4,
    }

    public static partial class FindityAuth
    {
        // The only delegate ever handed to findity_set_log_callback, referenced from this static
        // field for the life of the process so the GC never collects it: the library may call it
        // on any thread at any time, also once more after it was replaced. SetLogger swaps the
        // managed target instead.
        private static readonly NativeMethods.LogCallback NativeLogCallback = OnNativeLog;
        private static readonly object LoggerGate = new object();
        private static volatile Action<FindityLogLevel, string> logger;
        private static bool exitHookInstalled;

        /// <summary>
        /// Sends libfindity's log lines to <paramref name="logger"/> (null: stop; the library goes
        /// back to its default, stderr only when the FINDITY_LOG environment variable is set).
        /// <paramref name="level"/> is the most detailed level the library produces.
        /// </summary>
        /// <remarks>
        /// <para>The logger is called on whichever thread logs, including the library's background
        /// refresh threads, possibly after a token call returned: it must be thread-safe and quick.
        /// Exceptions it throws are caught and dropped (none may unwind into native code).</para>
        /// <para>Lines name the grant, the endpoint and the key; tokens appear only as a fingerprint
        /// ("#1a2b3c4d"), never a secret, token or code.</para>
        /// <para>One logger per process, like the library's callback; to feed several sinks, combine
        /// delegates (<c>a + b</c>). To an ILogger:
        /// <c>FindityAuth.SetLogger((level, line) =&gt; log.Log(ToLogLevel(level), "{Line}", line))</c>.</para>
        /// </remarks>
        public static void SetLogger(Action<FindityLogLevel, string> logger, FindityLogLevel level = FindityLogLevel.Info)
        {
            if (logger != null && (level < FindityLogLevel.Error || level > FindityLogLevel.Debug))
            {
                throw new ArgumentOutOfRangeException("level", level, "not a FindityLogLevel");
            }
            lock (LoggerGate)
            {
                if (logger == null)
                {
                    Uninstall();
                    return;
                }
                FindityAuth.logger = logger;
                NativeMethods.findity_set_log_callback(NativeLogCallback, IntPtr.Zero);
                SetOption("log_level", LevelName(level));
                if (!exitHookInstalled)
                {
                    // No calls into a runtime that is shutting down from the library's threads.
                    AppDomain.CurrentDomain.ProcessExit += delegate { SetLogger(null); };
                    exitHookInstalled = true;
                }
            }
        }

        private static void Uninstall()
        {
            NativeMethods.findity_set_log_callback(null, IntPtr.Zero);
            logger = null;
            // Still needed: removing the callback undoes only a level the library raised by itself when
            // the callback was installed. SetLogger chose the level explicitly, and that level would
            // stay and send lines to stderr; "" is the FINDITY_LOG default again.
            NativeMethods.findity_set_option(Encode("log_level", "name"), Encode("", "value"));
        }

        private static string LevelName(FindityLogLevel level)
        {
            switch (level)
            {
                case FindityLogLevel.Error: return "error";
                case FindityLogLevel.Warn: return "warn";
                case FindityLogLevel.Debug: return "debug";
                default: return "info";
            }
        }

        private static void OnNativeLog(uint level, IntPtr message, IntPtr userdata)
        {
            try
            {
                Action<FindityLogLevel, string> target = logger;
                if (target != null)
                {
                    FindityLogLevel l = level >= 1 && level <= 4 ? (FindityLogLevel)level : FindityLogLevel.Error;
                    target(l, FromUtf8(message));
                }
            }
            catch
            {
                // Never unwind into libfindity: a log line is not worth a crash.
            }
        }
    }
}
