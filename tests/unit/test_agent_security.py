"""Tokens, roles, the rate limiter and the audit MSISDN policy (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import pytest

from mmsq.agents import (
    TOKEN_PREFIX,
    Agent,
    AgentExistsError,
    AgentNotFoundError,
    AgentService,
    Permission,
    Role,
    hash_token,
)
from mmsq.audit import subject_for_audit
from mmsq.rate_limit import RateLimiter
from tests.api_fakes import FixedClock


class MemoryAgents:
    def __init__(self) -> None:
        self.rows: list[Agent] = []
        self.lookups = 0

    def add_agent(self, name: str, role: Role, token_hash: str, created_at: datetime) -> Agent:
        if any(a.name == name and a.active for a in self.rows):
            raise AgentExistsError(name)
        agent = Agent(len(self.rows) + 1, name, role, token_hash, created_at)
        self.rows.append(agent)
        return agent

    def agent_by_token_hash(self, token_hash: str) -> Agent | None:
        self.lookups += 1
        return next((a for a in self.rows if a.token_hash == token_hash), None)

    def list_agents(self, include_revoked: bool = False) -> Sequence[Agent]:
        return [a for a in self.rows if include_revoked or a.active]

    def revoke_agent(self, name: str, at: datetime) -> Agent:
        for i, a in enumerate(self.rows):
            if a.name == name and a.active:
                self.rows[i] = replace(a, revoked_at=at)
                return self.rows[i]
        raise AgentNotFoundError(name)


def test_token_is_random_prefixed_and_stored_only_as_its_hash() -> None:
    store = MemoryAgents()
    svc = AgentService(store, FixedClock())
    agent, token = svc.add("li.wei", Role.AGENT)
    _, other = svc.add("wang.fang", Role.AGENT)
    assert token.startswith(TOKEN_PREFIX)
    assert len(token) >= len(TOKEN_PREFIX) + 43  # 32 random bytes, base64url
    assert token != other
    assert agent.token_hash == hash_token(token)
    assert token not in repr(store.rows)


def test_authenticate_accepts_the_token_and_refuses_others() -> None:
    svc = AgentService(MemoryAgents(), FixedClock())
    agent, token = svc.add("li.wei", Role.AGENT)
    assert svc.authenticate(token) == agent
    assert svc.authenticate(token + "x") is None
    assert svc.authenticate("not-a-token") is None


def test_revoked_token_stops_working_after_the_cache_time() -> None:
    clock = FixedClock()
    store = MemoryAgents()
    svc = AgentService(store, clock, cache_seconds=5)
    other_process = AgentService(store, clock, cache_seconds=5)
    _, token = svc.add("li.wei", Role.AGENT)
    assert other_process.authenticate(token) is not None
    svc.revoke("li.wei")
    assert svc.authenticate(token) is None  # the revoking process forgets at once
    clock.advance(6)
    assert other_process.authenticate(token) is None


def test_lookups_are_cached() -> None:
    store = MemoryAgents()
    svc = AgentService(store, FixedClock(), cache_seconds=5)
    _, token = svc.add("li.wei", Role.AGENT)
    for _ in range(10):
        svc.authenticate(token)
    assert store.lookups == 1


def test_names_are_checked_and_unique_among_active_agents() -> None:
    svc = AgentService(MemoryAgents(), FixedClock())
    with pytest.raises(ValueError, match="agent name"):
        svc.add("bad name!", Role.AGENT)
    svc.add("li.wei", Role.AGENT)
    with pytest.raises(AgentExistsError):
        svc.add("li.wei", Role.ADMIN)
    svc.revoke("li.wei")
    svc.add("li.wei", Role.AGENT)  # rotation: a revoked name can be reused


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.AGENT, {Permission.RESEND, Permission.DIAGNOSE}),
        (Role.SUPERVISOR, {Permission.RESEND, Permission.DIAGNOSE, Permission.READ_AUDIT}),
        (
            Role.ADMIN,
            {
                Permission.RESEND,
                Permission.DIAGNOSE,
                Permission.READ_AUDIT,
                Permission.MANAGE_AGENTS,
            },
        ),
        (Role.FEED, {Permission.FEED}),
    ],
)
def test_role_permissions(role: Role, allowed: set[Permission]) -> None:
    assert role.permissions == allowed


def test_rate_limiter_allows_burst_then_refuses_with_retry_after() -> None:
    clock = FixedClock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.check("a").allowed for _ in range(4)] == [True, True, True, False]
    refused = limiter.check("a")
    assert not refused.allowed
    assert 0 < refused.retry_after_s <= 1.0
    assert limiter.check("b").allowed  # buckets are per key
    clock.advance(1.0)
    assert limiter.check("a").allowed
    assert not limiter.check("a").allowed


def test_audit_keeps_full_msisdn_only_for_resends() -> None:
    assert subject_for_audit("resend.create", "+8613800138000") == "+8613800138000"
    assert subject_for_audit("diagnosis.read", "+8613800138000") == "+86138****8000"
    assert subject_for_audit("resend.read", "+8613800138000") == "+86138****8000"
    assert subject_for_audit("audit.read", None) is None
