package com.findity.auth;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Single flight is the library's: 16 threads asking at once for one cold key make one request. */
class ConcurrencyTest {
    static List<String> together(int n, Callable<String> call) throws Exception {
        CyclicBarrier start = new CyclicBarrier(n);
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<String>> futures = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                futures.add(pool.submit(() -> {
                    start.await();
                    return call.call();
                }));
            }
            List<String> out = new ArrayList<>();
            for (Future<String> f : futures) {
                out.add(f.get(30, TimeUnit.SECONDS));
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void sixteenThreadsOneColdKeyOneRequest() throws Exception {
        try (Emulator emu = new Emulator("--latency-ms", "300")) {
            List<String> tokens = together(16, () -> FindityAuth.getToken(emu.url, Emulator.ID, Emulator.SECRET));
            Set<String> distinct = new HashSet<>(tokens);
            assertEquals(1, distinct.size(), "every thread got the same token");
            assertEquals(1, emu.stat("client_credentials"), "one request for 16 threads");
            assertEquals(1, emu.stat("max_concurrent"));
        }
    }

    @Test
    void sixteenThreadsOneColdUserThreeRequests() throws Exception {
        try (Emulator emu = new Emulator("--latency-ms", "200")) {
            List<String> tokens = together(16,
                    () -> FindityAuth.getUserToken(emu.url, Emulator.ID, Emulator.SECRET, "E16"));
            assertEquals(1, new HashSet<>(tokens).size());
            assertEquals(1, emu.stat("client_credentials"));
            assertEquals(1, emu.stat("authorization_grant"));
            assertEquals(1, emu.stat("authorization_code"));
        }
    }

    @Test
    void failuresReachEveryThreadWithTheirOwnMessage() throws Exception {
        // The last error is per thread: each thread reads its own status and message.
        try (Emulator emu = new Emulator("--latency-ms", "100")) {
            List<String> out = together(16, () -> {
                try {
                    FindityAuth.getToken(emu.url, Emulator.ID, "not-the-secret");
                    return "no exception";
                } catch (FindityAuthException e) {
                    return e.getHttpStatus() + " " + (e.getMessage().contains("invalid_client") ? "ok" : e.getMessage());
                }
            });
            for (String o : out) {
                assertEquals("401 ok", o);
            }
        }
    }
}
