"""Signatures (docs/threat-model.md, webhooks): ours verify with the reference library and with
an independent verifier written here from the Standard Webhooks specification; every negative
case fails."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts.delivery import signing
from alerts.delivery.errors import InvalidFieldError

BODY = (
    b'{"data":{"event_id":"e1","revision":1},'
    b'"timestamp":"2026-03-01T12:00:00Z","type":"alert.opened"}'
)
TOLERANCE_S = 300


def spec_verify(secret: str, headers: dict[str, str], body: bytes, now_s: int) -> bool:
    """Standard Webhooks, "Verifying webhooks": base64 key after `whsec_`, HMAC-SHA256 over
    `{id}.{timestamp}.{body}`, space-separated `v1,<b64>` signatures, 5-minute tolerance."""
    try:
        msg_id = headers["webhook-id"]
        ts = headers["webhook-timestamp"]
        sigs = headers["webhook-signature"]
    except KeyError:
        return False
    if not ts.isdigit() or abs(now_s - int(ts)) > TOLERANCE_S:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    for item in sigs.split(" "):
        version, _, value = item.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(value), expected):
            return True
    return False


def now() -> datetime:
    return datetime.now(UTC)


def test_new_secrets_have_the_whsec_format_and_32_random_bytes() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a.startswith("whsec_") and a != b
    assert len(base64.b64decode(a.removeprefix("whsec_"))) == 32


def test_our_signature_verifies_with_the_library_and_the_spec() -> None:
    secret = signing.new_secret()
    at = now()
    headers = signing.sign_headers("msg_1", at, BODY, [secret])
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert Webhook(secret).verify(BODY, headers)["type"] == "alert.opened"
    assert spec_verify(secret, headers, BODY, int(time.time()))
    assert signing.verify(BODY, headers, [secret]) == Webhook(secret).verify(BODY, headers)


def test_the_library_signature_verifies_with_our_verifier() -> None:
    secret = signing.new_secret()
    at = now()
    headers = {
        "webhook-id": "msg_2",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_2", at, BODY.decode()),
    }
    assert signing.verify(BODY, headers, [secret])["data"]["event_id"] == "e1"  # type: ignore[index]


@pytest.mark.parametrize(
    "tamper",
    [
        "body",
        "id",
        "timestamp",
        "stale",
        "future",
        "secret",
        "missing",
        "garbage",
        "unknown_version",
    ],
)
def test_every_tampering_fails_both_verifiers(tamper: str) -> None:
    secret = signing.new_secret()
    at = now() - timedelta(seconds=400) if tamper == "stale" else now()
    at = at + timedelta(seconds=400) if tamper == "future" else at
    headers = signing.sign_headers("msg_3", at, BODY, [secret])
    body = BODY
    verify_secret = secret
    if tamper == "body":
        body = BODY.replace(b"e1", b"e2")
    elif tamper == "id":
        headers["webhook-id"] = "msg_4"
    elif tamper == "timestamp":
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 1)
    elif tamper == "secret":
        verify_secret = signing.new_secret()
    elif tamper == "missing":
        del headers["webhook-signature"]
    elif tamper == "garbage":
        headers["webhook-signature"] = "v1,@@@"
    elif tamper == "unknown_version":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    assert not spec_verify(verify_secret, headers, body, int(time.time()))
    with pytest.raises((WebhookVerificationError, ValueError)):
        Webhook(verify_secret).verify(body, headers)
    with pytest.raises(InvalidFieldError) as caught:
        signing.verify(body, headers, [verify_secret])
    assert caught.value.field == "webhook-signature"


def test_unknown_signature_versions_are_ignored_next_to_a_good_one() -> None:
    secret = signing.new_secret()
    headers = signing.sign_headers("msg_5", now(), BODY, [secret])
    headers["webhook-signature"] = "v9,AAAA " + headers["webhook-signature"]
    assert spec_verify(secret, headers, BODY, int(time.time()))
    assert Webhook(secret).verify(BODY, headers)


def test_rotation_carries_one_signature_per_secret() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    headers = signing.sign_headers("msg_6", now(), BODY, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert spec_verify(secret, headers, BODY, int(time.time()))
        assert Webhook(secret).verify(BODY, headers)
    after_overlap = signing.sign_headers("msg_6", now(), BODY, [new])
    assert not spec_verify(old, after_overlap, BODY, int(time.time()))
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(BODY, after_overlap)


def test_signing_refuses_no_secret_and_naive_time() -> None:
    with pytest.raises(InvalidFieldError, match="secrets"):
        signing.sign_headers("m", now(), BODY, [])
    with pytest.raises(InvalidFieldError, match="at"):
        signing.sign_headers("m", datetime(2026, 1, 1), BODY, [signing.new_secret()])


def test_mac_comparisons_in_delivery_are_constant_time() -> None:
    # Constant-time comparison, checked statically: no `==`/`!=` on anything named like a MAC or
    # signature.
    root = Path(__file__).parents[3] / "alerts" / "delivery"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                isinstance(o, ast.Eq | ast.NotEq) for o in node.ops
            ):
                names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                if names & {"mac", "given", "expected", "signature", "sig_bytes"}:
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders
    assert "compare_digest" in (root / "ack_token.py").read_text()
