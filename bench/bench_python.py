"""Python figures for BENCHMARKS.md, each a median of repeated runs (interleaved, see interleaved()):
  wrapper   findity_auth.get_token (cached) vs a bare ctypes call of a no-op C function with the
            same signature (bytes arguments, a buffer) in the same process; also vs the same
            no-op called the way findity_auth calls the library (no argtypes), the stricter floor
  cold      one cold token over HTTPS with `requests` (fresh session), for comparison with the
            library and curl
usage: bench_python.py wrapper URL NOOP_LIB | cold URL CAFILE"""
import ctypes
import statistics
import sys
import time

CLIENT, SECRET = "bench-client", "bench-secret-0123456789"


def interleaved(fns, n=20_000, runs=35):
    """ns per call of each of `fns`, and each one's ratio to the first, as medians over `runs`
    rounds; in each round every function runs `n` calls in turn (order rotating), so all are
    measured at the same moments of this host, whose speed swings within a second."""
    per = [[] for _ in fns]
    for r in range(runs):
        for k in range(len(fns)):
            i = (r + k) % len(fns)
            fn = fns[i]
            t0 = time.perf_counter_ns()
            for _ in range(n):
                fn()
            per[i].append((time.perf_counter_ns() - t0) / n)
    ns = [statistics.median(p) for p in per]
    ratios = [statistics.median(a / b for a, b in zip(p, per[0])) for p in per]
    return ns, ratios


def wrapper(url, noop_path):
    import findity_auth

    findity_auth.get_token(url, CLIENT, SECRET)  # cold, not measured
    noop = ctypes.CDLL(noop_path)
    f = noop.noop_get_token
    f.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    f.restype = ctypes.c_uint32
    buf = ctypes.create_string_buffer(2048)
    out = ctypes.c_size_t()
    # Like the wrapper, the bare call encodes its str arguments each time.
    def bare():
        f(url.encode(), CLIENT.encode(), SECRET.encode(), buf, 2048, ctypes.byref(out))

    # findity_auth declares its token functions without argtypes (ctypes' per-argument from_param
    # conversion costs more than the rest of the call) and passes a c_size_t and a ready-made
    # pointer. The same style here, still encoding each time, is the floor for that style.
    g = ctypes.CDLL(noop_path)["noop_get_token"]  # a function object of its own: no argtypes
    g.restype = ctypes.c_uint32
    buf_len, out_ptr = ctypes.c_size_t(2048), ctypes.pointer(out)

    def bare_untyped():
        g(url.encode(), CLIENT.encode(), SECRET.encode(), buf, buf_len, out_ptr)

    def wrapped():
        findity_auth.get_token(url, CLIENT, SECRET)

    (wrap_ns, bare_ns, untyped_ns), (_, to_bare, to_untyped) = interleaved([wrapped, bare, bare_untyped])
    print("python_bare_ns=%.0f python_wrapper_ns=%.0f python_ratio=%.2f python_bare_untyped_ns=%.0f python_untyped_ratio=%.2f"
          % (bare_ns, wrap_ns, 1 / to_bare, untyped_ns, 1 / to_untyped))


def cold(url, ca):
    import requests

    t0 = time.perf_counter()
    r = requests.post(url + "/api/oauth/token/", data={"grant_type": "client_credentials", "client_id": CLIENT,
                                                       "client_secret": SECRET}, verify=ca, timeout=10)
    ms = (time.perf_counter() - t0) * 1e3
    r.raise_for_status()
    print("requests_cold_ms=%.3f" % ms)


if __name__ == "__main__":
    {"wrapper": wrapper, "cold": cold}[sys.argv[1]](*sys.argv[2:])
