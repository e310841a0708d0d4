package com.findity.auth;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

class LoggingTest {
    @Test
    void linesGoToJavaUtilLoggingWithoutSecrets() throws Exception {
        List<LogRecord> records = new CopyOnWriteArrayList<>();
        Handler h = new Handler() {
            @Override public void publish(LogRecord r) { records.add(r); }
            @Override public void flush() {}
            @Override public void close() {}
        };
        Logger logger = Logger.getLogger("com.findity.auth");
        logger.addHandler(h);
        logger.setLevel(Level.ALL);
        logger.setUseParentHandlers(false);
        try (Emulator emu = new Emulator()) {
            FindityAuth.enableLogging(Level.FINE);
            String token = FindityAuth.getToken(emu.url, Emulator.ID, Emulator.SECRET);
            FindityAuth.invalidateToken(emu.url, Emulator.ID, token, null);
            FindityAuth.disableLogging();
            int n = records.size();
            assertTrue(n > 0, "no log lines");
            StringBuilder all = new StringBuilder();
            for (LogRecord r : records) {
                String line = java.text.MessageFormat.format(r.getMessage(), r.getParameters());
                all.append(line).append('\n');
                assertFalse(line.contains(Emulator.SECRET), line);
                assertFalse(line.contains(token), line);
            }
            assertTrue(all.toString().contains("client_credentials"), all.toString());
            FindityAuth.getToken(emu.url, Emulator.ID, Emulator.SECRET);
            Thread.sleep(100);
            assertEquals(n, records.size(), "nothing logged after disableLogging");
        } finally {
            logger.removeHandler(h);
            logger.setUseParentHandlers(true);
            logger.setLevel(null);
            FindityAuth.disableLogging();
        }
    }

    @Test
    void aThrowingHandlerDoesNotBreakTheCall() throws Exception {
        Logger logger = Logger.getLogger("com.findity.auth");
        Handler bad = new Handler() {
            @Override public void publish(LogRecord r) { throw new RuntimeException("handler failed"); }
            @Override public void flush() {}
            @Override public void close() {}
        };
        logger.addHandler(bad);
        logger.setUseParentHandlers(false);
        try (Emulator emu = new Emulator()) {
            FindityAuth.enableLogging();
            assertNotNull(FindityAuth.getToken(emu.url, Emulator.ID, Emulator.SECRET));
        } finally {
            logger.removeHandler(bad);
            logger.setUseParentHandlers(true);
            FindityAuth.disableLogging();
        }
    }
}
