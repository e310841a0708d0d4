package com.findity.auth;

import com.sun.jna.Callback;
import com.sun.jna.CallbackThreadInitializer;
import com.sun.jna.Function;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Platform;
import com.sun.jna.Pointer;
import java.io.File;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Loading libfindity and its C signatures: the only class of this package that uses JNA.
 *
 * <p>The library is looked for in this order, the first that loads wins:
 * <ol>
 *   <li>{@code $FINDITY_LIB}: a path to the library file (or to a directory holding it);</li>
 *   <li>the copy bundled in the jar for the running platform, at JNA's resource path
 *       ({@code linux-x86-64/libfindity.so}, {@code linux-aarch64/}, {@code win32-x86-64/findity.dll});</li>
 *   <li>the system's library path ({@code jna.library.path}, {@code LD_LIBRARY_PATH}, ldconfig).</li>
 * </ol>
 * A {@code $FINDITY_LIB} that cannot be loaded is logged as a warning (logger
 * {@code com.findity.auth}) and the next place is tried; when none loads, every call throws an
 * {@link UnsatisfiedLinkError} naming the three places and why each failed.
 *
 * <p>Every C function of findity.h is declared once below (JNA direct mapping, calls run on the
 * calling thread). The library's last error is thread-local: {@link #lastError(int)} reads it on
 * the calling thread right after the failed call.
 */
final class FindityNative {
    private FindityNative() {}

    static final String ENV_VAR = "FINDITY_LIB";
    /** The FINDITY_VERSION_MAJOR whose signatures are declared here. */
    static final int ABI_MAJOR = 0;
    static final int OK = 0;
    static final int BUFFER_TOO_SMALL = 2;
    static final int NOT_CACHED = 7;
    static final int INITIAL_BUFFER_SIZE = 2048;
    private static final int MAX_ATTEMPTS = 8;

    static final Logger LOG = Logger.getLogger("com.findity.auth");

    /** Where the library was loaded from; null when it could not be loaded. */
    static final String LOADED_FROM;
    private static final String LOAD_FAILURE;

    static {
        String from = null;
        String failure = null;
        try {
            from = load();
        } catch (UnsatisfiedLinkError e) {
            failure = e.getMessage();
        }
        LOADED_FROM = from;
        LOAD_FAILURE = failure;
    }

    /** Throws the loading failure (a fresh error each time, so every caller sees why). */
    static void ensureLoaded() {
        if (LOAD_FAILURE != null) {
            throw new UnsatisfiedLinkError(LOAD_FAILURE);
        }
    }

    private static String load() {
        if (Native.SIZE_T_SIZE != 8) {
            throw new UnsatisfiedLinkError("findity-auth needs a 64-bit JVM (size_t is "
                    + Native.SIZE_T_SIZE + " bytes here)");
        }
        String libFile = System.mapLibraryName("findity");
        List<String> tried = new ArrayList<String>();
        String env = System.getenv(ENV_VAR);
        if (env != null && !env.isEmpty()) {
            File f = new File(env);
            String path = (f.isDirectory() ? new File(f, libFile) : f).getAbsolutePath();
            try {
                return open(path);
            } catch (UnsatisfiedLinkError e) {
                tried.add("1. $" + ENV_VAR + "=" + env + ": " + e.getMessage());
            }
        } else {
            tried.add("1. $" + ENV_VAR + " (a path to " + libFile + "): not set");
        }

        String resource = Platform.RESOURCE_PREFIX + "/" + libFile;
        ClassLoader loader = FindityNative.class.getClassLoader();
        URL url = loader == null ? ClassLoader.getSystemResource(resource) : loader.getResource(resource);
        if (url != null) {
            try {
                String path = "file".equals(url.getProtocol())
                        ? new File(url.toURI()).getAbsolutePath()
                        : Native.extractFromResourcePath("/" + resource, loader).getAbsolutePath();
                return fallback(env, open(path), tried);
            } catch (UnsatisfiedLinkError e) {
                tried.add("2. the copy bundled in the jar, " + resource + ": " + e.getMessage());
            } catch (Exception e) {
                tried.add("2. the copy bundled in the jar, " + resource + ": " + e);
            }
        } else {
            tried.add("2. the copy bundled in the jar, " + resource + ": not in the jar");
        }

        try {
            return fallback(env, open("findity"), tried);
        } catch (UnsatisfiedLinkError e) {
            tried.add("3. the system library path, " + libFile + ": " + e.getMessage());
        }
        StringBuilder msg = new StringBuilder("findity-auth could not load the native library ")
                .append(libFile).append(". Tried, in order:");
        for (String t : tried) {
            msg.append("\n  ").append(t);
        }
        msg.append("\nFix: set ").append(ENV_VAR).append(" to the path of ").append(libFile)
                .append(", use the jar with the library bundled for this platform (")
                .append(Platform.RESOURCE_PREFIX).append("), or install ").append(libFile)
                .append(" where the system loader finds it.");
        throw new UnsatisfiedLinkError(msg.toString());
    }

    private static String fallback(String env, String loaded, List<String> tried) {
        if (env != null && !env.isEmpty()) { // set, but it did not load: say so
            LOG.warning("$" + ENV_VAR + "=" + env + " could not be loaded (" + tried.get(0)
                    + "); using " + loaded + " instead");
        }
        return loaded;
    }

    /** Load {@code name}, check it is a libfindity of this ABI, and bind the natives below. */
    private static String open(String name) {
        NativeLibrary lib = NativeLibrary.getInstance(name);
        Function version;
        try {
            version = lib.getFunction("findity_version");
        } catch (UnsatisfiedLinkError e) {
            throw new UnsatisfiedLinkError("loaded " + lib.getFile() + ", but it is not libfindity"
                    + " (no findity_version symbol)");
        }
        Pointer p = (Pointer) version.invoke(Pointer.class, new Object[0]);
        String found = p == null ? "" : p.getString(0, "UTF-8");
        if (!found.split("\\.")[0].equals(String.valueOf(ABI_MAJOR))) {
            throw new UnsatisfiedLinkError("loaded libfindity " + found + " from " + lib.getFile()
                    + ", but findity-auth needs version " + ABI_MAJOR + ".x");
        }
        Native.register(FindityNative.class, lib);
        File file = lib.getFile();
        return file != null ? file.getAbsolutePath() : name;
    }

    // ---- The whole C ABI of findity.h, declared once (the C prototype above each).
    // Strings: NUL-terminated UTF-8 byte[] (see cstr; null is NULL). size_t: long (64-bit only,
    // checked in load). Output buffers and out-parameters: native Memory.

    // uint32_t findity_get_token(const char *base_url, const char *client_id,
    //                            const char *client_secret, char *buf, size_t buf_len, size_t *out_len)
    static native int findity_get_token(byte[] baseUrl, byte[] clientId, byte[] clientSecret,
            Pointer buf, long bufLen, Pointer outLen);

    // uint32_t findity_user_token(const char *base_url, const char *client_id,
    //                             const char *client_secret, const char *user_id,
    //                             char *buf, size_t buf_len, size_t *out_len)
    static native int findity_user_token(byte[] baseUrl, byte[] clientId, byte[] clientSecret,
            byte[] userId, Pointer buf, long bufLen, Pointer outLen);

    // uint32_t findity_cached_token(const char *base_url, const char *client_id,
    //                               const char *client_secret, const char *user_id /* NULL: org */,
    //                               char *buf, size_t buf_len, size_t *out_len)
    static native int findity_cached_token(byte[] baseUrl, byte[] clientId, byte[] clientSecret,
            byte[] userId, Pointer buf, long bufLen, Pointer outLen);

    // uint32_t findity_invalidate(const char *base_url, const char *client_id, const char *user_id)
    static native int findity_invalidate(byte[] baseUrl, byte[] clientId, byte[] userId);

    // uint32_t findity_invalidate_token(const char *base_url, const char *client_id,
    //                                   const char *user_id /* NULL: org */, const char *token)
    static native int findity_invalidate_token(byte[] baseUrl, byte[] clientId, byte[] userId, byte[] token);

    // uint32_t findity_token_expires_in(const char *base_url, const char *client_id,
    //                                   const char *user_id, uint64_t *seconds)
    static native int findity_token_expires_in(byte[] baseUrl, byte[] clientId, byte[] userId, Pointer seconds);

    // void findity_clear_cache(void)
    static native void findity_clear_cache();

    // uint32_t findity_set_option(const char *name, const char *value)
    static native int findity_set_option(byte[] name, byte[] value);

    // typedef void (*FindityLogCallback)(uint32_t level, const char *message, void *userdata)
    interface LogCallback extends Callback {
        void invoke(int level, Pointer message, Pointer userdata);
    }

    // uint32_t findity_set_log_callback(FindityLogCallback callback, void *userdata)
    static native int findity_set_log_callback(LogCallback callback, Pointer userdata);

    // uint32_t findity_stats(struct FindityStats *out, size_t out_size)
    static native int findity_stats(Pointer out, long outSize);

    // uint32_t findity_last_error(char *buf, size_t buf_len, size_t *out_len)
    static native int findity_last_error(Pointer buf, long bufLen, Pointer outLen);

    // uint16_t findity_last_http_status(void)
    static native short findity_last_http_status();

    // const char *findity_version(void)
    static native Pointer findity_version();

    /**
     * struct FindityStats: 9 uint64_t counters, uint64_t failures[7], then 7 more counters
     * (fields are only ever appended; findity_stats fills out_size bytes).
     */
    static final int STATS_BEFORE = 9;
    static final int STATS_FAILURES = 7;
    static final int STATS_AFTER = 7;
    static final int STATS_SIZE = 8 * (STATS_BEFORE + STATS_FAILURES + STATS_AFTER);

    // ---- Helpers

    /** A Java string as NUL-terminated UTF-8 (null stays null: NULL for the library). */
    static byte[] cstr(String s, String name) {
        if (s == null) {
            return null;
        }
        int n = s.length();
        boolean ascii = true;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c == 0) {
                throw new IllegalArgumentException(name + " contains a NUL character");
            }
            if (c >= 0x80) {
                ascii = false;
            }
        }
        if (ascii) {
            byte[] out = new byte[n + 1];
            for (int i = 0; i < n; i++) {
                out[i] = (byte) s.charAt(i);
            }
            return out;
        }
        CharsetEncoder enc = StandardCharsets.UTF_8.newEncoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer bb;
        try {
            bb = enc.encode(CharBuffer.wrap(s));
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(name + " is not valid Unicode (an unpaired surrogate)");
        }
        byte[] out = new byte[bb.remaining() + 1];
        bb.get(out, 0, out.length - 1);
        return out;
    }

    /** Output space of a token call: a buffer, its size and out_len. */
    static final class Space {
        final Memory buf;
        final long size;
        final Memory outLen = new Memory(8);

        Space(long size) {
            this.size = size;
            this.buf = new Memory(size);
        }

        String token() {
            long len = outLen.getLong(0);
            return new String(buf.getByteArray(0, (int) len), StandardCharsets.UTF_8);
        }
    }

    /**
     * Per-thread output spaces, reused call after call; taken out for the duration of a call so
     * that a token call made from inside another on the same thread (from a log handler) gets a
     * space of its own.
     */
    private static final ThreadLocal<ArrayDeque<Space>> SPACES = new ThreadLocal<ArrayDeque<Space>>() {
        @Override
        protected ArrayDeque<Space> initialValue() {
            return new ArrayDeque<Space>();
        }
    };

    /** One of the three token calls, given a space. */
    interface TokenCall {
        int call(Pointer buf, long bufLen, Pointer outLen);
    }

    /**
     * Run a token call, growing the buffer on BUFFER_TOO_SMALL (the library keeps the token
     * cached, so the retry sends no request). Returns the token; null for NOT_CACHED when
     * {@code notCachedIsNull}; throws for any other failure, reading the last error on this
     * thread right after the call.
     */
    static String tokenCall(TokenCall fn, boolean notCachedIsNull) {
        ArrayDeque<Space> pool = SPACES.get();
        Space space = pool.poll();
        if (space == null) {
            space = new Space(INITIAL_BUFFER_SIZE);
        }
        int status = fn.call(space.buf, space.size, space.outLen);
        for (int i = 0; status == BUFFER_TOO_SMALL && i < MAX_ATTEMPTS; i++) {
            long needed = space.outLen.getLong(0) + 1;
            space = new Space(needed > space.size ? needed : space.size * 2);
            status = fn.call(space.buf, space.size, space.outLen);
        }
        if (status == OK) {
            String token = space.token();
            pool.push(space);
            return token;
        }
        if (status == NOT_CACHED && notCachedIsNull) {
            pool.push(space);
            return null;
        }
        RuntimeException e = lastError(status);
        pool.push(space);
        throw e;
    }

    /** Throw for a status other than OK (reads the last error on this thread). */
    static void check(int status) {
        if (status != OK) {
            throw lastError(status);
        }
    }

    /** The exception for a failed call: call on the same thread, right after it. */
    static RuntimeException lastError(int status) {
        int http = findity_last_http_status() & 0xffff;
        String message = "";
        Space s = new Space(1024);
        int st = findity_last_error(s.buf, s.size, s.outLen);
        if (st == BUFFER_TOO_SMALL) {
            s = new Space(s.outLen.getLong(0) + 1);
            st = findity_last_error(s.buf, s.size, s.outLen);
        }
        if (st == OK) {
            message = s.token();
        }
        switch (status) {
            case FindityException.INVALID_ARGUMENT:
                return new IllegalArgumentException(message.isEmpty() ? "invalid argument" : message);
            case FindityException.NETWORK:
                return new FindityNetworkException(http, message);
            case FindityException.AUTH:
                return new FindityAuthException(http, message);
            case FindityException.SERVER:
                return new FindityServerException(http, message);
            case BUFFER_TOO_SMALL:
                return new FindityException(FindityException.INTERNAL, http, "the token kept growing: " + message);
            default:
                return new FindityException(status, http, message);
        }
    }

    // ---- The log bridge: one callback object for the life of the process (the library may
    // call the previous callback once more after it was replaced), routed to java.util.logging.

    static final LogCallback LOG_CALLBACK = new LogCallback() {
        @Override
        public void invoke(int level, Pointer message, Pointer userdata) {
            try {
                if (!logging) {
                    return;
                }
                String line = message == null ? "" : message.getString(0, "UTF-8");
                Level l = level == 1 ? Level.SEVERE : level == 2 ? Level.WARNING : level == 3 ? Level.INFO : Level.FINE;
                LOG.log(l, "{0}", line); // a line is data, never a format pattern
            } catch (Throwable t) { // nothing may unwind into the library
            }
        }
    };

    static volatile boolean logging;

    static {
        if (LOAD_FAILURE == null) {
            // The library's threads stay attached as daemons (they never keep the JVM alive and
            // are not attached and detached again for every line).
            Native.setCallbackThreadInitializer(LOG_CALLBACK,
                    new CallbackThreadInitializer(true, false, "findity-native"));
        }
    }
}
