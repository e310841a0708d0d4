// One process of the three-language shared-store test (scripts/test-node.sh):
//   java -cp findity-auth.jar:jna.jar SharedStore.java BASE_URL CLIENT_ID SECRET STORE_DIR START_MS
// Uses the file store, waits until START_MS (epoch ms), gets the organization token and prints
// "java <sha256 of the token, 16 hex> store_hits=N requests=N".
import com.findity.auth.FindityAuth;
import com.findity.auth.FindityStats;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

public class SharedStore {
    public static void main(String[] a) throws Exception {
        FindityAuth.setOption("shared_cache", "file:" + a[3]);
        long wait = Long.parseLong(a[4]) - System.currentTimeMillis();
        if (wait > 0) Thread.sleep(wait);
        String token = FindityAuth.getToken(a[0], a[1], a[2]);
        byte[] d = MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8));
        StringBuilder hex = new StringBuilder();
        for (int i = 0; i < 8; i++) hex.append(String.format("%02x", d[i]));
        FindityStats s = FindityAuth.stats();
        System.out.println("java " + hex + " store_hits=" + s.storeHits + " requests=" + s.clientCredentialsRequests);
    }
}
