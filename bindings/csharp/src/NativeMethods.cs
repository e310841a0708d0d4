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
//  - size_t is UIntPtr; uint32_t is uint; uint16_t is ushort.
//  - No SetLastError: libfindity keeps its own thread-local last error, read right after the
//    failing call on the same thread (findity_last_error / findity_last_http_status).
//  - No callbacks are passed to native code, so no managed exception can unwind through native
//    frames; libfindity catches its own panics (FINDITY_ERR_INTERNAL).
//  - byte[] of byte is blittable: the marshaler pins it, no copy in or out.

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

        [DllImport(Library, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern uint findity_invalidate(
            [In] byte[] baseUrl,
            [In] byte[] clientId,
            [In] byte[] userId);

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
    }
}
