"""Script books: publish immutable versions, list, fetch, diff and roll back; who may read them.

A publish stores the whole book as a new version (never an edit), after validation: unique keys,
known category codes. `base_version` makes publishing optimistic: two admins editing the same
version cannot silently overwrite each other. Agents serving the city are told at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from surge import events
from surge.auth.models import Role
from surge.auth.service import Principal
from surge.db import utcnow
from surge.errors import BadRequest, Forbidden, NotFound, StaleVersion, UnknownCategory
from surge.reasons import Reason
from surge.scripts.classification import Classification
from surge.scripts.models import ScriptAck, ScriptVersion
from surge.scripts.schemas import ScriptEntry
from surge.seats import frames
from surge.seats.models import Agent
from surge.surges import service as surges_service
from surge.surges.roster import ActiveSurges

ENTRY_FIELDS = ("title", "question", "answer", "category_code", "tags")


async def latest(*, session: AsyncSession, city: str) -> ScriptVersion | None:
    """The newest version of the city's book, if any."""
    query = (
        select(ScriptVersion)
        .where(ScriptVersion.city_code == city)
        .order_by(ScriptVersion.version.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def current_versions(*, session: AsyncSession, cities: list[str]) -> dict[str, int]:
    """The newest version number of each city's book (0 before any publish)."""
    rows = await session.execute(
        select(ScriptVersion.city_code, func.max(ScriptVersion.version))
        .where(ScriptVersion.city_code.in_(cities))
        .group_by(ScriptVersion.city_code)
    )
    found = dict(rows.all())
    return {city: int(found.get(city) or 0) for city in cities}


async def version(*, session: AsyncSession, city: str, number: int) -> ScriptVersion:
    """One version, or `NotFound`."""
    query = select(ScriptVersion).where(
        ScriptVersion.city_code == city, ScriptVersion.version == number
    )
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"city {city} has no script version {number}")
    return found


async def versions(*, session: AsyncSession, city: str) -> list[ScriptVersion]:
    """Every version, newest first."""
    query = (
        select(ScriptVersion)
        .where(ScriptVersion.city_code == city)
        .order_by(ScriptVersion.version.desc())
    )
    return list((await session.execute(query)).scalars())


def rollback_note(to_version: int) -> Reason:
    """The note of a rollback published without one of its own."""
    return Reason("rollback", {"to_version": to_version}, f"rollback to version {to_version}")


def _validate(entries: list[ScriptEntry], classification: Classification) -> None:
    keys = [entry.key for entry in entries]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise BadRequest(f"each entry key may appear once; repeated: {', '.join(repeated[:20])}")
    unknown = classification.unknown({entry.category_code for entry in entries})
    if unknown:
        raise UnknownCategory(f"unknown category codes: {', '.join(unknown[:20])}")


async def publish(
    *,
    session: AsyncSession,
    city: str,
    entries: list[ScriptEntry],
    author: str,
    note: str | None,
    base_version: int | None,
    classification: Classification,
    surges: ActiveSurges,
    required: bool = False,
    rolled_back_from: int | None = None,
) -> tuple[ScriptVersion, list[events.Event]]:
    """Store the book as the next version (in the audit log too) and tell every agent serving
    the city (a required version: and every instance, whose dispatchers hold back offers)."""
    _validate(entries, classification)
    current = await session.scalar(
        select(func.max(ScriptVersion.version)).where(ScriptVersion.city_code == city)
    )
    current = current or 0
    if base_version is not None and base_version != current:
        raise StaleVersion(
            f"you edited version {base_version}, but version {current} has been published since;"
            " reload, merge and publish again"
        )
    previous = await latest(session=session, city=city) if current else None
    published = ScriptVersion(
        city_code=city,
        version=current + 1,
        author=author,
        note=note,
        rolled_back_from=rolled_back_from,
        entry_count=len(entries),
        entries=[entry.model_dump() for entry in entries],
        required=required,
    )
    session.add(published)
    try:
        await session.flush()
    except IntegrityError as exc:  # another admin published the same next version just now
        raise StaleVersion(f"version {current + 1} was published a moment ago; reload") from exc
    surges_service.audit(
        session=session,
        actor=author,
        action="scripts.published" if rolled_back_from is None else "scripts.rolled_back",
        surge_id=None,
        detail={
            "city": city,
            "version": published.version,
            "entries": len(entries),
            **({"required": True} if required else {}),
            **({} if rolled_back_from is None else {"to_version": rolled_back_from}),
        },
        reason=note,
    )
    changes = diff_entries(previous.entries if previous else [], published.entries)
    frame = frames.scripts_updated(
        city=city,
        version=published.version,
        changes={
            "added": changes[0],
            "removed": changes[1],
            "changed": [key for key, _ in changes[2]],
        },
        required=required,
    )
    # A draining surge's helpers still finish calls in hand: they keep the host's scripts.
    serving = surges.serving_cities(city)
    told: list[events.Event] = [events.to_city_agents(code, frame) for code in serving]
    return published, [*told, events.SCRIPT_HOLDS_CHANGED] if required else told


def diff_entries(
    old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> tuple[list[str], list[str], list[tuple[str, list[str]]]]:
    """Added keys, removed keys, and changed keys with their changed fields."""
    before = {entry["key"]: entry for entry in old}
    after = {entry["key"]: entry for entry in new}
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = []
    for key in sorted(before.keys() & after.keys()):
        fields = [f for f in ENTRY_FIELDS if before[key].get(f) != after[key].get(f)]
        if fields:
            changed.append((key, fields))
    return added, removed, changed


def check_reader(*, principal: Principal, city: str, surges: ActiveSurges) -> None:
    """The city's admin, the coordinator, the city's agents and agents of cities now serving it
    as helpers may read its scripts."""
    if principal.role is Role.COORDINATOR:
        return
    if principal.role in (Role.CITY_ADMIN, Role.AGENT) and principal.city == city:
        return
    if principal.role is Role.AGENT and principal.city in surges.helpers_of(city):
        return
    raise Forbidden(f"you may not read the answer scripts of {city}")


def check_ticket(
    *,
    category_code: str | None,
    script_version: int | None,
    script_key: str | None,
    classification: Classification,
) -> None:
    """A ticket names a known category, and a script entry only with the version it comes from.

    The version and entry themselves are the call's city's: `check_script_entry` reads them.
    """
    if category_code is not None and classification.unknown({category_code}):
        raise UnknownCategory(f"unknown category code {category_code}")
    if script_key is not None and script_version is None:
        raise BadRequest("a script_key needs the script_version it comes from")


_ENTRIES = select(ScriptVersion.entries).where(
    ScriptVersion.city_code == bindparam("city"), ScriptVersion.version == bindparam("version")
)


async def check_script_entry(
    *, connection: AsyncConnection, city: str, script_version: int, script_key: str | None
) -> None:
    """The city has the script version a ticket names, and the entry (if it names one).

    Versions are never edited or deleted: one found here still exists when the ticket closes.
    """
    found = (
        await connection.execute(_ENTRIES, {"city": city, "version": script_version})
    ).scalar_one_or_none()
    if found is None:
        raise BadRequest(f"city {city} has no script version {script_version}")
    if script_key is not None and all(entry["key"] != script_key for entry in found):
        raise BadRequest(f"script version {script_version} of {city} has no entry {script_key!r}")


async def acknowledge(
    *, session: AsyncSession, agent_id: int, city: str, number: int, serves: bool
) -> None:
    """Remember the newest version of `city` the agent's console has loaded."""
    if not serves:
        raise Forbidden(f"you do not serve {city}")
    current = (await current_versions(session=session, cities=[city]))[city]
    if number > current:
        raise BadRequest(f"city {city} has no script version {number} (current: {current})")
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = builder(ScriptAck).values(
        agent_id=agent_id, city_code=city, version=number, at=utcnow()
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ScriptAck.agent_id, ScriptAck.city_code],
            set_={"version": statement.excluded.version, "at": statement.excluded.at},
        )
    )


async def adoption(
    *, session: AsyncSession, city: str, present: dict[str, list[int]]
) -> tuple[int, int | None, list[tuple[int, str, str, int | None]]]:
    """The current version, the newest required one (if any), and each present serving agent
    (id, name, city, version loaded)."""
    current = (await current_versions(session=session, cities=[city]))[city]
    required = await session.scalar(
        select(func.max(ScriptVersion.version)).where(
            ScriptVersion.city_code == city, ScriptVersion.required.is_(True)
        )
    )
    ids = [agent_id for agents in present.values() for agent_id in agents]
    if not ids:
        return current, required, []
    acks = dict(
        (
            await session.execute(
                select(ScriptAck.agent_id, ScriptAck.version).where(
                    ScriptAck.city_code == city, ScriptAck.agent_id.in_(ids)
                )
            )
        ).all()
    )
    agents = await session.execute(
        select(Agent.id, Agent.name, Agent.city_code).where(Agent.id.in_(ids)).order_by(Agent.id)
    )
    return current, required, [(a, name, home, acks.get(a)) for a, name, home in agents]


async def unacknowledged(
    *, session: AsyncSession, agent_id: int, cities: list[str]
) -> dict[str, int]:
    """Of the named cities, each one's newest required version the agent has not acknowledged
    (neither it nor a later one): the cities holding back its offers."""
    required = dict(
        (
            await session.execute(
                select(ScriptVersion.city_code, func.max(ScriptVersion.version))
                .where(ScriptVersion.city_code.in_(cities), ScriptVersion.required.is_(True))
                .group_by(ScriptVersion.city_code)
            )
        ).all()
    )
    if not required:
        return {}
    acks = dict(
        (
            await session.execute(
                select(ScriptAck.city_code, ScriptAck.version).where(
                    ScriptAck.agent_id == agent_id, ScriptAck.city_code.in_(required)
                )
            )
        ).all()
    )
    return {city: int(v) for city, v in required.items() if acks.get(city, 0) < v}


def check_publisher(principal: Principal, city: str) -> None:
    """Only the city's own admin publishes its scripts."""
    if principal.role is not Role.CITY_ADMIN or principal.city != city:
        raise Forbidden(f"only the city admin of {city} publishes its answer scripts")
