package com.findity.auth;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The loading order, each case in a child JVM (a JVM loads the library once): $FINDITY_LIB,
 * else the copy bundled in the jar, else the system library path. Paths come from system
 * properties set by scripts/test-java.sh.
 */
class LoadingTest {
    static String prop(String name) {
        String v = System.getProperty(name);
        assumeTrue(v != null, name + " is not set (run through make test-java)");
        return v;
    }

    /** Run LoadProbe with the findity-auth classes from {@code findityCp}; its output. */
    static String probe(String findityCp, String findityLib) throws Exception {
        String cp = String.join(File.pathSeparator, prop("findity.test.classes"), findityCp, prop("findity.test.jna"));
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp", cp,
                "com.findity.auth.LoadProbe"));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        Map<String, String> env = pb.environment();
        env.remove("LD_LIBRARY_PATH");
        if (findityLib == null) {
            env.remove("FINDITY_LIB");
        } else {
            env.put("FINDITY_LIB", findityLib);
        }
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        return out;
    }

    @Test
    void theBundledCopyWhenFindityLibIsUnset() throws Exception {
        String out = probe(prop("findity.test.jar"), null);
        assertTrue(out.startsWith("loaded "), out);
        assertTrue(out.contains("version 0."), out);
        assertFalse(out.contains("/target/"), "not from the build tree: " + out);
    }

    @Test
    void findityLibComesFirst(/* a file path, and a directory holding the library */) throws Exception {
        Path dir = Files.createTempDirectory("findity-lib");
        Path lib = dir.resolve("libfindity.so");
        Files.copy(Path.of(prop("findity.test.lib")), lib, StandardCopyOption.REPLACE_EXISTING);
        assertTrue(probe(prop("findity.test.jar"), lib.toString()).startsWith("loaded " + lib + " "));
        assertTrue(probe(prop("findity.test.jar"), dir.toString()).startsWith("loaded " + lib + " "));
    }

    @Test
    void aBrokenFindityLibFallsBackWithAWarning() throws Exception {
        String out = probe(prop("findity.test.jar"), "/nonexistent/libfindity.so");
        assertTrue(out.contains("FINDITY_LIB=/nonexistent/libfindity.so could not be loaded"), out);
        assertTrue(out.contains("loaded "), out);
    }

    @Test
    void notALibfindityIsRefused() throws Exception {
        String other = "/lib/x86_64-linux-gnu/libz.so.1";
        assumeTrue(new File(other).exists());
        String out = probe(prop("findity.test.nolib"), other);
        assertTrue(out.contains("not libfindity"), out);
    }

    @Test
    void nothingToLoadNamesEveryPlace() throws Exception {
        String out = probe(prop("findity.test.nolib"), "/nonexistent/libfindity.so");
        assertTrue(out.startsWith("failed findity-auth could not load the native library libfindity.so"), out);
        assertTrue(out.contains("1. $FINDITY_LIB=/nonexistent/libfindity.so"), out);
        assertTrue(out.contains("2. the copy bundled in the jar"), out);
        assertTrue(out.contains("3. the system library path"), out);
        assertTrue(out.contains("\nagain "), "the next call fails the same way: " + out);
    }
}
