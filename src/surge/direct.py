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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class DirectRoute(APIRoute):
    """An `APIRoute` whose endpoint is called with the `Request` and returns the `Response`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself: no dependencies solved, no body read, no answer re-validated."""
        return cast(Callable[[Request], Coroutine[Any, Any, Response]], self.endpoint)


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


async def json_body(request: Request) -> object:
    """The body decoded as FastAPI decodes a declared body; not JSON at all is a 422.

    A body sent without a JSON Content-Type stays bytes (the model then refuses it), an empty
    one is `MISSING`.
    """
    body = await request.body()
    if not body:
        return MISSING
    if not _is_json(request.headers.get("content-type")):
        return body
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
