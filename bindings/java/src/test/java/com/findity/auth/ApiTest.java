package com.findity.auth;

import static org.junit.jupiter.api.Assertions.*;

import java.net.ServerSocket;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class ApiTest {
    static Emulator emu;
    static String url;
    static final String ID = Emulator.ID;
    static final String SECRET = Emulator.SECRET;

    @BeforeAll
    static void start() throws Exception {
        emu = new Emulator("--unknown-users", "ghost");
        url = emu.url;
    }

    @AfterAll
    static void stop() throws Exception {
        FindityAuth.setOption("timeout_ms", null);
        emu.close();
    }

    @BeforeEach
    void fresh() throws Exception {
        FindityAuth.clearCache();
        emu.control("POST", "/_emulator/reset");
    }

    @Test
    void versionIsTheLibrarys() {
        assertTrue(FindityAuth.version().matches("0\\.\\d+\\.\\d+"), FindityAuth.version());
    }

    @Test
    void organizationTokenIsCached() throws Exception {
        FindityStats before = FindityAuth.stats();
        String t1 = FindityAuth.getToken(url, ID, SECRET);
        String t2 = FindityAuth.getToken(url, ID, SECRET);
        assertFalse(t1.isEmpty());
        assertEquals(t1, t2);
        assertEquals(1, emu.stat("client_credentials"));
        FindityStats after = FindityAuth.stats();
        assertEquals(1, after.clientCredentialsRequests - before.clientCredentialsRequests);
        assertTrue(after.cacheHits - before.cacheHits >= 1, after.toString());
        long left = FindityAuth.tokenExpiresIn(url, ID, null);
        assertTrue(left > 3500 && left <= 3600, "expires in " + left);
    }

    @Test
    void userTokenTakesThreeRequestsOnce() throws Exception {
        String u1 = FindityAuth.getUserToken(url, ID, SECRET, "E1");
        String u2 = FindityAuth.getUserToken(url, ID, SECRET, "E1");
        assertEquals(u1, u2);
        assertNotEquals(u1, FindityAuth.getToken(url, ID, SECRET));
        assertEquals(3, emu.stat("token_requests") + emu.stat("authorization_grant"));
        assertEquals(u1, FindityAuth.cachedToken(url, ID, SECRET, "E1"));
        assertTrue(FindityAuth.tokenExpiresIn(url, ID, "E1") > 0);
    }

    @Test
    void cachedTokenNeverRequests() throws Exception {
        assertNull(FindityAuth.cachedToken(url, ID, SECRET, null));
        assertNull(FindityAuth.cachedToken(url, ID, SECRET, "E1"));
        assertEquals(0, emu.stat("token_requests"));
        String t = FindityAuth.getToken(url, ID, SECRET);
        assertEquals(t, FindityAuth.cachedToken(url, ID, SECRET, null));
        assertNull(FindityAuth.cachedToken(url, ID, "another-secret", null), "another secret gets nothing");
        assertEquals(1, emu.stat("token_requests"));
    }

    @Test
    void invalidateTokenDropsOnlyThatToken() throws Exception {
        String t1 = FindityAuth.getToken(url, ID, SECRET);
        FindityAuth.invalidateToken(url, ID, t1, null);
        assertNull(FindityAuth.cachedToken(url, ID, SECRET, null));
        String t2 = FindityAuth.getToken(url, ID, SECRET);
        assertNotEquals(t1, t2);
        FindityAuth.invalidateToken(url, ID, t1, null); // stale: t2 is kept
        assertEquals(t2, FindityAuth.cachedToken(url, ID, SECRET, null));
        FindityAuth.invalidate(url, ID, null);
        assertNull(FindityAuth.cachedToken(url, ID, SECRET, null));
        assertEquals(0, FindityAuth.tokenExpiresIn(url, ID, null));
        FindityAuth.invalidate(url, ID, "nobody"); // nothing cached: fine
    }

    @Test
    void userTokenInvalidation() throws Exception {
        String u1 = FindityAuth.getUserToken(url, ID, SECRET, "E2");
        FindityAuth.invalidateToken(url, ID, u1, "E2");
        assertNull(FindityAuth.cachedToken(url, ID, SECRET, "E2"));
        assertNotNull(FindityAuth.cachedToken(url, ID, SECRET, null), "the organization token stays");
        assertNotEquals(u1, FindityAuth.getUserToken(url, ID, SECRET, "E2"));
    }

    @Test
    void clearCacheForgetsEverything() throws Exception {
        FindityAuth.getToken(url, ID, SECRET);
        FindityAuth.getUserToken(url, ID, SECRET, "E3");
        FindityAuth.clearCache();
        assertNull(FindityAuth.cachedToken(url, ID, SECRET, null));
        assertNull(FindityAuth.cachedToken(url, ID, SECRET, "E3"));
    }

    @Test
    void wrongSecretIsAnAuthExceptionWithoutTheSecret() {
        String secret = "wrong-secret-xyz-123";
        FindityAuthException e = assertThrows(FindityAuthException.class,
                () -> FindityAuth.getToken(url, ID, secret));
        assertEquals(FindityException.AUTH, e.getStatus());
        assertEquals(401, e.getHttpStatus());
        assertTrue(e.getMessage().contains("invalid_client"), e.getMessage());
        assertFalse(e.getMessage().contains(secret));
        assertEquals(1, FindityAuth.stats().failures[FindityException.AUTH] > 0 ? 1 : 0);
    }

    @Test
    void unknownUserIsAnAuthException() {
        FindityAuthException e = assertThrows(FindityAuthException.class,
                () -> FindityAuth.getUserToken(url, ID, SECRET, "ghost"));
        assertEquals(400, e.getHttpStatus());
    }

    @Test
    void serverFailureIsAServerException() throws Exception {
        FindityAuth.setOption("timeout_ms", "1500");
        try {
            emu.fault("endpoint=token&kind=status:500&count=0");
            FindityServerException e = assertThrows(FindityServerException.class,
                    () -> FindityAuth.getToken(url, ID, SECRET));
            assertEquals(FindityException.SERVER, e.getStatus());
            assertEquals(500, e.getHttpStatus());
        } finally {
            FindityAuth.setOption("timeout_ms", "");
            emu.control("POST", "/_emulator/fault/clear");
        }
    }

    @Test
    void noServerIsANetworkException() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        FindityAuth.setOption("timeout_ms", "1000");
        try {
            FindityNetworkException e = assertThrows(FindityNetworkException.class,
                    () -> FindityAuth.getToken("http://127.0.0.1:" + port, ID, SECRET));
            assertEquals(FindityException.NETWORK, e.getStatus());
            assertEquals(0, e.getHttpStatus());
            assertFalse(e.getMessage().isEmpty());
        } finally {
            FindityAuth.setOption("timeout_ms", "");
        }
    }

    @Test
    void invalidArgumentsAreIllegalArgumentExceptions() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> FindityAuth.getToken("ftp://example.com", ID, SECRET));
        assertTrue(e.getMessage().contains("base_url"), e.getMessage()); // the library's message
        assertThrows(IllegalArgumentException.class, () -> FindityAuth.getToken(url, "", SECRET));
        assertThrows(IllegalArgumentException.class, () -> FindityAuth.getToken(url, null, SECRET));
        assertThrows(IllegalArgumentException.class, () -> FindityAuth.getToken(null, ID, SECRET));
        assertThrows(IllegalArgumentException.class, () -> FindityAuth.getUserToken(url, ID, SECRET, null));
        assertThrows(IllegalArgumentException.class, () -> FindityAuth.getToken(url, "a\0b", SECRET));
        assertThrows(IllegalArgumentException.class, () -> FindityAuth.getToken(url, "a\ud800", SECRET));
        assertThrows(IllegalArgumentException.class, () -> FindityAuth.invalidateToken(url, ID, null, null));
        IllegalArgumentException o = assertThrows(IllegalArgumentException.class,
                () -> FindityAuth.setOption("no_such_option", "1"));
        assertTrue(o.getMessage().contains("no_such_option"), o.getMessage());
        assertThrows(IllegalArgumentException.class, () -> FindityAuth.setOption("timeout_ms", "soon"));
    }

    @Test
    void nonAsciiArgumentsAreUtf8() throws Exception {
        String u = FindityAuth.getUserToken(url, ID, SECRET, "Åsa-Ö");
        assertEquals(u, FindityAuth.cachedToken(url, ID, SECRET, "Åsa-Ö"));
    }

    @Test
    void statsHaveEveryCounter() {
        FindityStats s = FindityAuth.stats();
        assertEquals(7, s.failures.length);
        assertTrue(s.toString().contains("storeErrors="));
    }
}
