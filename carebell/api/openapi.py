"""Completing ninja's OpenAPI document with what the door does for every operation,
so the document stays true: the problem responses, the Idempotency-Key header on
POST, If-Match and 412 on updates, ETag on single objects, and 429 with Retry-After."""

from __future__ import annotations

from carebell.api import idempotency
from carebell.api.problems import MEDIA_TYPE, Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_ALWAYS = {
    400: "The request is malformed (a bad cursor, a bad Idempotency-Key).",
    401: "No valid token: missing, unknown, expired or revoked.",
    404: "No such object, or one of a site the token's user may not see.",
    409: "A concurrent change won the race, or the first request with this Idempotency-Key "
    "is still being answered.",
    422: "The request does not match the schema, or carebell refused the change.",
    429: "Too many requests for this token this minute; see Retry-After.",
}
_BY_METHOD = {
    "patch": {412: "If-Match does not name the object's current ETag."},
    "delete": {412: "If-Match does not name the object's current ETag."},
}
_SECURED_OUT = {403: "The token's user lacks the permission this needs at the site."}
_RETRY_AFTER = {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}}
_ETAG = {"description": "The version of the object, for If-Match", "schema": {"type": "string"}}


def _problem(description: str, headers: dict | None = None) -> dict:
    answer = {"description": description, "content": {MEDIA_TYPE: {"schema": PROBLEM_REF}}}
    if headers:
        answer["headers"] = headers
    return answer


def complete(schema: dict) -> dict:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for field_error, definition in components["schemas"]["Problem"].pop("$defs", {}).items():
        components["schemas"][field_error] = definition
    for operations in schema.get("paths", {}).values():
        # An object that can be changed (PATCH) is read and changed with its ETag.
        updatable = "patch" in operations
        for method, operation in operations.items():
            _complete_operation(method, operation, tagged=updatable and method in ("get", "patch"))
    return schema


def _complete_operation(method: str, operation: dict, *, tagged: bool) -> None:
    responses = {str(code): answer for code, answer in operation.get("responses", {}).items()}
    operation["responses"] = responses
    codes = {**_ALWAYS, **_SECURED_OUT, **_BY_METHOD.get(method, {})}
    for code, description in codes.items():
        headers = {"Retry-After": _RETRY_AFTER} if code in (409, 429) else None
        responses[str(code)] = _problem(description, headers)
    responses["default"] = _problem("Any other error (405, 500 …), as problem details.")
    parameters = operation.setdefault("parameters", [])
    if method == "post":
        parameters.append(
            _header(idempotency.HEADER, "Replays the first answer to this key for 24 hours.")
        )
    if method in ("patch", "delete"):
        parameters.append(
            _header("If-Match", "The ETag you read: the change is made only to that version.")
        )
    if tagged:
        for code, answer in responses.items():
            if code.startswith("2"):
                answer.setdefault("headers", {})["ETag"] = _ETAG


def _header(name: str, description: str) -> dict:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string", "maxLength": 255},
    }
