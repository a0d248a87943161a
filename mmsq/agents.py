"""API callers ("agents"), their roles and bearer tokens.

Tokens are 256-bit random strings (``secrets.token_urlsafe(32)``) shown once when an agent is
added. Only their SHA-256 digest is stored. A slow password hash (bcrypt, scrypt, argon2) exists
to make guessing *low-entropy* secrets expensive; a random 256-bit token cannot be guessed, so a
single fast hash is enough to make a stolen table useless, and it lets the token be found by an
indexed lookup on its digest (a salted slow hash could not be looked up, only compared one row at
a time). The digest found is compared again with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from mmsq.ports import Clock

__all__ = [
    "TOKEN_PREFIX",
    "Agent",
    "AgentExistsError",
    "AgentNotFoundError",
    "AgentService",
    "AgentStore",
    "Permission",
    "Role",
    "hash_token",
    "new_token",
]

#: Tokens start with this so that a leaked one is recognisable in logs and secret scanners.
TOKEN_PREFIX = "mmsq_"  # noqa: S105 - a public marker, not a secret
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class Permission(StrEnum):
    """What a call needs; roles grant sets of these."""

    RESEND = "resend"
    DIAGNOSE = "diagnose"
    READ_AUDIT = "read_audit"
    MANAGE_AGENTS = "manage_agents"
    FEED = "feed"


class Role(StrEnum):
    """agent: resend and diagnose; supervisor: also the audit trail; admin: also manage agents;
    feed: only the subscription feed endpoint (a machine caller, not a person)."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    FEED = "feed"

    @property
    def permissions(self) -> frozenset[Permission]:
        return _GRANTS[self]


_AGENT_GRANTS = frozenset({Permission.RESEND, Permission.DIAGNOSE})
_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.AGENT: _AGENT_GRANTS,
    Role.SUPERVISOR: _AGENT_GRANTS | {Permission.READ_AUDIT},
    Role.ADMIN: _AGENT_GRANTS | {Permission.READ_AUDIT, Permission.MANAGE_AGENTS},
    Role.FEED: frozenset({Permission.FEED}),
}


@dataclass(frozen=True, slots=True)
class Agent:
    """One caller of the API. ``token_hash`` is the hex SHA-256 of its token."""

    id: int
    name: str
    role: Role
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def can(self, permission: Permission) -> bool:
        return self.active and permission in self.role.permissions


class AgentExistsError(Exception):
    """An active agent of that name exists already."""


class AgentNotFoundError(Exception):
    """No active agent of that name."""


class AgentStore(Protocol):
    """Persistence of agents (the SQL adapter; an in-memory fake in tests)."""

    def add_agent(self, name: str, role: Role, token_hash: str, created_at: datetime) -> Agent:
        """Insert an agent; raises AgentExistsError if an active one has that name."""
        ...

    def agent_by_token_hash(self, token_hash: str) -> Agent | None: ...

    def list_agents(self, include_revoked: bool = False) -> Sequence[Agent]: ...

    def revoke_agent(self, name: str, at: datetime) -> Agent:
        """Mark the active agent ``name`` revoked; raises AgentNotFoundError."""
        ...


def new_token() -> str:
    """A fresh bearer token: prefix plus 32 random bytes, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token (see the module docstring for why not bcrypt)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AgentService:
    """Adds, lists and revokes agents; authenticates bearer tokens.

    Authentication results are cached for ``cache_seconds`` so that a busy agent tool does not
    cost a database read per call; a revocation therefore takes effect within that time.
    """

    def __init__(self, store: AgentStore, clock: Clock, cache_seconds: float = 5.0) -> None:
        self._store = store
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Agent | None]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, role: Role) -> tuple[Agent, str]:
        """Create an agent; returns it and its token, which is never shown again."""
        if not _NAME.match(name):
            raise ValueError(
                "agent name must be 1-64 characters: letters, digits, '.', '_', '@', '-'"
            )
        token = new_token()
        agent = self._store.add_agent(name, role, hash_token(token), self._clock.now())
        return agent, token

    def list(self, include_revoked: bool = False) -> Sequence[Agent]:
        return self._store.list_agents(include_revoked)

    def revoke(self, name: str) -> Agent:
        agent = self._store.revoke_agent(name, self._clock.now())
        with self._lock:
            self._cache.pop(agent.token_hash, None)
        return agent

    def authenticate(self, token: str) -> Agent | None:
        """The active agent holding ``token``, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = hash_token(token)
        now = self._clock.now().timestamp()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self._cache_seconds:
            agent = hit[1]
        else:
            agent = self._store.agent_by_token_hash(digest)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now, agent)
        if agent is None or not agent.active:
            return None
        # The row was found by its digest; compare again in constant time all the same.
        if not hmac.compare_digest(agent.token_hash, digest):
            return None
        return agent
