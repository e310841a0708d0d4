// C# figure for BENCHMARKS.md: FindityAuth.GetToken (cached) vs a bare P/Invoke of a no-op C
// function with the same signature (UTF-8 byte[] arguments, a byte buffer), same process; also vs
// the same no-op called the way FindityAuth calls the library (ref byte into reused arrays, encoded
// without allocating), the stricter floor.
// usage: mono Bench.exe URL   (LD_LIBRARY_PATH must reach libfindity.so and libnoop.so)
using System;
using System.Diagnostics;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Findity.Auth;

static class Bench
{
    [DllImport("noop", CallingConvention = CallingConvention.Cdecl)]
    static extern uint noop_get_token(byte[] baseUrl, byte[] clientId, byte[] secret, byte[] buf, UIntPtr len, out UIntPtr outLen);

    // FindityAuth's style (see NativeMethods.cs): every pointer a `ref byte` to element 0 of an array.
    [DllImport("noop", EntryPoint = "noop_get_token", CallingConvention = CallingConvention.Cdecl)]
    static extern uint noop_get_token_ref(ref byte baseUrl, ref byte clientId, ref byte secret, ref byte buf, UIntPtr len, out UIntPtr outLen);

    const string Client = "bench-client", Secret = "bench-secret-0123456789";

    static double PerCallNs(Action a, int n = 200000, int runs = 7)
    {
        var results = new double[runs];
        for (int r = 0; r < runs; r++)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < n; i++) a();
            results[r] = sw.Elapsed.TotalMilliseconds * 1e6 / n;
        }
        Array.Sort(results);
        return results[runs / 2];
    }

    static byte[] Z(string s) => Encoding.UTF8.GetBytes(s + "\0");

    static int Main(string[] args)
    {
        string url = args[0];
        FindityAuth.GetToken(url, Client, Secret); // cold, not measured
        var buf = new byte[2048];
        // Like the wrapper, the bare call encodes its strings each time.
        double bare = PerCallNs(() => { UIntPtr o; noop_get_token(Z(url), Z(Client), Z(Secret), buf, (UIntPtr)buf.Length, out o); });
        // The stricter floor: the same strings encoded each time, but into reused arrays, passed by ref.
        byte[] u8 = new byte[256], c8 = new byte[256], s8 = new byte[256];
        double bareRef = PerCallNs(() =>
        {
            u8[Encoding.UTF8.GetBytes(url, 0, url.Length, u8, 0)] = 0;
            c8[Encoding.UTF8.GetBytes(Client, 0, Client.Length, c8, 0)] = 0;
            s8[Encoding.UTF8.GetBytes(Secret, 0, Secret.Length, s8, 0)] = 0;
            UIntPtr o;
            noop_get_token_ref(ref u8[0], ref c8[0], ref s8[0], ref buf[0], (UIntPtr)buf.Length, out o);
        });
        double wrapped = PerCallNs(() => FindityAuth.GetToken(url, Client, Secret));
        Console.WriteLine("csharp_bare_ns={0:F0} csharp_wrapper_ns={1:F0} csharp_ratio={2:F2} csharp_bare_ref_ns={3:F0} csharp_ref_ratio={4:F2}",
            bare, wrapped, wrapped / bare, bareRef, wrapped / bareRef);
        return 0;
    }
}
