package com.findity.auth;

/** No usable HTTP answer: connect failure, TLS failure, timeout, connection cut. */
public class FindityNetworkException extends FindityException {
    private static final long serialVersionUID = 1L;

    public FindityNetworkException(int httpStatus, String message) {
        super(NETWORK, httpStatus, message);
    }
}
