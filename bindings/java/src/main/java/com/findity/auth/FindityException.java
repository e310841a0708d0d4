package com.findity.auth;

/**
 * A libfindity call failed. {@link #getMessage()} is the library's message: what failed, the
 * endpoint, the HTTP status and the server's error code and description. It never contains a
 * client secret, refresh token, access token or code.
 *
 * <p>Subclasses per status make {@code catch} clauses easy: {@link FindityNetworkException},
 * {@link FindityAuthException}, {@link FindityServerException}; a bug in the library (status 6,
 * {@link #INTERNAL}) is a plain {@code FindityException}. An invalid argument (status 1) is an
 * {@link IllegalArgumentException} instead, carrying the library's message.
 */
public class FindityException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** {@code FINDITY_ERR_INVALID_ARGUMENT}: thrown as {@link IllegalArgumentException}. */
    public static final int INVALID_ARGUMENT = 1;
    /** {@code FINDITY_ERR_NETWORK}: no usable HTTP answer (connect, TLS, timeout). */
    public static final int NETWORK = 3;
    /** {@code FINDITY_ERR_AUTH}: the server refused (bad client id or secret, unknown user). */
    public static final int AUTH = 4;
    /** {@code FINDITY_ERR_SERVER}: 5xx, 429 past the timeout, an unusable answer. */
    public static final int SERVER = 5;
    /** {@code FINDITY_ERR_INTERNAL}: a bug in libfindity (a caught panic). Please report it. */
    public static final int INTERNAL = 6;

    private final int status;
    private final int httpStatus;

    public FindityException(int status, int httpStatus, String message) {
        super(message == null || message.isEmpty() ? "libfindity failed with status " + status : message);
        this.status = status;
        this.httpStatus = httpStatus;
    }

    /** The library's status code ({@code FINDITY_ERR_*} in findity.h). */
    public int getStatus() {
        return status;
    }

    /** HTTP status of the answer behind the failure; 0 when there was no HTTP answer. */
    public int getHttpStatus() {
        return httpStatus;
    }
}
