"""The OpenAPI 3.1 description of the check API, served at /openapi.json.

Written by hand from the handlers in `cidwatch/api/server.py` (a test holds each documented path to
an answering route, and each answer's fields to what the schema lists).
"""

from __future__ import annotations

from typing import Any

from cidwatch.api.book import BLOCK_FIELDS, CHECK_FIELDS

_BLOCK = {
    "type": "object",
    "required": list(BLOCK_FIELDS),
    "properties": {
        "cli": {"type": "string", "description": "the blocked caller ID, E.164"},
        "tenant": {"type": ["string", "null"], "description": "tenant of the call that made the block"},
        "rule": {"type": "string", "example": "fr.daily_limit"},
        "scope": {"type": "object", "additionalProperties": {"type": "string"},
                  "description": "calls the block covers: {} all; e.g. {\"destination_country\": \"AU\"}"},
        "since": {"type": "string", "format": "date-time", "description": "the block decision's `at`"},
        "until": {"type": ["string", "null"], "format": "date-time",
                  "description": "end of a time-boxed block (its unblock follows); null: until lifted"},
        "message": {"type": "string"},
        "runbook": {"type": "string", "description": "what the operator does about it"},
        "decision_id": {"type": "string", "description": "id of the block decision (decisions topic)"},
    },
}
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, required: bool = False, example: str | None = None) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required, "description": description,
                                 "schema": {"type": "string"}}
    if example is not None:
        parameter["example"] = example
    return parameter


def document() -> dict[str, Any]:
    """The OpenAPI document (a new dict each call)."""
    guarded = {"401": _error("missing or wrong bearer token (when CIDWATCH_API_TOKEN is set)"),
               "503": _error("the topics are not read to their end yet: no answer rather than a wrong one")}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cidwatch check API",
            "version": "1",
            "description": "May a dialer present this caller ID now? Answers from the compacted blocks topic "
                           "and the inventory topic, followed in memory.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "the value of CIDWATCH_API_TOKEN"}},
            "schemas": {
                "Block": _BLOCK,
                "Error": _ERROR,
                "Check": {
                    "type": "object",
                    "required": list(CHECK_FIELDS),
                    "properties": {
                        "allowed": {"type": "boolean",
                                    "description": "false when a block in force covers this call"},
                        "cli": {"type": "string", "description": "the caller ID, normalised to E.164"},
                        "tenant": {"type": ["string", "null"]},
                        "destination_country": {"type": ["string", "null"],
                                                "description": "ISO region of the destination, when given"},
                        "purpose": {"type": ["string", "null"], "description": "the purpose, when given"},
                        "blocks": {"type": "array", "items": {"$ref": "#/components/schemas/Block"},
                                   "description": "the blocks that make `allowed` false"},
                        "authorised": {"type": ["boolean", "null"],
                                       "description": "the inventory lists the number for this tenant "
                                                      "(null: no inventory); advisory, `allowed` ignores it"},
                        "checked_at": {"type": "string", "format": "date-time"},
                    },
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/check": {"get": {
                "summary": "may this caller ID be presented now?",
                "parameters": [
                    _query("cli", "caller ID, E.164 (separators allowed; encode + as %2B)", True, "+33140000001"),
                    _query("tenant", "the dialer's tenant"),
                    _query("destination", "the called number, E.164: scoped blocks apply only to calls in their "
                                          "scope; without it every scoped block applies", example="+61291234567"),
                    _query("purpose", "why the call is made (telemarketing, automated, service, personal): blocks "
                                      "scoped to purposes apply only to those; without it every one applies",
                           example="automated"),
                ],
                "responses": {
                    "200": {"description": "the answer", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Check"}}}},
                    "400": _error("cli or destination missing or not a valid E.164 number, or an unknown purpose"),
                    **guarded,
                },
            }},
            "/v1/blocks": {"get": {
                "summary": "the blocks in force now",
                "parameters": [_query("tenant", "only this tenant's"), _query("rule", "only this rule's")],
                "responses": {
                    "200": {"description": "the blocks, in key order", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["blocks", "count"],
                        "properties": {"blocks": {"type": "array", "items": {"$ref": "#/components/schemas/Block"}},
                                       "count": {"type": "integer"}}}}}},
                    **guarded,
                },
            }},
            "/healthz": {"get": {"summary": "the process is up", "security": [],
                                 "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "the topics are read to their end", "security": [],
                                "responses": {"200": {"description": "ready"},
                                              "503": {"description": "not yet; the reason is in the body"}}}},
            "/openapi.json": {"get": {"summary": "this document", "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/docs/runbooks/{name}.md": {"get": {
                "summary": "the runbook of a rule or alert: what the operator does about it", "security": [],
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                                "example": "fr.daily_limit"}],
                "responses": {"200": {"description": "the runbook's Markdown", "content": {"text/plain": {}}},
                              "404": _error("no runbook of that name")}}},
        },
    }
