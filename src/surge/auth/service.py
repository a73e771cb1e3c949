"""Users, password hashing, access tokens and login throttling."""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from dataclasses import dataclass

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from surge.auth.models import Role, User
from surge.calls.models import Call, CallEvent
from surge.cities.models import City
from surge.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidCredentials,
    NotFound,
    TooManyAttempts,
    Unauthorized,
    UnknownCity,
    UsernameTaken,
)
from surge.scripts.models import ScriptAck
from surge.seats.models import Agent
from surge.settings import Settings
from surge.state.base import HotState
from surge.surges import service as surges_service

_hasher = PasswordHasher()
_ALGORITHM = "HS256"
_ISSUER = "surge"
# Verified against when the username is unknown, so a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("surge-timing-equaliser")

ROLES_WITH_CITY = frozenset({Role.CITY_ADMIN, Role.AGENT})
ROLES_WITHOUT_CITY = frozenset({Role.COORDINATOR})
PASSWORD_MIN = 8
PASSWORD_MAX = 256  # what a login takes
CLI = "cli"  # the audit log's actor of `surge users` and `surge seed`


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the access token says."""

    user_id: int
    username: str
    role: Role
    city: str | None
    agent_id: int | None = None
    token_version: int = 0  # the user's token version when the token was issued
    issued_at: int = 0  # when the token was signed (epoch seconds; 0 before it is)


async def hash_password(password: str) -> str:
    """Hash with argon2id off the event loop (it is deliberately slow)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def _check_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise BadRequest(
            f"a password has at least {PASSWORD_MIN} characters (and at most {PASSWORD_MAX})"
        )


async def create_user(
    *,
    session: AsyncSession,
    actor: str,
    username: str,
    password: str,
    role: Role,
    city: str | None,
    endpoint: str | None = None,
) -> User:
    """Create a user (and, for an agent, its seat) and audit it; the caller commits."""
    if not username or len(username) > 64 or not username.isprintable() or " " in username:
        raise BadRequest("a username is 1 to 64 printable characters without spaces")
    _check_password(password)
    if role in ROLES_WITH_CITY and city is None:
        raise BadRequest(f"a {role} belongs to a city: give its city (--city)")
    if role in ROLES_WITHOUT_CITY and city is not None:
        raise BadRequest(f"a {role} is province-wide and has no city")
    if city is not None and await session.get(City, city) is None:
        raise UnknownCity(f"no city with code {city!r}")
    user = User(
        username=username,
        password_hash=await hash_password(password),
        role=role,
        city_code=city,
        # Not 0: SQLite may give a deleted user's id to the next user, and a token kept from
        # the deleted one must not match the newcomer's version.
        token_version=secrets.randbelow(2**30),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise UsernameTaken(f"a user named {username!r} already exists") from exc
    if role is Role.AGENT and city is not None:
        session.add(
            Agent(
                user_id=user.id,
                city_code=city,
                name=username,
                endpoint=endpoint or f"sip:{username}@{city}.12345.local",
            )
        )
        await session.flush()
    _audit(session, actor, "user.created", user)
    return user


def _audit(session: AsyncSession, actor: str, action: str, user: User) -> None:
    """Record a change of a user (never its password) in the audit log."""
    surges_service.audit(
        session=session,
        actor=actor,
        action=action,
        surge_id=None,
        detail={
            "user_id": user.id,
            "username": user.username,
            "role": user.role,
            "city": user.city_code,
        },
        reason=None,
    )


def issue_token(*, settings: Settings, principal: Principal) -> str:
    """Sign an access token carrying the principal's role and city."""
    now = int(time.time())
    claims = {
        "iss": _ISSUER,
        "sub": str(principal.user_id),
        "name": principal.username,
        "role": principal.role.value,
        "city": principal.city,
        "aid": principal.agent_id,
        "tv": principal.token_version,
        "iat": now,
        "exp": now + settings.token_ttl_s,
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=_ALGORITHM)


def read_token(*, settings: Settings, token: str) -> Principal:
    """Check a token's signature and expiry and return its principal.

    A token read before is not decoded and verified again (the same text under the same key
    gives the same answer): only its expiry is checked again.
    """
    try:
        principal, expires_at = _verified(settings.secret_key.get_secret_value(), token)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the access token has expired") from exc
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("the access token is not valid") from exc
    if expires_at <= time.time():  # as PyJWT judges `exp`
        raise Unauthorized("the access token has expired")
    return principal


@functools.lru_cache(maxsize=4096)
def _verified(secret: str, token: str) -> tuple[Principal, float]:
    """The principal and expiry of a token whose signature and claims hold (errors not kept)."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[_ALGORITHM],
        issuer=_ISSUER,
        options={"require": ["exp", "iat", "sub", "iss"]},
    )
    principal = Principal(
        user_id=int(claims["sub"]),
        username=str(claims["name"]),
        role=Role(claims["role"]),
        city=claims.get("city"),
        agent_id=claims.get("aid"),
        token_version=int(claims.get("tv", 0)),  # tokens signed before versions were 0
        issued_at=int(claims["iat"]),
    )
    return principal, float(claims["exp"])


async def login(
    *,
    session: AsyncSession,
    state: HotState,
    settings: Settings,
    username: str,
    password: str,
    address: str,
) -> Principal:
    """Check a username and password from a client address; failed logins are throttled.

    Each attempt takes a place in two fixed-window counts before the (slow) password check, so
    that parallel guesses cannot overrun them: one for the name from this address, one for the
    address. A good login empties the first and gives its place in the second back, so only
    failures lock: the name from that address (its owner elsewhere is not locked out), and the
    address after a wider number of failures (a spray over many names).
    """
    pair_key = f"login:{address} {username.lower()}"  # names and addresses hold no spaces
    address_key = f"login-from:{address}"
    window_s = settings.login_window_s
    if await state.count_hit(address_key, window_s=window_s) > (
        settings.login_max_failures_per_address
    ):  # refused before the pair is counted: a spray of names leaves no key per name
        raise TooManyAttempts(
            "too many failed logins from your address; try again in a few minutes"
        )
    if await state.count_hit(pair_key, window_s=window_s) > settings.login_max_failures:
        raise TooManyAttempts("too many failed logins for this user; try again in a few minutes")
    user = (
        await session.execute(select(User).where(User.username == username))
    ).scalar_one_or_none()
    if user is None or not user.is_active:
        await _verify(_DUMMY_HASH, password)
        raise InvalidCredentials("wrong username or password")
    if not await _verify(user.password_hash, password):
        raise InvalidCredentials("wrong username or password")
    await state.reset_hits(pair_key)
    await state.forgive_hit(address_key)
    agent_id = await agent_id_of(session=session, user=user) if user.role == Role.AGENT else None
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        city=user.city_code,
        agent_id=agent_id,
        token_version=user.token_version,
    )


async def user_named(*, session: AsyncSession, username: str) -> User:
    """The user of that name (`NotFound` if there is none)."""
    user = (
        await session.execute(select(User).where(User.username == username))
    ).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


async def get_user(*, session: AsyncSession, user_id: int) -> User:
    """The user with that id (`NotFound` if there is none)."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


async def users(
    *, session: AsyncSession, city: str | None = None, role: Role | None = None
) -> list[tuple[User, int | None]]:
    """Users and their agent ids (None but for agents), oldest first; of a city, a role if given."""
    query = select(User, Agent.id).outerjoin(Agent, Agent.user_id == User.id).order_by(User.id)
    if city is not None:
        query = query.where(User.city_code == city)
    if role is not None:
        query = query.where(User.role == role)
    return [(user, agent_id) for user, agent_id in (await session.execute(query)).all()]


async def agent_id_of(*, session: AsyncSession, user: User) -> int | None:
    """The id of the user's seat (an agent's), or None."""
    return await session.scalar(select(Agent.id).where(Agent.user_id == user.id))


def require_manages(principal: Principal, *, role: Role, city: str | None) -> None:
    """A coordinator manages every user; a city admin only its own city's agents."""
    if principal.role is Role.COORDINATOR:
        return
    if principal.role is Role.CITY_ADMIN and role is Role.AGENT and city == principal.city:
        return
    raise Forbidden(f"a city admin manages only the agents of its own city ({principal.city})")


def require_may_change(principal: Principal, user: User) -> None:
    """What `require_manages` checks, and that the user is not the caller: disabling itself it
    could not undo, and a reset is no way to change one's own password (it asks no old one)."""
    require_manages(principal, role=Role(user.role), city=user.city_code)
    if user.id == principal.user_id:
        raise Conflict("you cannot disable yourself or reset your own password")


async def change_user(
    *,
    session: AsyncSession,
    actor: str,
    user: User,
    disabled: bool | None = None,
    password: str | None = None,
) -> None:
    """Disable or enable a user, or reset its password, and audit each change; the caller commits.

    Disabling refuses the user's logins and withdraws its tokens; a new password withdraws them
    too (its holder logs in again). Both change the token version, which every instance reads
    within `SURGE_USER_REFRESH_S` and which closes the user's sockets. Enabling lets the user
    log in again; the tokens withdrawn stay withdrawn. Setting `disabled` to what it is changes
    nothing.
    """
    if disabled is None and password is None:
        raise BadRequest('say what to change: "disabled", "password" or both')
    if password is not None:
        _check_password(password)
        user.password_hash = await hash_password(password)
        user.token_version += 1
        _audit(session, actor, "user.password_reset", user)
    if disabled is not None and disabled == user.is_active:
        user.is_active = not disabled
        if disabled:
            user.token_version += 1
        _audit(session, actor, "user.disabled" if disabled else "user.enabled", user)
    await session.flush()


async def delete_user(*, session: AsyncSession, actor: str, user: User) -> None:
    """Remove a user (and its seat); refused for an agent whose calls' history names it."""
    kept = Conflict(f"{user.username!r} is named in the service's records: disable it instead")
    agent_id = await agent_id_of(session=session, user=user)
    if agent_id is not None:
        in_history = await session.scalar(
            select(
                or_(
                    exists().where(Call.agent_id == agent_id),
                    exists().where(CallEvent.agent_id == agent_id),
                )
            )
        )
        if in_history:
            raise kept  # the calls it took
        await session.execute(delete(ScriptAck).where(ScriptAck.agent_id == agent_id))
        await session.execute(delete(Agent).where(Agent.id == agent_id))
    _audit(session, actor, "user.deleted", user)
    await session.delete(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # another record refers to it
        raise kept from exc
