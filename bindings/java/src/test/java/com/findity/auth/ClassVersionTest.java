package com.findity.auth;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.DataInputStream;
import java.util.Enumeration;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import org.junit.jupiter.api.Test;

/** Java 8 cannot run here: the jar's class files must be version 52 (Java 8), FindityHttp 55 (11). */
class ClassVersionTest {
    @Test
    void java8BytecodeExceptFindityHttp() throws Exception {
        String jar = System.getProperty("findity.test.jar");
        assumeTrue(jar != null, "findity.test.jar is not set (run through make test-java)");
        int classes = 0;
        try (JarFile f = new JarFile(jar)) {
            for (Enumeration<JarEntry> e = f.entries(); e.hasMoreElements();) {
                JarEntry entry = e.nextElement();
                if (!entry.getName().endsWith(".class")) {
                    continue;
                }
                classes++;
                try (DataInputStream in = new DataInputStream(f.getInputStream(entry))) {
                    assertEquals(0xCAFEBABE, in.readInt());
                    in.readUnsignedShort(); // minor
                    int major = in.readUnsignedShort();
                    int want = entry.getName().startsWith("com/findity/auth/FindityHttp") ? 55 : 52;
                    assertEquals(want, major, entry.getName());
                }
            }
        }
        assertTrue(classes >= 8, "classes in the jar: " + classes);
    }
}
