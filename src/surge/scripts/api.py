"""Script book routes: GET/POST /cities/{code}/scripts, versions, diff, rollback."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status

from surge import errors, events
from surge.auth.models import Role
from surge.auth.service import Principal
from surge.cities.schemas import CITY_CODE
from surge.db import INTEGER_MAX
from surge.deps import PrincipalDep, RuntimeDep, SessionDep
from surge.errors import BadRequest, Forbidden
from surge.reports.schemas import ReportDay, check_day
from surge.reports.service import Day
from surge.schemas import NO_NUL, ReasonCode
from surge.scripts import gaps, stale, transfer
from surge.scripts import service as scripts_service
from surge.scripts.models import ScriptVersion
from surge.scripts.schemas import (
    MAX_ENTRIES,
    AdoptionRead,
    AgentVersion,
    CategoryRead,
    ChangedEntry,
    GapGroupRead,
    GapStatus,
    RollbackRequest,
    ScriptBookCreate,
    ScriptBookRead,
    ScriptDiff,
    ScriptEntry,
    SearchHit,
    SearchResult,
    StaleTicketRead,
    StaleTickets,
    VersionCount,
    VersionSummary,
)

router = APIRouter(
    tags=["scripts"],
    responses=errors.responses(
        errors.Forbidden,
        errors.NotFound,
        errors.UnknownCity,
        errors.UnknownCategory,
        errors.StaleVersion,
        errors.UnknownGap,
        errors.GapAnswered,
    ),
)

CityCode = Annotated[str, Path(pattern=CITY_CODE)]
Number = Annotated[int, Path(ge=1, le=INTEGER_MAX)]


def _summary(found: ScriptVersion) -> VersionSummary:
    rolled_back_from = found.rolled_back_from
    default = None if rolled_back_from is None else scripts_service.rollback_note(rolled_back_from)
    return VersionSummary(
        version=found.version,
        author=found.author,
        created_at=found.created_at,
        note=found.note,
        # The service's own words are given as a code too; a person's note is theirs.
        note_code=ReasonCode.of(default) if default and found.note == default.text else None,
        entry_count=found.entry_count,
        rolled_back_from=rolled_back_from,
        required=found.required,
    )


def _book(city: str, found: ScriptVersion) -> ScriptBookRead:
    return ScriptBookRead(
        city=city,
        **_summary(found).model_dump(),
        entries=[ScriptEntry.model_validate(entry) for entry in found.entries],
    )


async def _reader(city: str, principal: Principal, runtime: RuntimeDep) -> None:
    """Refuse a reader of the city's scripts who may not read them (before the request's
    session takes a connection: the roster may take one of its own)."""
    await runtime.cities.require(city)
    surges = await runtime.surges.current()
    scripts_service.check_reader(principal=principal, city=city, surges=surges)


async def _publish(
    city: str,
    principal: Principal,
    session: SessionDep,
    runtime: RuntimeDep,
    *,
    entries: list[ScriptEntry],
    note: str | None,
    base_version: int | None,
    required: bool,
    rolled_back_from: int | None = None,
    answers_gaps: list[int] | None = None,
) -> ScriptBookRead:
    """Publish a checked book (the caller has checked the city and the publisher); the
    knowledge-gap groups it answers are closed with it, or nothing is published."""
    surges = await runtime.surges.current()  # before the transaction takes a connection
    async with session.begin():
        published, out = await scripts_service.publish(
            session=session,
            city=city,
            entries=entries,
            author=principal.username,
            note=note,
            base_version=base_version,
            classification=runtime.classification,
            surges=surges,
            required=required,
            rolled_back_from=rolled_back_from,
        )
        out += await gaps.answer(
            session=session, city=city, group_ids=answers_gaps or [], version=published.version
        )
    await runtime.gateway.announce(out)
    return _book(city, published)


@router.get("/categories", response_model=list[CategoryRead])
async def list_categories(_: PrincipalDep, runtime: RuntimeDep) -> list[CategoryRead]:
    """The province's request classification: every level-2 code with its kind."""
    return [
        CategoryRead(
            code=c.code,
            name=c.name,
            name_en=c.name_en,
            kind=c.kind.value,
            parent=c.parent,
            parent_name=c.parent_name,
        )
        for c in runtime.classification.categories.values()
    ]


@router.get("/cities/{city}/scripts", response_model=ScriptBookRead)
async def get_scripts(
    city: CityCode, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> ScriptBookRead:
    """The newest version of the city's script book (version 0, empty, before any publish)."""
    await _reader(city, principal, runtime)
    found = await scripts_service.latest(session=session, city=city)
    if found is None:
        return ScriptBookRead(
            city=city, version=0, author="", created_at=events.epoch(), note=None,
            note_code=None, entry_count=0, rolled_back_from=None, required=False, entries=[],
        )  # fmt: skip
    return _book(city, found)


@router.post(
    "/cities/{city}/scripts", response_model=ScriptBookRead, status_code=status.HTTP_201_CREATED
)
async def publish_scripts(
    city: CityCode,
    body: ScriptBookCreate,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ScriptBookRead:
    """Publish a whole new version (give `base_version` to be told if someone published since;
    `required`: serving agents get no more of the city's calls until they acknowledge it;
    `answers_gaps` to close the knowledge-gap groups it answers)."""
    await runtime.cities.require(city)
    scripts_service.check_publisher(principal, city)
    return await _publish(
        city, principal, session, runtime,
        entries=body.entries, note=body.note, base_version=body.base_version,
        required=body.required,
        answers_gaps=body.answers_gaps,
    )  # fmt: skip


@router.get("/cities/{city}/scripts/search", response_model=SearchResult)
async def search_scripts(
    city: CityCode,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="words or characters")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchResult:
    """Search the current version's titles, questions, answers and tags (Chinese or English)."""
    await _reader(city, principal, runtime)
    current = (await scripts_service.current_versions(session=session, cities=[city]))[city]
    index = runtime.script_index
    if current and not index.has(city, current):
        found = await scripts_service.version(session=session, city=city, number=current)
        index.add(city, current, found.entries)
    hits = index.search(city, current, q, limit=limit) if current else []
    return SearchResult(
        city=city,
        version=current,
        query=q,
        hits=[SearchHit(score=h.score, entry=ScriptEntry.model_validate(h.entry)) for h in hits],
    )


@router.get("/cities/{city}/scripts/stale", response_model=StaleTickets)
async def stale_tickets(
    city: CityCode,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    day: Annotated[ReportDay, Query(alias="date", description="The local day, YYYY-MM-DD")],
) -> StaleTickets:
    """The host's tickets of the day (calls received in it) that cited, or were answered under,
    a script version older than the one current at completion. The coordinator and the city's
    admin see all of them; another city's admin those its own agents answered for the host."""
    await runtime.cities.require(city)
    if principal.role not in (Role.COORDINATOR, Role.CITY_ADMIN):
        raise Forbidden("only the coordinator and city admins see stale tickets")
    check_day(day, runtime.settings.report_timezone)
    window = Day.of(day, runtime.settings.report_timezone)
    helper = principal.city if principal.city not in (None, city) else None
    found = await stale.listed(
        session=session, city=city, start=window.start, end=window.end, answered_by=helper
    )
    return StaleTickets(
        city=city,
        date=day,
        count=len(found),
        tickets=[
            StaleTicketRead(
                call_id=t.call_id,
                received_at=t.received_at,
                completed_at=t.ended_at,
                agent_id=t.agent_id,
                agent=t.agent,
                agent_city=t.agent_city,
                helper_city=t.agent_city if t.agent_city != city else None,
                script_version=t.script_version,
                script_version_at_accept=t.script_version_at_accept,
                script_version_at_complete=t.script_version_at_complete,
            )
            for t in found
        ],
    )


@router.get("/cities/{city}/scripts/adoption", response_model=AdoptionRead)
async def script_adoption(
    city: CityCode, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> AdoptionRead:
    """How many connected agents serving the city are on each version, who is behind, and who
    of them is held back (no offers of the city's calls until it acknowledges the required
    version)."""
    await runtime.cities.require(city)
    _supervisor(principal, city, "adoption")
    cities = (await runtime.surges.current()).serving_cities(city)
    present = await runtime.state.present_agents(cities)
    current, required, agents = await scripts_service.adoption(
        session=session, city=city, present=present
    )
    counts = Counter(version for *_, version in agents)
    newest_first = sorted(counts.items(), key=lambda kv: -1 if kv[0] is None else kv[0])[::-1]

    def held(version: int | None) -> bool:
        return required is not None and (version is None or version < required)

    return AdoptionRead(
        city=city,
        version=current,
        required_version=required,
        serving=len(agents),
        held_back=sum(held(v) for *_, v in agents),
        by_version=[VersionCount(version=v, agents=n) for v, n in newest_first],
        behind=[
            AgentVersion(agent_id=a, name=name, city=home, version=v, held_back=held(v))
            for a, name, home, v in agents
            if v is None or v < current
        ],
    )


def _supervisor(principal: Principal, city: str, what: str) -> None:
    """Only the coordinator and the city's own admins see `what`."""
    if principal.role is not Role.COORDINATOR and (
        principal.role is not Role.CITY_ADMIN or principal.city != city
    ):
        raise Forbidden(f"only the coordinator and the city admin of {city} see {what}")


@router.get("/cities/{city}/scripts/gaps", response_model=list[GapGroupRead])
async def list_gaps(
    city: CityCode,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    status: Annotated[GapStatus, Query(description="open (default) or answered")] = GapStatus.OPEN,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[GapGroupRead]:
    """The knowledge gaps agents raised on the city's calls, grouped by similar question."""
    await runtime.cities.require(city)
    _supervisor(principal, city, "its knowledge gaps")
    return await gaps.groups(session=session, city=city, status=status, limit=limit)


_MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
FileFormat = Annotated[Literal["csv", "json"], Query(alias="format")]


@router.get(
    "/cities/{city}/scripts/export",
    response_class=Response,
    responses={200: {"content": {_MEDIA["csv"]: {}, _MEDIA["json"]: {}}}},
)
async def export_scripts(
    city: CityCode,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    file_format: FileFormat = "csv",
    version: Annotated[
        int | None, Query(ge=1, le=INTEGER_MAX, description="default: the current one")
    ] = None,
) -> Response:
    """Download a version of the book as CSV (opens in Excel) or JSON."""
    await _reader(city, principal, runtime)
    if version is None:
        version = (await scripts_service.current_versions(session=session, cities=[city]))[city]
    found = await scripts_service.version(session=session, city=city, number=version)
    write = transfer.to_csv if file_format == "csv" else transfer.to_json
    name = f"scripts-{city}-v{found.version}.{file_format}"
    return Response(
        write(found.entries),
        media_type=_MEDIA[file_format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post(
    "/cities/{city}/scripts/import",
    response_model=ScriptBookRead,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={"requestBody": {"content": {_MEDIA["csv"]: {}, _MEDIA["json"]: {}}}},
)
async def import_scripts(
    city: CityCode,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    file_format: FileFormat = "csv",
    note: Annotated[str | None, Query(max_length=1000, pattern=NO_NUL)] = None,
    base_version: Annotated[int | None, Query(ge=0, le=INTEGER_MAX)] = None,
    required: bool = False,
) -> ScriptBookRead:
    """Publish a new version from a CSV or JSON file sent as the request body."""
    await runtime.cities.require(city)
    scripts_service.check_publisher(principal, city)
    data = await request.body()
    entries = transfer.from_csv(data) if file_format == "csv" else transfer.from_json(data)
    if len(entries) > MAX_ENTRIES:
        raise BadRequest(f"a script book has at most {MAX_ENTRIES} entries")
    return await _publish(
        city, principal, session, runtime,
        entries=entries, note=note or f"imported from {file_format.upper()}",
        base_version=base_version, required=required,
    )  # fmt: skip


@router.get("/cities/{city}/scripts/versions", response_model=list[VersionSummary])
async def list_versions(
    city: CityCode, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> list[VersionSummary]:
    """Every version, newest first."""
    await _reader(city, principal, runtime)
    return [_summary(v) for v in await scripts_service.versions(session=session, city=city)]


@router.get("/cities/{city}/scripts/versions/{number}", response_model=ScriptBookRead)
async def get_version(
    city: CityCode,
    number: Number,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ScriptBookRead:
    """One version with its entries."""
    await _reader(city, principal, runtime)
    return _book(city, await scripts_service.version(session=session, city=city, number=number))


@router.get("/cities/{city}/scripts/diff", response_model=ScriptDiff)
async def diff_versions(
    city: CityCode,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    from_version: Annotated[int, Query(alias="from", ge=0, le=INTEGER_MAX)],
    to_version: Annotated[int, Query(alias="to", ge=0, le=INTEGER_MAX)],
) -> ScriptDiff:
    """Entries added, removed and changed (with the changed fields) between two versions."""
    await _reader(city, principal, runtime)

    async def entries(number: int) -> list[dict[str, object]]:
        if number == 0:
            return []
        found = await scripts_service.version(session=session, city=city, number=number)
        return found.entries

    added, removed, changed = scripts_service.diff_entries(
        await entries(from_version), await entries(to_version)
    )
    return ScriptDiff(
        city=city,
        from_version=from_version,
        to_version=to_version,
        added=added,
        removed=removed,
        changed=[ChangedEntry(key=key, fields=fields) for key, fields in changed],
    )


@router.post(
    "/cities/{city}/scripts/rollback",
    response_model=ScriptBookRead,
    status_code=status.HTTP_201_CREATED,
)
async def rollback(
    city: CityCode,
    body: RollbackRequest,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> ScriptBookRead:
    """Publish an old version's content as a new version (history is never rewritten)."""
    await runtime.cities.require(city)
    scripts_service.check_publisher(principal, city)
    old = await scripts_service.version(session=session, city=city, number=body.to_version)
    entries = [ScriptEntry.model_validate(entry) for entry in old.entries]
    await session.rollback()  # end the read's transaction; the publish opens its own
    return await _publish(
        city, principal, session, runtime,
        entries=entries,
        note=body.note or scripts_service.rollback_note(body.to_version).text,
        base_version=body.base_version, required=body.required,
        rolled_back_from=body.to_version,
    )  # fmt: skip
