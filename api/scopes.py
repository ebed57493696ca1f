"""SMART on FHIR scopes (pure): parse a scope string, decide whether it allows an access.

SMART App Launch v1 scopes are ``context/Resource.permission`` with context ``patient``,
``user`` or ``system``, Resource a FHIR resource type or ``*``, permission ``read``, ``write`` or
``*`` (``user/Observation.read``, ``patient/*.read``). SMART v2 spellings (``.rs``, ``.cruds``)
are accepted too and map onto the same letters: v1 ``read`` is ``rs``, ``write`` is ``cud``.
Scopes that are not resource scopes (``openid``, ``fhirUser``, ``launch/patient``,
``offline_access``) are kept as other scopes and grant nothing here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

_RESOURCE_SCOPE: Final = re.compile(
    r"^(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.(read|write|\*|c?r?u?d?s?)$"
)
_OTHER_SCOPE: Final = re.compile(
    r"^(openid|fhirUser|profile|offline_access|online_access|launch(/[a-z]+)?)$"
)
_V1: Final = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}
MAX_SCOPES: Final = 64


class Context(StrEnum):
    """Whose data a scope is about: the patient in context, the user's access, a backend."""

    PATIENT = "patient"
    USER = "user"
    SYSTEM = "system"


class Action(StrEnum):
    """What a route does, as SMART v2 letters: create, read, update, delete, search."""

    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"


@dataclass(frozen=True, slots=True)
class Scope:
    """One resource scope: `resource` is a FHIR type name or ``*``; `letters` from ``cruds``."""

    context: Context
    resource: str
    letters: frozenset[str]

    def allows(self, context: Context, resource: str, action: Action) -> bool:
        """True when this scope covers `action` on `resource` in `context`."""
        return (
            self.context is context
            and self.resource in ("*", resource)
            and action.value in self.letters
        )


class ScopeError(ValueError):
    """A scope string is malformed.

    Attributes:
        scope: the offending scope.
    """

    def __init__(self, scope: str, reason: str) -> None:
        super().__init__(f"scope {scope!r}: {reason}")
        self.scope = scope
        self.reason = reason


def parse_scope(text: str) -> Scope | None:
    """Parse one scope; None for a recognised non-resource scope (``openid``...).

    Raises:
        ScopeError: neither a resource scope nor a known other scope, or empty v2 letters.
    """
    match = _RESOURCE_SCOPE.fullmatch(text)
    if match is None:
        if _OTHER_SCOPE.fullmatch(text):
            return None
        raise ScopeError(text, "is not a SMART scope such as user/Observation.read")
    context, resource, permission = match.groups()
    letters = _V1.get(permission, frozenset(permission))
    if not letters:
        raise ScopeError(text, "names no permission")
    return Scope(Context(context), resource, letters)


def parse_scopes(text: str) -> tuple[Scope, ...]:
    """Parse a space-separated scope string (the OAuth ``scope`` claim).

    Raises:
        ScopeError: a malformed scope, or more than `MAX_SCOPES` of them.
    """
    parts = text.split()
    if len(parts) > MAX_SCOPES:
        raise ScopeError(text[:40], f"more than {MAX_SCOPES} scopes")
    return tuple(s for s in (parse_scope(p) for p in parts) if s is not None)


def allows(scopes: tuple[Scope, ...], context: Context, resource: str, action: Action) -> bool:
    """True when any of `scopes` covers `action` on `resource` in `context`."""
    return any(s.allows(context, resource, action) for s in scopes)
