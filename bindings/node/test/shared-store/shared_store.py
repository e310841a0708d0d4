"""One process of the three-language shared-store test (scripts/test-node.sh):
    python3 shared_store.py BASE_URL CLIENT_ID SECRET STORE_DIR START_MS
"""
import hashlib
import sys
import time

import findity_auth

base_url, client_id, secret, store, start = sys.argv[1:6]
findity_auth.set_option("shared_cache", "file:" + store)
wait = int(start) / 1000 - time.time()
if wait > 0:
    time.sleep(wait)
token = findity_auth.get_token(base_url, client_id, secret)
s = findity_auth.stats()
print("python %s store_hits=%d requests=%d"
      % (hashlib.sha256(token.encode()).hexdigest()[:16], s.store_hits, s.client_credentials_requests))
