"""Cache key building: namespaced, tenant-scoped, parameter-normalised.

    openrisk:t:{<tenant>}:<namespace>:<part>:<part>...   tenant_key()
    openrisk:<namespace>:<part>...                        global_key()

The tenant is a Redis Cluster hash tag (the braces): every key of a tenant - its answers and
the generations they embed - is in one slot, so a read of an answer's generations is one
MGET on one node. Parts are percent-escaped so a value can never forge a separator, a glob
character or a hash tag.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from urllib.parse import quote

import orjson

PREFIX = "openrisk:"
DIGEST_HEX_CHARS = 16
_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*(:[A-Za-z0-9_.-]+)*")
_SAFE_PART_CHARS = "-._~@+=,"


def normalise_params(params: Mapping[str, object], defaults: Mapping[str, object]) -> str:
    """Canonical text for query parameters: defaults filled in, key order irrelevant.

    `None` values (and `None` list items) are dropped, lists/tuples/sets are sorted and
    scalars are compared by their text, so `?b=2&a=1` and `?a=1&b=2&c=<default>` agree;
    dataclasses and mappings are normalised field by field.
    """
    merged = {**defaults, **params}
    canonical = {
        name: _canonical_value(value) for name, value in merged.items() if value is not None
    }
    return orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS).decode()


def params_digest(params: Mapping[str, object], defaults: Mapping[str, object]) -> str:
    return digest(normalise_params(params, defaults))


def digest(text: str) -> str:
    """Short stable digest (blake2b, 16 hex characters) for key components."""
    return hashlib.blake2b(text.encode(), digest_size=DIGEST_HEX_CHARS // 2).hexdigest()


def tenant_scope(tenant_id: str) -> str:
    """``t:{<tenant>}:``: the hash-tagged tenant part of its keys."""
    return f"t:{{{escape_part(tenant_id)}}}:"


def tenant_key(tenant_id: str, namespace: str, *parts: str) -> str:
    return f"{PREFIX}{tenant_scope(tenant_id)}{validate_namespace(namespace)}{joined_parts(parts)}"


def global_key(namespace: str, *parts: str) -> str:
    return f"{PREFIX}{validate_namespace(namespace)}{joined_parts(parts)}"


def scoped_key(tenant_id: str | None, namespace: str, *parts: str) -> str:
    if tenant_id is None:
        return global_key(namespace, *parts)
    return tenant_key(tenant_id, namespace, *parts)


def permission_variant(permissions: Iterable[str], *, user_id: str | None = None) -> str:
    """Key component for answers that depend on who asks.

    Callers with the same permission set share entries; pass `user_id` when the answer is
    limited to the caller's own records (scope "own") so such answers are never shared.
    """
    basis = ",".join(sorted(set(permissions)))
    if user_id is not None:
        basis += f"|user={user_id}"
    return "v" + digest(basis)


def escape_part(part: str) -> str:
    return quote(part, safe=_SAFE_PART_CHARS)


def validate_namespace(namespace: str) -> str:
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"invalid cache namespace {namespace!r}")
    return namespace


def joined_parts(parts: Iterable[str]) -> str:
    """`:part:part…`, each part escaped: the tail of a key."""
    return "".join(":" + escape_part(part) for part in parts)


def _canonical_value(value: object) -> object:
    """Scalars by their text, collections sorted; a dataclass or mapping field by field; a
    value with a ``cache_key()`` by what that says shapes it."""
    cache_key = getattr(value, "cache_key", None)
    if callable(cache_key):
        value = cache_key()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _canonical_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple | set | frozenset):
        return sorted(_scalar_text(item) for item in value if item is not None)
    return _scalar_text(value)


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return _scalar_text(value.value)
    return str(value)
