"""CTI ingest and call reads: POST /calls, abandon, the satisfaction follow-up, GET /calls/{id}."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from surge import errors, telemetry
from surge.auth.models import Role
from surge.auth.service import Principal
from surge.calls import service as calls_service
from surge.calls import tickets
from surge.calls.lifecycle import CallStatus
from surge.calls.models import Call
from surge.calls.schemas import (
    CallbackResult,
    CallCreate,
    CallEventRead,
    CallRead,
    CallRelease,
    FeedbackCreate,
    FeedbackRead,
    TicketFormat,
    TicketPage,
    TicketRead,
    TimeBound,
)
from surge.cities.schemas import CITY_CODE
from surge.db import BIG_INTEGER_MAX
from surge.deps import (
    BearerDep,
    PrincipalDep,
    RuntimeDep,
    SessionDep,
    authorize,
    require_city_access,
    require_role,
)
from surge.direct import DirectRoute, answer, json_body, validated
from surge.errors import NotFound
from surge.reports.schemas import Lang
from surge.runtime import Runtime
from surge.schemas import NO_NUL
from surge.seats import frames

router = APIRouter(
    tags=["calls"],
    responses=errors.responses(
        errors.Forbidden,
        errors.NotFound,
        errors.UnknownCity,
        errors.CallNotOpen,
        errors.CallNotConnected,
        errors.FeedbackRecorded,
        errors.IdempotencyConflict,
        errors.AgentStillPresent,
        errors.CallbackNotDialing,
    ),
)

CtiDep = Annotated[Principal, Depends(require_role(Role.CTI))]
SupervisorDep = Annotated[Principal, Depends(require_role(Role.COORDINATOR, Role.CITY_ADMIN))]
ReaderDep = Annotated[Principal, Depends(require_role(Role.COORDINATOR, Role.CITY_ADMIN, Role.CTI))]
CallId = Annotated[int, Path(ge=1, le=BIG_INTEGER_MAX, description="The call's id")]


async def _read(
    call: Call | calls_service.CallRow, *, session: AsyncSession, viewer: Principal
) -> CallRead:
    history = await calls_service.history(session=session, call_id=call.id)
    return _as_read(call, [CallEventRead.model_validate(event) for event in history], viewer=viewer)


def _as_read(
    call: Call | calls_service.CallRow, history: list[CallEventRead], *, viewer: Principal
) -> CallRead:
    return CallRead(**_fields(call, viewer=viewer), history=history)


def _fields(call: Call | calls_service.CallRow, *, viewer: Principal) -> dict[str, Any]:
    """The call's fields as `viewer` sees them: the caller masked from another city."""
    return {
        "id": call.id,
        "external_id": call.external_id,
        "city": call.city_code,
        "caller": frames.caller_as_seen(
            call.caller, call_city=call.city_code, viewer_city=viewer.city
        ),
        "channel": call.channel,
        "priority": call.priority,
        "status": call.status,
        "agent_id": call.agent_id,
        "received_at": call.received_at,
        "connected_at": call.connected_at,
        "ended_at": call.ended_at,
        "wrapped_up_at": call.wrapped_up_at,
        "disposition": call.disposition,
        "category_code": call.category_code,
        "summary": call.summary,
        "script_version": call.script_version,
        "script_key": call.script_key,
        "satisfied": call.satisfied,
        "feedback_score": call.feedback_score,
        "transfers": call.transfers,
        "transfer_note": call.transfer_note,
        "callback_requested_at": call.callback_requested_at,
        "callback_attempts": call.callback_attempts,
        "callback_due_at": call.callback_due_at,
        "script_version_at_accept": call.script_version_at_accept,
        "script_version_at_complete": call.script_version_at_complete,
    }


async def _post_call_reads(body: CallCreate, credentials: BearerDep) -> None:
    """What POST /calls reads, declared for its OpenAPI operation (a DirectRoute solves nothing)."""


async def post_call(request: Request) -> Response:
    """A call arrives: record it and queue it (idempotent on the city and `external_id`)."""
    # The hottest route, a DirectRoute: it reads its body and token itself, as FastAPI would.
    data = await json_body(request, CallCreate)
    principal = await authorize(request, Role.CTI)
    body = validated(CallCreate, data)
    runtime: Runtime = request.app.state.runtime
    require_city_access(principal, body.city)
    await runtime.cities.require(body.city)
    # A hot transition's connection: on PostgreSQL ingest's one statement commits by itself
    # (a BEGIN and a COMMIT would only cost SQLAlchemy's work); SQLite's are one transaction.
    async with runtime.hot.transition() as connection:
        call, created, callback_pending = await calls_service.ingest(
            connection=connection,
            payload=body,
            instance=runtime.settings.instance_id,
            secret=runtime.settings.secret_key.get_secret_value(),
            timezone=runtime.settings.report_timezone,
        )
    if not created:
        return await _answer_again(call, runtime=runtime, viewer=principal)
    await runtime.state.enqueue([calls_service.as_queued(call)])
    runtime.dispatcher.poke()
    telemetry.call_posted(
        call_id=call.id, city=call.city_code, channel=call.channel, priority=call.priority
    )
    if callback_pending:  # a callback of this caller's: one, not two
        await runtime.transitions.caller_back(call)
    # A new call's whole history is its arrival: no need to read it back.
    arrival = CallEventRead(
        at=call.received_at,
        from_status=None,
        to_status=CallStatus.QUEUED,
        agent_id=None,
        offer_id=None,
        reason=None,
    )
    return answer(_as_read(call, [arrival], viewer=principal), status.HTTP_201_CREATED)


router.add_api_route(
    "/calls",
    post_call,
    methods=["POST"],
    route_class_override=DirectRoute,
    dependencies=[Depends(_post_call_reads)],
    response_model=CallRead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": CallRead, "description": "The call with this external_id"}},
)


@router.get(
    "/calls",
    response_model=TicketPage,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "A page of tickets, or (format=csv) all of them from the cursor on",
        },
        **errors.responses(
            errors.Forbidden, errors.UnknownCity, errors.UnknownCategory, errors.InvalidCursor
        ),
    },
)
async def list_calls(
    principal: ReaderDep,
    session: SessionDep,
    runtime: RuntimeDep,
    city: Annotated[str | None, Query(pattern=CITY_CODE, description="The call's city")] = None,
    received_from: Annotated[
        TimeBound | None,
        Query(alias="from", description="Received from: a local day YYYY-MM-DD or a time"),
    ] = None,
    received_to: Annotated[
        TimeBound | None,
        Query(alias="to", description="Received before this time, or up to this day's end"),
    ] = None,
    call_status: Annotated[CallStatus | None, Query(alias="status")] = None,
    category: Annotated[
        str | None, Query(pattern=r"^[0-9]{2}([0-9]{2})?$", description="A category or group")
    ] = None,
    served_by: Annotated[
        str | None, Query(pattern=CITY_CODE, description="The city whose agent answered")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, pattern=NO_NUL, description="Free text")] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the page before")] = None,
    limit: Annotated[
        int, Query(ge=1, le=tickets.MAX_LIMIT, description="Calls per page (JSON)")
    ] = tickets.DEFAULT_LIMIT,
    fmt: Annotated[TicketFormat, Query(alias="format")] = TicketFormat.JSON,
    lang: Annotated[Lang, Query(description="CSV headers")] = Lang.ZH,
) -> Response | TicketPage:
    """The ticket list, newest first: the province all, a city its own and (masked) its agents'
    calls for other hosts; cursor pages, or the whole list as CSV (UTF-8 with BOM)."""
    for code in (city, served_by):
        if code is not None:
            await runtime.cities.require(code)
    wanted = tickets.query(
        classification=runtime.classification,
        timezone=runtime.settings.report_timezone,
        city=city,
        served_by=served_by,
        status=call_status,
        category=category,
        text=q,
        received_from=received_from,
        received_to=received_to,
    )
    after = None if cursor is None else tickets.decode_cursor(cursor)
    size = tickets.CSV_BATCH if fmt is TicketFormat.CSV else limit
    listed, more = await tickets.page(
        session=session, viewer=principal, wanted=wanted, after=after, limit=size
    )
    if fmt is TicketFormat.JSON:
        return TicketPage(
            items=[
                TicketRead(**_fields(t.call, viewer=principal), served_by=t.served_by)
                for t in listed
            ],
            next_cursor=None if more is None else tickets.encode_cursor(more),
        )
    scope = principal.city or "province"
    stamp = datetime.now(ZoneInfo(runtime.settings.report_timezone)).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        tickets.csv_file(
            listed,
            more,
            sessions=runtime.sessions,
            viewer=principal,
            wanted=wanted,
            timezone=runtime.settings.report_timezone,
            classification=runtime.classification,
            lang=lang,
        ),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="surge-tickets-{scope}-{stamp}.csv"'
        },
    )


async def _answer_again(
    call: calls_service.CallRow, *, runtime: Runtime, viewer: Principal
) -> Response:
    """The call a repeated POST names: queued again if a first answer left it unqueued."""
    if call.status == CallStatus.QUEUED:
        # A first answer of 503 (the hot state was down) left the call recorded but not
        # queued: the retry queues it. A call the hot state already holds is left alone.
        (added,) = await runtime.state.enqueue([calls_service.as_queued(call)])
        if added:
            runtime.dispatcher.poke()
        if call.callback_requested_at is None:
            await runtime.transitions.caller_back(call)  # a first answer may have failed first
    async with runtime.sessions() as session:
        return answer(await _read(call, session=session, viewer=viewer), status.HTTP_200_OK)


@router.post("/calls/{call_id}/abandon", response_model=CallRead)
async def abandon_call(
    call_id: CallId, principal: CtiDep, session: SessionDep, runtime: RuntimeDep
) -> CallRead:
    """The caller hung up while waiting or being offered."""
    call = await runtime.transitions.abandon(
        call_id, allowed=lambda call: require_city_access(principal, call.city_code)
    )
    return await _read(call, session=session, viewer=principal)


@router.post("/calls/{call_id}/callback", response_model=CallRead)
async def request_callback(
    call_id: CallId, principal: CtiDep, session: SessionDep, runtime: RuntimeDep
) -> CallRead:
    """A waiting or abandoned call becomes a callback (回拨), at its original place in the queue."""
    call = await runtime.transitions.request_callback(
        call_id, allowed=lambda call: require_city_access(principal, call.city_code)
    )
    return await _read(call, session=session, viewer=principal)


@router.post("/calls/{call_id}/callback/result", response_model=CallRead)
async def callback_result(
    call_id: CallId,
    body: CallbackResult,
    principal: CtiDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> CallRead:
    """Whether the callback dialled (`callback.dial`) reached the caller."""
    call = await runtime.transitions.callback_result(
        call_id,
        reached=body.reached,
        allowed=lambda call: require_city_access(principal, call.city_code),
    )
    return await _read(call, session=session, viewer=principal)


@router.post(
    "/calls/{call_id}/feedback",
    response_model=FeedbackRead,
    status_code=status.HTTP_201_CREATED,
)
async def post_feedback(
    call_id: CallId, body: FeedbackCreate, principal: CtiDep, session: SessionDep
) -> FeedbackRead:
    """The satisfaction follow-up (回访) from an IVR or SMS callback: once per connected call."""
    async with session.begin():
        call = await calls_service.get(session=session, call_id=call_id)
        require_city_access(principal, call.city_code)
        return await calls_service.record_feedback(session=session, call=call, answer=body)


@router.get("/calls/{call_id}", response_model=CallRead)
async def get_call(call_id: CallId, principal: PrincipalDep, session: SessionDep) -> CallRead:
    """A call with its full history, for those allowed to see it."""
    call = await calls_service.get(session=session, call_id=call_id)
    if principal.role is Role.AGENT:
        handling = call.agent_id == principal.agent_id and call.status in (
            CallStatus.OFFERED,
            CallStatus.CONNECTED,
            CallStatus.DIALING,
        )
        if not handling:
            # An agent must not learn that other calls exist.
            raise NotFound(f"no call with id {call_id}")
    else:
        require_city_access(principal, call.city_code)
    return await _read(call, session=session, viewer=principal)


@router.post("/calls/{call_id}/release", response_model=CallRead)
async def release_call(
    call_id: CallId,
    body: CallRelease,
    principal: SupervisorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> CallRead:
    """Close a connected call whose agent is gone (offline or lost): completed, `released`."""
    call = await runtime.transitions.release(
        call_id,
        reason=body.reason,
        actor=principal.username,
        allowed=lambda call: require_city_access(principal, call.city_code),
    )
    return await _read(call, session=session, viewer=principal)
