// Every libfindity entry point, declared once (see include/findity.h for the contract).
//
// Marshaling rules, chosen so one source works on .NET Framework 4.x, Mono and .NET 8:
//  - Library name "findity": .NET (Core) finds runtimes/<rid>/native/libfindity.so from the
//    NuGet package; Mono on Linux dlopens libfindity.so through LD_LIBRARY_PATH (or a dllmap);
//    .NET Framework on Windows loads findity.dll next to the application.
//  - CallingConvention.Cdecl everywhere (the C ABI; also right on 32-bit Windows).
//  - Input strings are NUL-terminated UTF-8 byte[] made by Utf8.Encode (UnmanagedType.LPUTF8Str
//    does not exist on .NET Framework); a null array is passed as a NULL pointer.
//  - Output strings go into caller byte[] buffers with (buf, buf_len, out_len); the callers grow
//    the buffer on FINDITY_ERR_BUFFER_TOO_SMALL. No returned char* is ever marshaled as string
//    (the marshaler would free it). Only findity_version returns a pointer: a static string,
//    read as an IntPtr.
//  - size_t is UIntPtr; uint64_t is ulong; uint32_t is uint; uint16_t is ushort.
//  - No SetLastError: libfindity keeps its own thread-local last error, read right after the
//    failing call on the same thread (findity_last_error / findity_last_http_status).
//  - One callback is passed to native code: the log callback (LogCallback below), a single
//    delegate instance held in a static field for the life of the process (FindityAuth.Logging.cs),
//    because the library may call it on any thread at any time, even once after it was replaced.
//    It catches every exception, so none unwinds through native frames; libfindity catches its
//    own panics (FINDITY_ERR_INTERNAL). Its message is an IntPtr decoded as UTF-8 by hand.
//  - struct FindityStats is FindityStatsNative (sequential, 16 x uint64_t = 128 bytes).
//  - byte[] of byte is blittable: the marshaler pins it, no copy in. But Mono converts every array
//    argument in a call of its own (~70 ns each) and copies an [Out] array back whole (~2.6 us for
//    2 KiB). So the three token functions, the hot path, also have overloads taking `ref byte`: the
//    first element of a caller array, passed as its address with the array pinned for the call
//    (a byref to a blittable type; no conversion, no copy), ~50 ns for the whole call on Mono.
//    Those overloads can't pass NULL: callers use the byte[] ones when an argument is null.

using System;
using System.Runtime.InteropServices;
using System.Security;

namespace Findity.Auth
{
    [SuppressUnmanagedCodeSecurity]
    internal static class NativeMethods
    {
        internal const string Library = "findity";

        internal const uint FINDITY_OK = 0;
        internal const uint FINDITY_ERR_INVALID_ARGUMENT = 1;
        internal const uint FINDITY_ERR_BUFFER_TOO_SMALL = 2;
        internal const uint FINDITY_ERR_NETWORK = 3;
        internal const uint FINDITY_ERR_AUTH = 4;
        internal const uint FINDITY_ERR_SERVER = 5;
        internal const uint FINDITY_ERR_INTERNAL = 6;
        internal const uint FINDITY_ERR_NOT_CACHED = 7; // findity_cached_token only

        internal const uint FINDITY_LOG_ERROR = 1;
        internal const uint FINDITY_LOG_WARN = 2;
        internal const uint FINDITY_LOG_INFO = 3;
        internal const uint FINDITY_LOG_DEBUG = 4;

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_get_token(
            [In] byte[] baseUrl,
            [In] byte[] clientId,
            [In] byte[] clientSecret,
            [Out] byte[] buf,
            UIntPtr bufLen,
            out UIntPtr outLen);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_user_token(
            [In] byte[] baseUrl,
            [In] byte[] clientId,
            [In] byte[] clientSecret,
            [In] byte[] userId,
            [Out] byte[] buf,
            UIntPtr bufLen,
            out UIntPtr outLen);

        // findity_get_token and findity_user_token again, for FindityAuth's per-thread buffers: each
        // `ref byte` is element 0 of a NUL-terminated (inputs) or buf_len-byte (buf) array.
        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_get_token(
            ref byte baseUrl,
            ref byte clientId,
            ref byte clientSecret,
            ref byte buf,
            UIntPtr bufLen,
            out UIntPtr outLen);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_user_token(
            ref byte baseUrl,
            ref byte clientId,
            ref byte clientSecret,
            ref byte userId,
            ref byte buf,
            UIntPtr bufLen,
            out UIntPtr outLen);

        // Never sends a request, never waits: FINDITY_ERR_NOT_CACHED when no token can be handed
        // out now. A NULL userId (the organization token) is the IntPtr overload's IntPtr.Zero.
        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_cached_token(
            [In] byte[] baseUrl,
            [In] byte[] clientId,
            [In] byte[] clientSecret,
            [In] byte[] userId,
            [Out] byte[] buf,
            UIntPtr bufLen,
            out UIntPtr outLen);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_cached_token(
            ref byte baseUrl,
            ref byte clientId,
            ref byte clientSecret,
            ref byte userId,
            ref byte buf,
            UIntPtr bufLen,
            out UIntPtr outLen);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_cached_token(
            ref byte baseUrl,
            ref byte clientId,
            ref byte clientSecret,
            IntPtr userId,
            ref byte buf,
            UIntPtr bufLen,
            out UIntPtr outLen);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_invalidate(
            [In] byte[] baseUrl,
            [In] byte[] clientId,
            [In] byte[] userId);

        // Drops the cached token only if it is still `token` (the one the API answered 401 to):
        // N requests rejected with the same token renew it once. A null userId: the organization.
        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_invalidate_token(
            [In] byte[] baseUrl,
            [In] byte[] clientId,
            [In] byte[] userId,
            [In] byte[] token);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void findity_clear_cache();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_set_option([In] byte[] name, [In] byte[] value);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_last_error(
            [Out] byte[] buf,
            UIntPtr bufLen,
            out UIntPtr outLen);

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern ushort findity_last_http_status();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern IntPtr findity_version();

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_token_expires_in(
            [In] byte[] baseUrl,
            [In] byte[] clientId,
            [In] byte[] userId,
            out ulong seconds);

        // outSize: Marshal.SizeOf(typeof(FindityStatsNative)), the size of the struct declared here (a
        // newer library with a longer struct fills only these fields).
        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_stats(out FindityStatsNative stats, UIntPtr outSize);

        // typedef void (*FindityLogCallback)(uint32_t level, const char *message, void *userdata);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void LogCallback(uint level, IntPtr message, IntPtr userdata);

        // A null callback is passed as NULL (back to stderr).
        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_set_log_callback(LogCallback callback, IntPtr userdata);
    }

    // struct FindityStats, field for field (public fields: written only by the marshaler).
    [StructLayout(LayoutKind.Sequential)]
    internal struct FindityStatsNative
    {
        public ulong cache_hits;
        public ulong cache_misses;
        public ulong client_credentials_requests;
        public ulong refresh_token_requests;
        public ulong authorization_grant_requests;
        public ulong authorization_code_requests;
        public ulong background_refreshes;
        public ulong fallbacks;
        public ulong retries;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = 7)]
        public ulong[] failures;
        public ulong throttle_pauses;
        public ulong throttle_waits;
        public ulong idle_evictions;
        public ulong store_hits;
        public ulong store_writes;
        public ulong store_lock_waits;
        public ulong store_errors;
    }
}
