"""The outbox in SQL (SQLite or PostgreSQL): implements the ``OutboxStore`` port.

Every method is one transaction. Crash safety comes from the order of writes, not from the
process: a segment is ``submitting`` in the database before its PDU is written, a response is
stored as soon as it is read, and ``requeue_in_flight`` at start-up puts back to ``planned``
exactly the segments whose response never made it to the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mmsq.adapters.smpp_receipt import dec_to_hex, hex_to_dec, normalise_message_id
from mmsq.adapters.sql_store import create_engine_for
from mmsq.outbox import (
    Decision,
    OutboxStatus,
    PlannedContact,
    Receipt,
    ReceiptMatch,
    SubmitRequest,
    SubmitResult,
    epoch_ms,
)

__all__ = ["DELIVERED_STATS", "FAILED_STATS", "SqlOutbox"]

#: Receipt ``stat`` values that end a segment (anything else, ENROUTE or ACCEPTD, does not).
DELIVERED_STATS = frozenset({"DELIVRD"})
FAILED_STATS = frozenset({"UNDELIV", "EXPIRED", "DELETED", "REJECTD", "UNKNOWN", "SKIPPED"})
_IN_PROGRESS = "('planned', 'submitting', 'accepted')"
_CHUNK = 500


def _from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _in(prefix: str, values: Iterable[Any]) -> tuple[str, dict[str, Any]]:
    """An ``IN (...)`` list with named parameters: (sql fragment, parameters)."""
    params = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return "(" + ", ".join(f":{k}" for k in params) + ")", params


class SqlOutbox:
    """Implements ``OutboxStore`` on a SQLAlchemy engine (schema: ``sql_outreach_schema``).

    ``max_attempts``: submits of one segment answered with a retryable error before it fails;
    ``retry_delay_s``: how long such a segment waits before it is tried again;
    ``receipt_id_base``: ``same`` when receipts carry the id as submit_sm_resp gave it (after
    normalisation: case, leading zeros, ``0x``), ``decimal`` when the SMSC answers in hex and
    receipts in decimal, ``hex`` for the reverse (what Kannel's ``msg-id-type`` describes).
    Guessing the base per receipt is not safe: "10" is a valid id in both.
    """

    def __init__(
        self,
        engine: Engine,
        max_attempts: int = 3,
        retry_delay_s: float = 60.0,
        receipt_id_base: str = "same",
    ) -> None:
        if receipt_id_base not in ("same", "decimal", "hex"):
            raise ValueError(f"receipt_id_base {receipt_id_base!r}: same, decimal or hex")
        self.engine = engine
        self.max_attempts = max_attempts
        self.retry_delay_ms = int(retry_delay_s * 1000)
        self.receipt_id_base = receipt_id_base

    def answer_ids(self, receipt_id: str) -> list[str]:
        """The normalised submit_sm_resp ids a receipt id denotes, most likely first."""
        canon = normalise_message_id(receipt_id)
        if not canon:
            return []
        other = None
        if self.receipt_id_base == "decimal":
            other = dec_to_hex(canon)
        elif self.receipt_id_base == "hex":
            other = hex_to_dec(canon)
        return [other, canon] if other and other != canon else [canon]

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SqlOutbox:
        return cls(create_engine_for(url), **kwargs)

    def close(self) -> None:
        self.engine.dispose()

    # -- planning ------------------------------------------------------------------------

    def add_planned(
        self, contacts: Sequence[PlannedContact], decisions: Sequence[Decision], now: datetime
    ) -> tuple[int, int]:
        now_ms = epoch_ms(now)
        new = known = 0
        insert = sa.text(
            "INSERT INTO outreach_contacts (idempotency_key, msisdn, action, reason, template, "
            "step, text, region, state, segments, created_ms, not_before_ms, expires_ms, "
            "updated_ms, detail) VALUES (:key, :msisdn, :action, :reason, :template, :step, "
            ":text, :region, 'planned', :segments, :now, :not_before, :expires, :now, :detail) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
        )
        seg_insert = sa.text(
            "INSERT INTO outreach_segments (contact_id, seq, state, short_message, esm_class, "
            "data_coding, attempts) VALUES (:cid, :seq, 'planned', :sm, :esm, :dc, 0)"
        )
        with self.engine.begin() as conn:
            segments: list[dict[str, Any]] = []
            for c in contacts:
                row = conn.execute(
                    insert,
                    {
                        "key": c.idempotency_key,
                        "msisdn": c.msisdn,
                        "action": c.action,
                        "reason": c.reason,
                        "template": c.template,
                        "step": c.step,
                        "text": c.text,
                        "region": c.region,
                        "segments": len(c.segments),
                        "now": now_ms,
                        "not_before": epoch_ms(c.not_before),
                        "expires": epoch_ms(c.expires_at),
                        "detail": c.detail,
                    },
                ).first()
                if row is None:
                    known += 1
                    continue
                new += 1
                segments += [
                    {
                        "cid": row[0],
                        "seq": n,
                        "sm": s.short_message,
                        "esm": s.esm_class,
                        "dc": s.data_coding,
                    }
                    for n, s in enumerate(c.segments, 1)
                ]
            for chunk in _chunks(segments):
                conn.execute(seg_insert, list(chunk))
            if decisions:
                conn.execute(
                    sa.text(
                        "INSERT INTO outreach_decisions (msisdn, reason, decision, detail, day, "
                        "decided_ms) VALUES (:msisdn, :reason, :decision, :detail, :day, :now) "
                        "ON CONFLICT (msisdn, reason, decision, day) DO NOTHING"
                    ),
                    [
                        {
                            "msisdn": d.msisdn,
                            "reason": d.reason,
                            "decision": d.decision,
                            "detail": d.detail,
                            "day": d.day,
                            "now": now_ms,
                        }
                        for d in decisions
                    ],
                )
        return new, known

    def contact_history(self, since: datetime) -> list[tuple[str, str, str, datetime]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT msisdn, action, reason, created_ms FROM outreach_contacts "
                    "WHERE created_ms >= :since AND state <> 'expired' "
                    "AND NOT (state = 'failed' AND status_code LIKE '0x%')"
                ),
                {"since": epoch_ms(since)},
            ).all()
        return [(r[0], r[1], r[2], datetime.fromtimestamp(r[3] / 1000, UTC)) for r in rows]

    def tacs(self, msisdns: Sequence[str]) -> dict[str, str]:
        """The TAC of each subscriber's latest handset, from the event store's device blocks."""
        from mmsq.adapters.sql_store import SqlStore

        wanted = list(dict.fromkeys(msisdns))
        store = SqlStore(self.engine)
        if len(wanted) <= 64:  # a few look-ups cost less than decoding every partition
            out: dict[str, str] = {}
            for m in wanted:
                device = store.device(m)
                if device is not None and device.get("tac"):
                    out[m] = str(device["tac"])
            return out
        frame = store.devices()
        frame = frame[frame["msisdn"].isin(wanted)]
        return {str(m): str(t) for m, t in zip(frame["msisdn"], frame["tac"], strict=True)}

    def sent_since(self, since: datetime) -> list[tuple[str, str]]:
        """(msisdn, action) of contacts the SMSC took (accepted or delivered) since ``since``:
        what the recovery state machine records as remedies."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT msisdn, action FROM outreach_contacts "
                    "WHERE updated_ms >= :since AND state IN ('accepted', 'delivered')"
                ),
                {"since": epoch_ms(since)},
            ).all()
        return [(str(r[0]), str(r[1])) for r in rows]

    def decided(self, decision: str) -> set[str]:
        """Subscribers with at least one recorded decision ``decision`` (e.g. ``holdout``)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT DISTINCT msisdn FROM outreach_decisions WHERE decision = :d"),
                {"d": decision},
            ).all()
        return {str(r[0]) for r in rows}

    def decisions_for(self, msisdn: str) -> list[dict[str, Any]]:
        """Every decision recorded about one subscriber, newest first (for "why not?")."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT reason, decision, detail, day, decided_ms FROM outreach_decisions "
                    "WHERE msisdn = :m ORDER BY decided_ms DESC, id DESC"
                ),
                {"m": msisdn},
            ).mappings()
            return [dict(r) for r in rows]

    # -- dispatch ------------------------------------------------------------------------

    def requeue_in_flight(self, now: datetime) -> int:
        now_ms = epoch_ms(now)
        with self.engine.begin() as conn:
            n = conn.execute(
                sa.text(
                    "UPDATE outreach_segments SET state = 'planned' "
                    "WHERE state = 'submitting' AND response_ms IS NULL"
                )
            ).rowcount
            conn.execute(
                sa.text(
                    "UPDATE outreach_contacts SET state = 'planned', updated_ms = :now "
                    "WHERE state = 'submitting' AND NOT EXISTS (SELECT 1 FROM outreach_segments "
                    "s WHERE s.contact_id = outreach_contacts.id AND s.state <> 'planned')"
                ),
                {"now": now_ms},
            )
        return int(n)

    def due_regions(self, now: datetime) -> list[str | None]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT DISTINCT region FROM outreach_contacts WHERE state IN "
                    "('planned', 'submitting') AND not_before_ms <= :now"
                ),
                {"now": epoch_ms(now)},
            ).all()
        return [r[0] for r in rows]

    def claim(
        self, limit: int, now: datetime, blocked_regions: dict[str | None, datetime]
    ) -> list[SubmitRequest]:
        now_ms = epoch_ms(now)
        with self.engine.begin() as conn:
            for region, until in blocked_regions.items():
                where = "region IS NULL" if region is None else "region = :region"
                conn.execute(
                    sa.text(
                        f"UPDATE outreach_contacts SET not_before_ms = :until, updated_ms = :now "
                        f"WHERE state IN ('planned', 'submitting') AND {where} "
                        f"AND not_before_ms < :until"
                    ),
                    {"until": epoch_ms(until), "now": now_ms, "region": region},
                )
            rows = conn.execute(
                sa.text(
                    "SELECT s.contact_id, s.seq, c.msisdn, s.short_message, s.esm_class, "
                    "s.data_coding FROM outreach_segments s JOIN outreach_contacts c "
                    "ON c.id = s.contact_id WHERE s.state = 'planned' "
                    "AND c.not_before_ms <= :now AND c.expires_ms > :now "
                    "ORDER BY s.contact_id, s.seq LIMIT :limit"
                ),
                {"now": now_ms, "limit": limit},
            ).all()
            if not rows:
                return []
            conn.execute(
                sa.text(
                    "UPDATE outreach_segments SET state = 'submitting', attempts = attempts + 1, "
                    "submitted_ms = :now, response_ms = NULL WHERE contact_id = :cid AND seq = :seq"
                ),
                [{"now": now_ms, "cid": r[0], "seq": r[1]} for r in rows],
            )
            frag, params = _in("c", sorted({r[0] for r in rows}))
            conn.execute(
                sa.text(
                    f"UPDATE outreach_contacts SET state = 'submitting', updated_ms = :now "
                    f"WHERE id IN {frag} AND state = 'planned'"
                ),
                {"now": now_ms, **params},
            )
        return [
            SubmitRequest((int(r[0]), int(r[1])), r[2].lstrip("+"), bytes(r[3]), r[4], r[5])
            for r in rows
        ]

    def record_results(
        self,
        results: Sequence[SubmitResult],
        classify_status: Callable[[int], str | None],
        classify_receipt: Callable[[str, str | None], str],
        now: datetime,
    ) -> list[ReceiptMatch]:
        now_ms = epoch_ms(now)
        ok: list[dict[str, Any]] = []
        unsent: list[dict[str, Any]] = []
        errors: list[SubmitResult] = []
        for r in results:
            key = {"cid": r.key[0], "seq": r.key[1]}
            if r.status == 0 and r.message_id:
                raw = r.message_id.strip("\x00 ")
                ok.append(
                    {**key, "mid": normalise_message_id(raw), "raw": raw, "at": epoch_ms(r.at)}
                )
            elif r.status < 0:
                unsent.append(key)
            else:
                errors.append(r)
        matches: list[ReceiptMatch] = []
        with self.engine.begin() as conn:
            if ok:
                conn.execute(
                    sa.text(
                        "UPDATE outreach_segments SET state = 'accepted', response_ms = :at, "
                        "command_status = 0, message_id = :mid, message_id_raw = :raw "
                        "WHERE contact_id = :cid AND seq = :seq AND state = 'submitting'"
                    ),
                    ok,
                )
                self._contacts_accepted(conn, {k["cid"] for k in ok}, now_ms)
            if unsent:
                conn.execute(
                    sa.text(
                        "UPDATE outreach_segments SET state = 'planned', attempts = attempts - 1 "
                        "WHERE contact_id = :cid AND seq = :seq AND state = 'submitting'"
                    ),
                    unsent,
                )
            for r in errors:
                self._submit_error(conn, r, classify_status(r.status), now_ms)
            if ok:
                matches = self._match_waiting(conn, ok, classify_receipt)
        return matches

    def _contacts_accepted(self, conn: Connection, cids: Iterable[int], now_ms: int) -> None:
        for chunk in _chunks(sorted(cids)):
            frag, params = _in("c", chunk)
            conn.execute(
                sa.text(
                    f"UPDATE outreach_contacts SET state = 'accepted', updated_ms = :now "
                    f"WHERE id IN {frag} AND state = 'submitting' AND NOT EXISTS (SELECT 1 FROM "
                    f"outreach_segments s WHERE s.contact_id = outreach_contacts.id "
                    f"AND s.state NOT IN ('accepted', 'delivered'))"
                ),
                {"now": now_ms, **params},
            )

    def _submit_error(
        self, conn: Connection, r: SubmitResult, cause: str | None, now_ms: int
    ) -> None:
        cid, seq = r.key
        code = f"0x{r.status:02X}"
        attempts = conn.execute(
            sa.text("SELECT attempts FROM outreach_segments WHERE contact_id = :c AND seq = :s"),
            {"c": cid, "s": seq},
        ).scalar()
        if cause is None and (attempts or 0) < self.max_attempts:
            conn.execute(
                sa.text(
                    "UPDATE outreach_segments SET state = 'planned', command_status = :st, "
                    "response_ms = :now WHERE contact_id = :c AND seq = :s "
                    "AND state = 'submitting'"
                ),
                {"st": r.status, "now": now_ms, "c": cid, "s": seq},
            )
            conn.execute(
                sa.text(
                    "UPDATE outreach_contacts SET not_before_ms = :nb, updated_ms = :now, "
                    "detail = :d WHERE id = :c AND not_before_ms < :nb"
                ),
                {
                    "nb": now_ms + self.retry_delay_ms,
                    "now": now_ms,
                    "c": cid,
                    "d": f"submit_sm answered {code}, retrying",
                },
            )
            return
        final_cause = cause or "retries_exhausted"
        conn.execute(
            sa.text(
                "UPDATE outreach_segments SET state = 'failed', command_status = :st, "
                "response_ms = :now WHERE contact_id = :c AND seq = :s"
            ),
            {"st": r.status, "now": now_ms, "c": cid, "s": seq},
        )
        conn.execute(
            sa.text(
                "UPDATE outreach_segments SET state = 'failed' "
                "WHERE contact_id = :c AND state = 'planned'"
            ),
            {"c": cid},
        )
        conn.execute(
            sa.text(
                "UPDATE outreach_contacts SET state = 'failed', cause = :cause, "
                "status_code = :code, detail = :d, updated_ms = :now "
                f"WHERE id = :c AND state IN {_IN_PROGRESS}"
            ),
            {
                "cause": final_cause,
                "code": code,
                "now": now_ms,
                "c": cid,
                "d": f"segment {seq}: submit_sm answered {code} ({final_cause})",
            },
        )

    # -- receipts ------------------------------------------------------------------------

    def record_receipts(
        self, receipts: Sequence[Receipt], classify_receipt: Callable[[str, str | None], str]
    ) -> list[ReceiptMatch]:
        out: list[ReceiptMatch] = []
        with self.engine.begin() as conn:
            for receipt in receipts:
                match = self._apply_receipt(conn, receipt, classify_receipt)
                if match is None:
                    self._park(conn, receipt)
                    out.append(ReceiptMatch(False, receipt.stat))
                else:
                    out.append(match)
        return out

    def _park(self, conn: Connection, receipt: Receipt) -> None:
        conn.execute(
            sa.text(
                "INSERT INTO outreach_receipts (message_id, message_id_raw, stat, err, "
                "source_addr, text, received_ms, state) VALUES (:mid, :raw, :stat, :err, :src, "
                ":text, :at, 'waiting')"
            ),
            {
                "mid": normalise_message_id(receipt.message_id)[:80],
                "raw": receipt.message_id[:80],
                "stat": (receipt.stat or "")[:16] or None,
                "err": (receipt.err or "")[:16] or None,
                "src": (receipt.source_addr or "")[:24] or None,
                "text": receipt.text,
                "at": epoch_ms(receipt.at),
            },
        )

    def _find_segment(self, conn: Connection, message_id: str) -> Any:
        """The segment a receipt id denotes (the newest answer with that id, in the order of
        ``answer_ids``), or None."""
        for candidate in self.answer_ids(message_id):
            row = conn.execute(
                sa.text(
                    "SELECT contact_id, seq, message_id, state, receipt_stat, response_ms "
                    "FROM outreach_segments WHERE message_id = :m "
                    "ORDER BY response_ms DESC LIMIT 1"
                ),
                {"m": candidate},
            ).first()
            if row is not None:
                return row
        return None

    def _apply_receipt(
        self,
        conn: Connection,
        receipt: Receipt,
        classify_receipt: Callable[[str, str | None], str],
    ) -> ReceiptMatch | None:
        seg = self._find_segment(conn, receipt.message_id)
        if seg is None:
            return None
        cid, seq, _, _, first_stat, response_ms = seg
        at_ms = epoch_ms(receipt.at)
        lag = None if response_ms is None else max(0.0, (at_ms - response_ms) / 1000)
        stat = (receipt.stat or "").upper()
        final = stat in DELIVERED_STATS or stat in FAILED_STATS
        if first_stat is not None:
            return ReceiptMatch(True, stat or None, lag, duplicate=True)
        if not final:
            return ReceiptMatch(True, stat or None, lag)  # ENROUTE/ACCEPTD: not an outcome
        delivered = stat in DELIVERED_STATS
        conn.execute(
            sa.text(
                "UPDATE outreach_segments SET state = :state, receipt_stat = :stat, "
                "receipt_err = :err, receipt_ms = :at WHERE contact_id = :c AND seq = :s"
            ),
            {
                "state": "delivered" if delivered else "failed",
                "stat": stat,
                "err": (receipt.err or "")[:16] or None,
                "at": at_ms,
                "c": cid,
                "s": seq,
            },
        )
        cause = None if delivered else classify_receipt(stat, receipt.err)
        conn.execute(
            sa.text(
                "UPDATE outreach_contacts SET state = :state, cause = :cause, status_code = :stat,"
                " detail = :d, updated_ms = :at "
                f"WHERE id = :c AND state IN {_IN_PROGRESS}"
            ),
            {
                "state": "delivered" if delivered else "failed",
                "cause": cause,
                "stat": stat,
                "d": f"receipt of segment {seq}: {stat} err:{receipt.err or '-'}",
                "at": at_ms,
                "c": cid,
            },
        )
        return ReceiptMatch(True, stat, lag)

    def _match_waiting(
        self,
        conn: Connection,
        accepted: Sequence[dict[str, Any]],
        classify_receipt: Callable[[str, str | None], str],
    ) -> list[ReceiptMatch]:
        """Receipts that arrived before their submit_sm_resp, matched now that it is stored."""
        waiting = conn.execute(
            sa.text(
                "SELECT id, message_id_raw, stat, err, source_addr, text, received_ms "
                "FROM outreach_receipts WHERE state = 'waiting'"
            )
        ).all()
        if not waiting:
            return []
        new_ids = {a["mid"] for a in accepted}
        out: list[ReceiptMatch] = []
        for row in waiting:
            if not new_ids.intersection(self.answer_ids(row[1])):
                continue
            receipt = Receipt(
                row[1], row[2], row[3], _from_ms(row[6]) or datetime.now(UTC), row[4], row[5]
            )
            match = self._apply_receipt(conn, receipt, classify_receipt)
            if match is not None:
                conn.execute(sa.text("DELETE FROM outreach_receipts WHERE id = :i"), {"i": row[0]})
                out.append(match)
        return out

    def settle_waiting_receipts(self, older_than: datetime) -> int:
        with self.engine.begin() as conn:
            n = conn.execute(
                sa.text(
                    "UPDATE outreach_receipts SET state = 'unmatched' "
                    "WHERE state = 'waiting' AND received_ms < :t"
                ),
                {"t": epoch_ms(older_than)},
            ).rowcount
        return int(n)

    def unmatched_receipts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Receipts that matched no segment, newest first (for inspection)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT message_id_raw, stat, err, source_addr, text, received_ms, state "
                    "FROM outreach_receipts ORDER BY received_ms DESC, id DESC LIMIT :n"
                ),
                {"n": limit},
            ).mappings()
            return [dict(r) for r in rows]

    # -- expiry and status ---------------------------------------------------------------

    def expire(self, now: datetime, reason: str | None = None) -> int:
        now_ms = epoch_ms(now)
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id, not_before_ms, expires_ms FROM outreach_contacts "
                    "WHERE state IN ('planned', 'submitting') "
                    "AND (expires_ms <= :now OR not_before_ms >= expires_ms) "
                    "AND EXISTS (SELECT 1 FROM outreach_segments s WHERE s.contact_id = "
                    "outreach_contacts.id AND s.state = 'planned') "
                    "AND NOT EXISTS (SELECT 1 FROM outreach_segments s WHERE s.contact_id = "
                    "outreach_contacts.id AND s.state = 'submitting')"
                ),
                {"now": now_ms},
            ).all()
            for cid, not_before_ms, expires_ms in rows:
                if not_before_ms >= expires_ms:
                    why = "quiet_hours"
                    detail = (
                        "next allowed send time "
                        f"{_from_ms(not_before_ms):%Y-%m-%d %H:%M} UTC is after the expiry"
                    )
                else:
                    why = "not_sent_in_time"
                    detail = reason or "not sent before the expiry"
                conn.execute(
                    sa.text(
                        "UPDATE outreach_segments SET state = 'expired' "
                        "WHERE contact_id = :c AND state = 'planned'"
                    ),
                    {"c": cid},
                )
                conn.execute(
                    sa.text(
                        "UPDATE outreach_contacts SET state = 'expired', cause = :why, "
                        "detail = :d, updated_ms = :now WHERE id = :c"
                    ),
                    {"why": why, "d": detail, "now": now_ms, "c": cid},
                )
        return len(rows)

    def pending(self, now: datetime) -> tuple[int, datetime | None]:
        now_ms = epoch_ms(now)
        with self.engine.connect() as conn:
            due, later = conn.execute(
                sa.text(
                    "SELECT SUM(CASE WHEN c.not_before_ms <= :now AND c.expires_ms > :now "
                    "THEN 1 ELSE 0 END), "
                    "MIN(CASE WHEN c.not_before_ms > :now THEN c.not_before_ms END) "
                    "FROM outreach_segments s JOIN outreach_contacts c ON c.id = s.contact_id "
                    "WHERE s.state = 'planned'"
                ),
                {"now": now_ms},
            ).one()
        return int(due or 0), _from_ms(later)

    def awaiting_outcome(self) -> int:
        with self.engine.connect() as conn:
            n = conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM outreach_contacts "
                    "WHERE state IN ('submitting', 'accepted')"
                )
            ).scalar()
        return int(n or 0)

    def status(self) -> OutboxStatus:
        with self.engine.connect() as conn:

            def counts(sql: str) -> dict[str, int]:
                return {str(k): int(v) for k, v in conn.execute(sa.text(sql)).all()}

            contacts = counts("SELECT state, COUNT(*) FROM outreach_contacts GROUP BY state")
            segments = counts("SELECT state, COUNT(*) FROM outreach_segments GROUP BY state")
            decisions = counts(
                "SELECT decision, COUNT(*) FROM outreach_decisions GROUP BY decision"
            )
            receipts = counts("SELECT state, COUNT(*) FROM outreach_receipts GROUP BY state")
            oldest = conn.execute(
                sa.text("SELECT MIN(created_ms) FROM outreach_contacts WHERE state = 'planned'")
            ).scalar()
        return OutboxStatus(
            contacts=contacts,
            segments=segments,
            decisions=decisions,
            unmatched_receipts=receipts.get("unmatched", 0),
            waiting_receipts=receipts.get("waiting", 0),
            oldest_planned=_from_ms(oldest),
        )

    def contacts_of(self, msisdn: str) -> list[dict[str, Any]]:
        """One subscriber's contacts, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT * FROM outreach_contacts WHERE msisdn = :m ORDER BY id DESC"),
                {"m": msisdn},
            ).mappings()
            return [dict(r) for r in rows]

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact with its state (tests and inspection; small outboxes only)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM outreach_contacts ORDER BY id")).mappings()
            return [dict(r) for r in rows]

    def segments(self) -> list[dict[str, Any]]:
        """Every segment with its state (tests and inspection; small outboxes only)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT * FROM outreach_segments ORDER BY contact_id, seq")
            ).mappings()
            return [dict(r) for r in rows]
