"""Pure parts of the marketplace: signing, the address policy, secrets at rest, merge patches."""

from __future__ import annotations

import ipaddress
import time

import pytest

from openrisk.core.errors import ValidationFailed
from openrisk.marketplace.configuration import MASK, masked, merge_patch, unmask, validate
from openrisk.marketplace.crypto import SecretBox, SecretsUnreadable
from openrisk.marketplace.delivery import DeliveryPolicy, Outgoing, sign
from openrisk.marketplace.netguard import UnsafeURL, check_url, is_public, parse_url
from tests.api.test_webhooks import documented_verify


def test_signature_matches_the_documented_verification() -> None:
    body = b'{"type":"risk.created"}'
    now = int(time.time())
    outgoing = Outgoing(
        url="https://x.example/", body=body, event_type="risk.created", signing_secret="s" * 20
    )
    headers = outgoing.headers_for(now)
    verify = documented_verify()
    assert headers["X-OpenRisk-Signature"] == sign("s" * 20, now, body)
    assert verify("s" * 20, body, headers["X-OpenRisk-Timestamp"], headers["X-OpenRisk-Signature"])
    stale = str(now - 3600)
    assert not verify("s" * 20, body, stale, sign("s" * 20, int(stale), body))  # replay
    assert not verify("s" * 20, body, "not-a-number", headers["X-OpenRisk-Signature"])
    unsigned = Outgoing(url="https://x.example/", body=body, event_type="ping")
    assert "X-OpenRisk-Signature" not in unsigned.headers_for(now)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd12::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::1", False),
    ],
)
def test_address_policy(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://",
        "https://u:p@example.com/",
        "http://example.com:99999/",
        "javascript:alert(1)",
    ],
)
def test_only_plain_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(UnsafeURL):
        parse_url(url)


async def test_check_url_allows_private_targets_only_when_told() -> None:
    with pytest.raises(UnsafeURL):
        await check_url("http://127.0.0.1:8000/x", allow_private=False)
    target = await check_url("http://127.0.0.1:8000/x", allow_private=True)
    assert (target.host, target.port, target.addresses) == ("127.0.0.1", 8000, ())
    public = await check_url("https://93.184.215.14/x", allow_private=False)
    assert public.addresses == ("93.184.215.14",)


def test_secret_box_round_trip_and_key_change() -> None:
    box = SecretBox("key-one-" * 5)
    token = box.seal({"secret": "hunter2-hunter2"})
    assert token is not None and "hunter2" not in token
    assert box.open(token) == {"secret": "hunter2-hunter2"}
    assert box.seal({}) is None and box.open(None) == {}
    with pytest.raises(SecretsUnreadable):
        SecretBox("key-two-" * 5).open(token)
    assert "key-one" not in repr(box)


def test_merge_patch_masks_and_unmask() -> None:
    # RFC 7396 example
    target = {"a": "b", "c": {"d": "e", "f": "g"}}
    assert merge_patch(target, {"a": "z", "c": {"f": None}}) == {"a": "z", "c": {"d": "e"}}
    schema = {"properties": {"url": {"type": "string"}, "secret": {"writeOnly": True}}}
    assert masked(schema, {"url": "u"}, ["secret"]) == {"url": "u", "secret": MASK}
    assert masked(schema, {"url": "u"}, []) == {"url": "u"}
    assert unmask(schema, {"secret": MASK}, {"secret": "real"}) == {"secret": "real"}
    with pytest.raises(ValidationFailed):
        unmask(schema, {"secret": MASK}, {})


def test_validation_names_nested_fields_and_hides_secrets() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "minLength": 30, "writeOnly": True},
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"level": {"enum": ["LOW", "HIGH"]}},
                },
            },
        },
    }
    with pytest.raises(ValidationFailed) as caught:
        validate(schema, {"token": "too-short-secret", "rules": [{"level": "MID"}, {"x": 1}]})
    errors = caught.value.errors or []
    assert {e["field"] for e in errors} == {
        "configuration.token",
        "configuration.rules.0.level",
        "configuration.rules.1.x",
    }
    assert "too-short-secret" not in str(errors)
    with pytest.raises(ValidationFailed) as missing:
        validate(schema, {})
    assert [e["field"] for e in missing.value.errors or []] == ["configuration.token"]


def test_backoff_doubles_with_bounded_jitter() -> None:
    policy = DeliveryPolicy(allow_private=False, timeout_s=1, max_attempts=5, backoff_s=2)
    for attempt, base in ((1, 2), (2, 4), (3, 8), (4, 16)):  # jitter: up to backoff_s / 10
        assert base <= policy.wait_after(attempt) <= base + 0.2
    assert 300 <= policy.wait_after(30) <= 300 + 0.2
