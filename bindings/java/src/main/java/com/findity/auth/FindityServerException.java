package com.findity.auth;

/** The server failed or answered something unusable (5xx, 429 past the timeout, bad JSON, redirect). */
public class FindityServerException extends FindityException {
    private static final long serialVersionUID = 1L;

    public FindityServerException(int httpStatus, String message) {
        super(SERVER, httpStatus, message);
    }
}
