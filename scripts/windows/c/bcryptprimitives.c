/* TEST ONLY, NEVER SHIPPED: a stand-in for Windows 10's bcryptprimitives.dll, which Wine 8
 * lacks. Rust's std imports ProcessPrng from it, so without it no Rust program starts under
 * Wine ("bcryptprimitives.dll not found", exit 53). Real Windows 10+ has its own; this one is
 * copied into the test Wine prefix's system32 only (scripts/windows/wine.sh).
 * ProcessPrng fills the buffer from RtlGenRandom (advapi32's SystemFunction036). */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
