"""Shared plumbing of the FHIR routes: query parsing, the gated transaction, paging, bundles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response

from api.access import Gate, run_gated
from api.errors import InvalidRequestError, NotFoundError
from api.fhir.bundle import searchset
from api.fhir.ids import from_fhir_id
from api.fhir.search import Search, encode_cursor, parse_search
from api.http import authenticate, client_address, fhir_response, services
from api.tokens import Principal

Auth = Annotated[Principal, Depends(authenticate)]
Q = Annotated[str | None, Query()]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    """One page of resources and the cursor of the next."""

    resources: list[dict[str, object]]
    next_cursor: Sequence[object] | None


def search_response(request: Request, resource_type: str, page: Page) -> Response:
    """The searchset Bundle of `page`, its `next` link keeping the request's other parameters."""
    base = str(request.base_url).rstrip("/") + "/fhir"
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
    self_url = str(request.url)
    next_url = None
    if page.next_cursor is not None:
        next_params = [*params, ("_cursor", encode_cursor(list(page.next_cursor)))]
        next_url = str(request.url.replace(query=urlencode(next_params)))
    bundle = searchset(base, resource_type, page.resources, self_url=self_url, next_url=next_url)
    return fhir_response(bundle)


def parse(request: Request, resource_type: str) -> Search:
    """The request's search parameters (raises `InvalidRequestError` naming a bad one)."""
    svc = services(request)
    grouped: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        grouped.setdefault(key, []).append(value)
    return parse_search(
        resource_type,
        grouped,
        default_count=svc.settings.page_default,
        max_count=svc.settings.page_max,
    )


def gated(
    request: Request,
    principal: Principal,
    resource_type: str,
    interaction: str,
    body: Callable[[Gate], T],
) -> T:
    """Run `body` in the request's gated transaction (see `api.access.run_gated`)."""
    svc = services(request)
    return run_gated(
        svc.engine,
        principal,
        source=client_address(request),
        at=svc.clock(),
        resource_type=resource_type,
        interaction=interaction,
        body=body,
    )


def record_id(fhir_id: str) -> str:
    """The record id a path's FHIR id names (404 when it names none)."""
    found = from_fhir_id(fhir_id)
    if found is None:
        raise NotFoundError("no resource has that id")
    return found


def cursor_of(
    search: Search, shape: tuple[type, ...], *, time_first: bool = False
) -> tuple[object, ...] | None:
    """The search's page position, checked against the shape this search's cursors have
    (`time_first`: the first value is an aware ISO 8601 instant)."""
    cursor = search.cursor
    if cursor is None:
        return None
    if len(cursor) != len(shape) or not all(
        isinstance(v, t) for v, t in zip(cursor, shape, strict=True)
    ):
        raise InvalidRequestError("_cursor", "is not a page position of this search")
    if time_first:
        try:
            at = datetime.fromisoformat(str(cursor[0]))
        except ValueError:
            raise InvalidRequestError("_cursor", "is not a page position of this search") from None
        if at.tzinfo is None:
            raise InvalidRequestError("_cursor", "is not a page position of this search")
    return cursor


def offset_page(items: list[dict[str, object]], search: Search) -> Page:
    """A page of a short list (devices, grants, the directory) by position."""
    cursor = cursor_of(search, (int,))
    start = int(cursor[0]) if cursor else 0  # type: ignore[call-overload]
    chunk = items[start : start + search.count]
    more = start + search.count < len(items)
    return Page(chunk, [start + search.count] if more else None)
