"""Direct routes: the endpoint takes the `Request` and answers the `Response` itself.

For the hottest route (POST /calls) FastAPI's own work per request (solving the dependencies,
decoding and validating the body, validating the answer again and encoding it twice) cost more
CPU than the route's. A `DirectRoute` hands its endpoint the `Request` alone; the endpoint calls
`json_body`, `deps.authorize` and `validated` in the order FastAPI would (a body that is not JSON
is refused before the token is looked at, a body that is JSON but invalid after), so it answers
the same statuses and error bodies, and renders its answer with `answer`.

Its OpenAPI operation is still FastAPI's, from the route as declared: its `dependencies` name
what it reads (the body model, the bearer token), its `response_model` and `responses` what it
answers. Those dependencies document; they are never solved.

FastAPI matches a request against each included router in turn, and each against its routes,
before it reaches the one that serves it. `shortcuts` gives the app a plain route for each direct
route, to be matched before all others: the same path, methods and endpoint, inside the same
middlewares and error handlers, left out of the OpenAPI document (the direct route documents it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel, ValidationError
from starlette.routing import Route

Model = TypeVar("Model", bound=BaseModel)


class DirectRoute(APIRoute):
    """An `APIRoute` whose endpoint is called with the `Request` and returns the `Response`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself: no dependencies solved, no body read, no answer re-validated."""
        return cast(Callable[[Request], Coroutine[Any, Any, Response]], self.endpoint)


def shortcuts(router: APIRouter, *, prefix: str) -> list[Route]:
    """A plain route for each `DirectRoute` of `router` (included at `prefix`), to match first."""
    return [
        Route(
            prefix + route.path,
            route.endpoint,
            methods=route.methods,
            name=route.name,
            include_in_schema=False,
        )
        for route in router.routes
        if isinstance(route, DirectRoute)
    ]


class _Missing:
    """No body was sent."""


MISSING = _Missing()


def _is_json(content_type: str | None) -> bool:
    """Whether a Content-Type is JSON, as FastAPI judges it (`application/json`, `...+json`)."""
    if content_type is None:
        return False
    mime = content_type.partition(";")[0].strip().lower()
    if mime.count("/") != 1:
        return False
    main, _, sub = mime.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


async def json_body(request: Request, model: type[Model]) -> object:
    """The body decoded as FastAPI decodes a declared body; not JSON at all is a 422.

    A JSON body valid for `model` comes back as the model, in one pass of pydantic's JSON parser
    (the same model `json.loads` and `validated` make of it, for about half the CPU). Any other
    is decoded as FastAPI decodes it, for `validated` to refuse with FastAPI's errors: sent
    without a JSON Content-Type it stays bytes (the model then refuses it), empty it is
    `MISSING`.
    """
    body = await request.body()
    if not body:
        return MISSING
    if not _is_json(request.headers.get("content-type")):
        return body
    try:
        return model.model_validate_json(body)
    except ValidationError:
        pass  # not valid: decoded again, as FastAPI decodes it, for FastAPI's own errors
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        problem = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([problem], body=exc.doc) from exc
    except Exception as exc:  # not text (json.loads meets bytes it cannot decode), say
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


def validated(model: type[Model], data: object) -> Model:
    """`data` (from `json_body`) as `model`, refused with the errors FastAPI would give."""
    if isinstance(data, model):
        return data
    if data is MISSING:
        problem = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([problem])
    try:
        return model.model_validate(data, from_attributes=True)
    except ValidationError as exc:
        problems = [{**problem, "loc": ("body", *problem["loc"])} for problem in exc.errors()]
        raise RequestValidationError(problems, body=data) from exc


def answer(content: BaseModel, status_code: int) -> Response:
    """`content` as the JSON answer FastAPI would render for it as a `response_model`."""
    return Response(
        content.model_dump_json(), status_code=status_code, media_type="application/json"
    )
