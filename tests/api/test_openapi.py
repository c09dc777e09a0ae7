"""The OpenAPI document is the API's contract: every /v1 route is in it, with what it answers."""

from __future__ import annotations

from fastapi.routing import APIRoute

from coordinator.main import API_ROUTERS
from shared.protocol import API_PREFIX
from tests.api.conftest import Coordinator

METHODS = ("get", "post", "put", "patch", "delete")


def test_every_v1_route_is_documented_with_its_response(coordinator: Coordinator) -> None:
    schema = coordinator.client.get("/openapi.json").json()
    routes = [route for router in API_ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert len(routes) > 10
    undocumented = []
    for route in routes:
        operations = schema["paths"].get(API_PREFIX + route.path, {})
        for method in route.methods - {"HEAD", "OPTIONS"}:
            operation = operations.get(method.lower())
            if operation is None:
                undocumented.append(f"{method} {route.path}: not in the schema")
                continue
            answers = {code: body for code, body in operation["responses"].items() if code.startswith("2")}
            if not answers:
                undocumented.append(f"{method} {route.path}: no success response")
            for code, body in answers.items():
                if code == "204":
                    continue
                contents = body.get("content", {})
                if not contents or not all(c.get("schema") for c in contents.values()):
                    undocumented.append(f"{method} {route.path}: {code} has no response schema")
                json_schema = contents.get("application/json", {}).get("schema")
                if json_schema is not None and json_schema == {}:
                    undocumented.append(f"{method} {route.path}: {code} answers JSON of any shape")
    assert not undocumented, "\n".join(undocumented)
