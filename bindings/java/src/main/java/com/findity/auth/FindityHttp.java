package com.findity.auth;

import java.io.IOException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;

/**
 * Sends requests to the Findity API through a {@link HttpClient} with
 * {@code Authorization: Bearer <token>}, the token from {@link FindityAuth} (the organization's,
 * or {@code userId}'s when it is not null). When the API answers 401, that token is invalidated
 * ({@link FindityAuth#invalidateToken}: only if no other thread renewed it already), a token is
 * got again and the request is sent once more; a second 401 is returned as it is.
 *
 * <p>The one class of this package that needs Java 11 ({@code java.net.http}); everything else
 * runs on Java 8. Thread-safe: share one instance.
 *
 * <pre>{@code
 * FindityHttp http = new FindityHttp(HttpClient.newHttpClient(), "production", id, secret, null);
 * HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).build(),
 *         HttpResponse.BodyHandlers.ofString());
 * }</pre>
 */
public final class FindityHttp {
    private final HttpClient client;
    private final String baseUrl;
    private final String clientId;
    private final String clientSecret;
    private final String userId;

    public FindityHttp(HttpClient client, String baseUrl, String clientId, String clientSecret, String userId) {
        if (client == null) {
            throw new NullPointerException("client");
        }
        this.client = client;
        this.baseUrl = baseUrl;
        this.clientId = clientId;
        this.clientSecret = clientSecret;
        this.userId = userId;
    }

    /** The current token (cached by libfindity; fetched when needed). */
    public String token() {
        return userId == null
                ? FindityAuth.getToken(baseUrl, clientId, clientSecret)
                : FindityAuth.getUserToken(baseUrl, clientId, clientSecret, userId);
    }

    /**
     * Send {@code request} with the Bearer header (replacing any Authorization header it has);
     * on a 401, invalidate that token and send once more with a new one. The request's body
     * publisher is subscribed again for the second send (the JDK's publishers allow it).
     *
     * @throws FindityException when no token can be had (nothing is sent)
     */
    public <T> HttpResponse<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler)
            throws IOException, InterruptedException {
        String token = token();
        HttpResponse<T> response = client.send(withBearer(request, token), handler);
        if (response.statusCode() != 401) {
            return response;
        }
        Object body = response.body();
        if (body instanceof AutoCloseable) { // an InputStream or Stream: release the connection
            try {
                ((AutoCloseable) body).close();
            } catch (Exception ignored) {
                // the first answer is dropped anyway
            }
        }
        FindityAuth.invalidateToken(baseUrl, clientId, token, userId);
        return client.send(withBearer(request, token()), handler);
    }

    /** A copy of {@code request} with {@code Authorization: Bearer token} (Java 11's API). */
    static HttpRequest withBearer(HttpRequest request, String token) {
        HttpRequest.Builder b = HttpRequest.newBuilder(request.uri())
                .method(request.method(), request.bodyPublisher().orElse(HttpRequest.BodyPublishers.noBody()))
                .expectContinue(request.expectContinue());
        request.timeout().ifPresent(b::timeout);
        request.version().ifPresent(b::version);
        for (Map.Entry<String, List<String>> h : request.headers().map().entrySet()) {
            if (!h.getKey().equalsIgnoreCase("Authorization")) {
                for (String v : h.getValue()) {
                    b.header(h.getKey(), v);
                }
            }
        }
        return b.header("Authorization", "Bearer " + token).build();
    }

    @Override
    public String toString() { // never the secret
        return "FindityHttp{baseUrl=" + baseUrl + ", clientId=" + clientId + ", userId=" + userId + "}";
    }
}
