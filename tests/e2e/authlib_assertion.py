"""authlib's AssertionSession (RFC 7521/7523 JWT bearer grant) against edge-oauth, as an outside caller.

Driven by tests/e2e/server-grants-clients.test.mjs, which starts the worker, registers an app
whose certificate matches KEY_FILE, pre-authorizes USERNAME, and passes BASE, CLIENT_ID,
USERNAME and KEY_FILE (a PEM private key) in the environment. Prints one JSON object with what
it observed; the Node test asserts on it.

The session signs its own assertions and fetches (and re-fetches) its token by itself: the
script only ever asks for the userinfo URL.
"""
import json
import os

import requests
from authlib.integrations.requests_client import AssertionSession
from authlib.oauth2 import OAuth2Error
from joserfc.jwk import RSAKey

base = os.environ["BASE"]
meta = requests.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
# The PEM private key, as a joserfc key: what authlib 1.9 asks for (a PEM string works too, with
# a deprecation warning).
with open(os.environ["KEY_FILE"], encoding="utf-8") as f:
    key = RSAKey.import_key(f.read())


def session(**kwargs):
    args = dict(
        token_endpoint=meta["token_endpoint"],
        issuer=os.environ["CLIENT_ID"],
        subject=os.environ["USERNAME"],
        audience=meta["issuer"],
        grant_type=AssertionSession.JWT_BEARER_GRANT_TYPE,
        key=key,
        header={"alg": "RS256"},
        default_timeout=10,
    )
    args.update(kwargs)
    return AssertionSession(**args)


def refused(s):
    """Asks the session for a (new) token; the server's error, or None when one was issued."""
    try:
        s.refresh_token()
        return None
    except OAuth2Error as e:
        return {"error": e.error, "description": e.description}


# 1. A 5-minute assertion (authlib's default is 1 hour, see 3.) with a claim of our own.
s = session(expires_in=300, claims={"purpose": "e2e"})
first = s.get(meta["userinfo_endpoint"])  # no token yet: the session fetches one first
first_token = dict(s.token)
# Ask again: authlib put its generated jti into the `claims` dict it was given, so the second
# assertion carries the same jti as the first.
replay = refused(s)

# 2. Without `claims`, each assertion gets a fresh jti: a second token is issued.
fresh = session(expires_in=300)
fresh.get(meta["userinfo_endpoint"])
token_a = fresh.token["access_token"]
again = refused(fresh)
token_b = fresh.token["access_token"]
second = fresh.get(meta["userinfo_endpoint"])

# 3. authlib's default lifetime: exp one hour ahead.
default_lifetime = refused(session())

# 4. The default audience (the token endpoint) is accepted too.
by_token_url = session(expires_in=300, audience=None)
by_token_url_status = by_token_url.get(meta["userinfo_endpoint"]).status_code

print(json.dumps({
    "userinfo_status": first.status_code,
    "userinfo": first.json(),
    "token_keys": sorted(first_token.keys()),
    "access_token": first_token["access_token"],
    "instance_url": first_token.get("instance_url"),
    "id": first_token.get("id"),
    "replayed_jti": replay,
    "second_fetch": again,
    "tokens_differ": token_a != token_b,
    "second_userinfo_status": second.status_code,
    "default_lifetime": default_lifetime,
    "token_url_audience_status": by_token_url_status,
}))
