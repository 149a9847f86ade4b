"""A generic Python OIDC client (authlib, requests) against edge-oauth, as an outside caller.

Driven by tests/e2e/authlib.test.mjs, which starts the worker and passes BASE, CLIENT_ID,
CLIENT_SECRET, USERNAME, PASSWORD and CALLBACK in the environment. Prints one JSON object with
what it observed; the Node test asserts on it. Any library-side validation failure raises.
"""
import json
import os
import re
import secrets

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt

base = os.environ["BASE"]
callback = os.environ["CALLBACK"]
meta = requests.get(f"{base}/.well-known/openid-configuration", timeout=10).json()

client = OAuth2Session(
    os.environ["CLIENT_ID"],
    os.environ["CLIENT_SECRET"],
    scope="openid api refresh_token profile email",
    redirect_uri=callback,
    code_challenge_method="S256",
    token_endpoint_auth_method="client_secret_basic",
    revocation_endpoint_auth_method="client_secret_basic",
)
verifier = secrets.token_urlsafe(64)
nonce = secrets.token_urlsafe(16)
url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)

# The user's part, with a plain HTTP session standing in for the browser.
browser = requests.Session()


def hidden(html):
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


page = browser.get(url, allow_redirects=False, timeout=10)
assert "name=\"password\"" in page.text, page.text
page = browser.post(
    meta["authorization_endpoint"],
    data={**hidden(page.text), "username": os.environ["USERNAME"], "password": os.environ["PASSWORD"], "login": "1"},
    allow_redirects=False,
    timeout=10,
)
assert 'name="approve"' in page.text, page.text
done = browser.post(meta["authorization_endpoint"], data={**hidden(page.text), "approve": "1"}, allow_redirects=False, timeout=10)
location = done.headers["Location"]

# authlib checks `state` against the authorization response and sends the PKCE verifier.
token = client.fetch_token(meta["token_endpoint"], authorization_response=location, code_verifier=verifier, state=state)

jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
claims = jwt.decode(
    token["id_token"],
    jwks,
    claims_options={
        "iss": {"essential": True, "value": meta["issuer"]},
        "aud": {"essential": True, "value": os.environ["CLIENT_ID"]},
        "nonce": {"essential": True, "value": nonce},
        "sub": {"essential": True},
    },
)
claims.validate()

userinfo = client.get(meta["userinfo_endpoint"], timeout=10).json()
refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
after_refresh = client.get(meta["userinfo_endpoint"], timeout=10).status_code
introspected = client.introspect_token(meta["introspection_endpoint"], token=refreshed["access_token"]).json()
revoked = client.revoke_token(meta["revocation_endpoint"], token=token["refresh_token"], token_type_hint="refresh_token")
after_revoke = requests.get(
    meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {refreshed['access_token']}"}, timeout=10
).status_code
retry = requests.post(
    meta["token_endpoint"],
    data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
    auth=(os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"]),
    timeout=10,
)

print(json.dumps({
    "location": location,
    "token_keys": sorted(token.keys()),
    "id_token_claims": dict(claims),
    "userinfo": userinfo,
    "refreshed_keys": sorted(refreshed.keys()),
    "userinfo_after_refresh": after_refresh,
    "introspected": introspected,
    "revoke_status": revoked.status_code,
    "userinfo_after_revoke": after_revoke,
    "refresh_after_revoke": {"status": retry.status_code, "body": retry.json()},
}))
