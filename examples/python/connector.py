#!/usr/bin/env python3
"""An ERP connector's view of the Findity Expense API: requests + findity_auth.FindityAuth.

    export FINDITY_BASE_URL=https://expense.findity.com FINDITY_CLIENT_ID=... \\
           FINDITY_CLIENT_SECRET=... FINDITY_USER_ID=E1234
    python3 connector.py

Reads one employee's profile with that employee's token and the expense list with the
organization's token. Tokens are fetched, cached, renewed and (on a 401) replaced by libfindity
and FindityAuth; the connector only passes ``auth=``. Exit status 0 on success, 1 on failure.
"""

import logging
import os
import sys

import requests

import findity_auth
from findity_auth import FindityAuth

log = logging.getLogger("connector")


def main() -> int:
    try:
        base = os.environ["FINDITY_BASE_URL"].rstrip("/")
        client_id = os.environ["FINDITY_CLIENT_ID"]
        secret = os.environ["FINDITY_CLIENT_SECRET"]
        user_id = os.environ["FINDITY_USER_ID"]
    except KeyError as e:
        print("connector: set %s (see the docstring)" % e, file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s: %(message)s")
    findity_auth.enable_logging()  # libfindity's lines (new tokens, renewals) -> logger "findity"

    employee = FindityAuth(base, client_id, secret, user_id=user_id)
    organization = FindityAuth(base, client_id, secret)
    try:
        with requests.Session() as http:
            for auth, path in ((employee, "/api/v1/me"), (organization, "/api/v1/expenses")):
                response = http.get(base + path, auth=auth, timeout=30)
                response.raise_for_status()
                print("%s -> %s" % (path, response.json()["subject"]))
    except (findity_auth.FindityError, requests.RequestException) as e:
        log.error("failed: %s", e)  # never contains the secret or a token
        return 1

    seconds = findity_auth.token_expires_in(base, client_id)
    stats = findity_auth.stats()
    print(
        "organization token valid for another %d s; %d token fetches, %d cache hits"
        % (seconds, stats.cache_misses, stats.cache_hits)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
