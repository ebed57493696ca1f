"""Validation of every served resource with `fhir.resources` (its R4B models): the adapter edge.

The pure mappings build JSON; `validated` parses it into the R4B model of its resource type and
returns the model's own JSON, so a mapping that drifts from the specification (a missing
required element, a wrong type, an id outside ``[A-Za-z0-9-.]``) fails here rather than reaching
a client. A Bundle is validated entry by entry and then as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from api.errors import ApiError


class InvalidResourceError(ApiError):
    """A resource built from the record does not validate (a bug: logged, 500 without detail)."""

    status = 500
    code = "exception"


def validated(resource: Mapping[str, object]) -> dict[str, Any]:
    """Validate `resource` with the R4B model of its type and return its JSON.

    Raises:
        InvalidResourceError: the resource does not validate (names the type, not the data).
    """
    resource_type = str(resource.get("resourceType"))
    try:
        model = get_fhir_model_class(resource_type).model_validate(dict(resource))
    except (ValidationError, KeyError, ValueError) as exc:
        # The error text may quote values from the record: keep it out of the message.
        count = len(exc.errors()) if isinstance(exc, ValidationError) else 1
        raise InvalidResourceError(
            f"a {resource_type} failed validation ({count} errors)"
        ) from None
    out: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return out
