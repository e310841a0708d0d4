package com.findity.auth;

import static org.junit.jupiter.api.Assertions.*;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class HttpTest {
    static Emulator emu;
    static final HttpClient CLIENT = HttpClient.newHttpClient();

    @BeforeAll
    static void start() throws Exception {
        emu = new Emulator();
    }

    @AfterAll
    static void stop() throws Exception {
        emu.close();
    }

    @BeforeEach
    void fresh() throws Exception {
        FindityAuth.clearCache();
        emu.control("POST", "/_emulator/reset");
    }

    HttpRequest get(String path) {
        return HttpRequest.newBuilder(URI.create(emu.url + path)).header("Accept", "application/json").build();
    }

    @Test
    void sendsTheBearerToken() throws Exception {
        FindityHttp http = new FindityHttp(CLIENT, emu.url, Emulator.ID, Emulator.SECRET, null);
        HttpResponse<String> r = http.send(get("/api/v1/expenses"), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.body().contains("org:" + Emulator.ID), r.body());
        FindityHttp user = new FindityHttp(CLIENT, emu.url, Emulator.ID, Emulator.SECRET, "E1234");
        r = user.send(get("/api/v1/me"), HttpResponse.BodyHandlers.ofString());
        assertTrue(r.body().contains("user:E1234"), r.body());
        assertFalse(http.toString().contains(Emulator.SECRET));
    }

    @Test
    void resendsOnceAfterA401WithANewToken() throws Exception {
        FindityHttp http = new FindityHttp(CLIENT, emu.url, Emulator.ID, Emulator.SECRET, null);
        String before = http.token();
        emu.fault("endpoint=api&kind=status:401");
        HttpResponse<String> r = http.send(
                HttpRequest.newBuilder(URI.create(emu.url + "/api/v1/expenses"))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"amount\":1}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(1, emu.stat("faults_served"));
        assertEquals(2, emu.stat("api_requests"));
        assertEquals(2, emu.stat("token_requests"), "the rejected token was renewed");
        assertNotEquals(before, http.token());
    }

    @Test
    void aSecond401IsReturned() throws Exception {
        FindityHttp http = new FindityHttp(CLIENT, emu.url, Emulator.ID, Emulator.SECRET, null);
        emu.fault("endpoint=api&kind=status:401&count=3");
        HttpResponse<java.io.InputStream> r = http.send(get("/api/v1/expenses"), HttpResponse.BodyHandlers.ofInputStream());
        r.body().close();
        assertEquals(401, r.statusCode());
        assertEquals(2, emu.stat("api_requests"), "sent twice, no more");
    }

    @Test
    void noTokenMeansNothingSent() throws Exception {
        FindityHttp http = new FindityHttp(CLIENT, emu.url, Emulator.ID, "wrong", null);
        assertThrows(FindityAuthException.class, () -> http.send(get("/api/v1/expenses"), HttpResponse.BodyHandlers.ofString()));
        assertEquals(0, emu.stat("api_requests"));
    }
}
