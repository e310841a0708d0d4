package com.findity.auth;

/** The server refused (HTTP 400/401/403): bad client id or secret, unknown user, refused grant. */
public class FindityAuthException extends FindityException {
    private static final long serialVersionUID = 1L;

    public FindityAuthException(int httpStatus, String message) {
        super(AUTH, httpStatus, message);
    }
}
