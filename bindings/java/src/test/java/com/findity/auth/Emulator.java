package com.findity.auth;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** target/debug/findity-emulator ($FINDITY_EMULATOR) on a free port, and its control API. */
final class Emulator implements AutoCloseable {
    static final String ID = "java-client";
    static final String SECRET = "java-secret-do-not-leak";

    private final Process process;
    final String url;

    Emulator(String... extra) throws Exception {
        String exe = System.getenv("FINDITY_EMULATOR");
        if (exe == null || exe.isEmpty()) {
            throw new IllegalStateException("FINDITY_EMULATOR is not set (make test-java sets it)");
        }
        Path urlFile = Files.createTempFile("findity-emulator", ".url");
        List<String> cmd = new ArrayList<>(List.of(exe, "--port", "0", "--quiet", "--exit-on-stdin-close",
                "--url-file", urlFile.toString(), "--client", ID + ":" + SECRET,
                "--client", "other-client:other-secret"));
        cmd.addAll(List.of(extra));
        process = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String u = "";
        for (int i = 0; i < 200 && u.isEmpty(); i++) {
            Thread.sleep(25);
            u = Files.readString(urlFile).trim();
        }
        Files.deleteIfExists(urlFile);
        if (u.isEmpty()) {
            process.destroy();
            throw new IllegalStateException("the emulator did not start");
        }
        url = u;
    }

    String control(String method, String path) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(url + path).openConnection();
        c.setRequestMethod(method);
        if (method.equals("POST")) {
            c.setDoOutput(true);
            c.getOutputStream().close();
        }
        try (InputStream in = c.getResponseCode() < 400 ? c.getInputStream() : c.getErrorStream()) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            in.transferTo(out);
            return out.toString(StandardCharsets.UTF_8);
        }
    }

    /** One top-level counter of GET /_emulator/stats. */
    long stat(String name) throws IOException {
        Matcher m = Pattern.compile("\"" + name + "\":(\\d+)").matcher(control("GET", "/_emulator/stats"));
        if (!m.find()) {
            throw new IllegalStateException("no counter " + name);
        }
        return Long.parseLong(m.group(1));
    }

    void config(String query) throws IOException {
        control("POST", "/_emulator/config?" + query);
    }

    void fault(String query) throws IOException {
        control("POST", "/_emulator/fault?" + query);
    }

    @Override
    public void close() throws IOException {
        process.getOutputStream().close(); // --exit-on-stdin-close
        process.destroyForcibly(); // no graceful wait for connections a fault left hanging
    }
}
