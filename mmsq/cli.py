"""The ``mmsq`` command line: parse input, call a service, render output."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mmsq.log import configure_logging
from mmsq.rules_loader import RulesError, load_rules
from mmsq.settings import ConfigError, Settings, load_settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="mmsq",
    help="MMS delivery quality and subscriber recovery engine.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema and retention.", no_args_is_help=True)
rules_app = typer.Typer(help="Validate rule files.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Records that could not be read.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(rules_app, name="rules")
app.add_typer(quarantine_app, name="quarantine")

out = Console()
err = Console(stderr=True)

EXIT_USAGE = 2


class _State:
    config: Path | None = None


_state = _State()

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="config.toml (default: $MMSQ_CONFIG or ./config.toml)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]


@app.callback()
def _root(config: ConfigOpt = None) -> None:
    _state.config = config


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        settings = load_settings(_state.config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    configure_logging(settings.log.level, settings.log.format)
    return settings


@contextmanager
def _app_for(settings: Settings, check_schema: bool = True) -> Iterator[Any]:
    from mmsq.adapters.sql_store import SchemaNotCurrentError
    from mmsq.bootstrap import build_app

    try:
        application = build_app(settings, check_schema=check_schema)
    except RulesError as exc:
        raise _fail("invalid rules: " + str(exc)) from None
    except SchemaNotCurrentError as exc:
        raise _fail(str(exc)) from None
    try:
        yield application
    finally:
        application.close()


def _emit_json(doc: object) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")


# -- db ------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest revision."""
    settings = _settings()
    from mmsq.adapters.sql_store import SqlStore

    store = SqlStore.from_url(settings.database_url, settings.database.echo)
    try:
        before, after = store.upgrade()
    finally:
        store.close()
    out.print(f"database schema: {before or 'empty'} -> {after}")


@db_app.command("purge")
def db_purge(
    days: Annotated[int | None, typer.Option(help="keep this many days (default: config)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete raw delivery events older than the retention; aggregates are kept."""
    settings = _settings()
    keep = days if days is not None else settings.ingest.retention_days
    with _app_for(settings) as a:
        cutoff = a.clock.now() - timedelta(days=keep)
        n = a.store.purge_events(cutoff)
    if as_json:
        _emit_json({"deleted": n, "cutoff": cutoff.isoformat()})
    else:
        out.print(f"deleted {n} raw events submitted before {cutoff:%Y-%m-%d %H:%M} UTC")


# -- rules ---------------------------------------------------------------------------------


@rules_app.command("check")
def rules_check(
    directory: Annotated[Path | None, typer.Argument(help="operator rules directory")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate the shipped rules merged with an operator directory; list every problem."""
    target = directory
    if target is None:
        try:
            target = load_settings(_state.config).rules.dir
        except ConfigError as exc:
            raise _fail(str(exc)) from None
    try:
        rules = load_rules(target)
    except RulesError as exc:
        if as_json:
            _emit_json({"ok": False, "problems": [p.__dict__ for p in exc.problems]})
        else:
            for p in exc.problems:
                err.print(f"[red]✗[/] {p.file}: [bold]{p.key}[/]: {p.reason}", highlight=False)
        raise typer.Exit(1) from None
    counts = {name: len(ns.codes) for name, ns in rules.status_codes.namespaces.items()}
    if as_json:
        _emit_json(
            {"ok": True, "directory": str(target) if target else None, "status_codes": counts}
        )
    else:
        out.print(
            f"[green]✓[/] rules valid ({'shipped' if target is None else f'shipped + {target}'}): "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
        )


# -- ingest --------------------------------------------------------------------------------


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(
                sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            )
        else:
            files.append(p)
    return files


def _render_summary(summary: dict[str, Any]) -> None:
    table = Table(title="ingest summary", show_header=True)
    table.add_column("cause class")
    table.add_column("records", justify="right")
    for cause, n in sorted(summary["by_cause"].items(), key=lambda kv: -kv[1]):
        table.add_row(cause, f"{n:,}")
    out.print(table)
    out.print(
        f"records {summary['records']:,} · stored {summary['stored']:,} · "
        f"duplicates {summary['duplicates']:,} · quarantined {summary['quarantined']:,}"
    )
    if summary["unknown_codes"]:
        top = list(summary["unknown_codes"].items())[:10]
        out.print("unknown codes: " + ", ".join(f"{k} x{v}" for k, v in top))
    for src, why in summary["failed_sources"].items():
        err.print(f"[red]could not read[/] {src}: {why}", highlight=False)


def run_ingest(settings: Settings, paths: list[Path], as_json: bool) -> dict[str, Any]:
    from mmsq.adapters.cdr_csv import CdrFileReader

    files = _expand(paths)
    readers = [CdrFileReader(f, settings.ingest.chunk_bytes) for f in files]
    total = sum(r.total_bytes or 0 for r in readers)
    show = not as_json and err.is_terminal
    with (
        _app_for(settings) as a,
        Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not show,
        ) as progress,
    ):
        task = progress.add_task("ingest", total=total or None)
        done_before: dict[str, int] = {}

        def on_progress(source: str, bytes_read: int) -> None:
            progress.advance(task, bytes_read - done_before.get(source, 0))
            done_before[source] = bytes_read

        result: dict[str, Any] = a.ingest.ingest(readers, progress=on_progress).as_dict()
    return result


@app.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="CDR files (.csv, .csv.gz) or directories")],
    as_json: JsonOpt = False,
) -> None:
    """Ingest MMSC CDR exports: classify, store idempotently, quarantine bad rows."""
    settings = _settings()
    summary = run_ingest(settings, paths, as_json)
    if as_json:
        _emit_json(summary)
    else:
        _render_summary(summary)
    if summary["records"] == 0 and summary["quarantined"] == 0:
        raise typer.Exit(1)


# -- quarantine ----------------------------------------------------------------------------


@quarantine_app.command("export")
def quarantine_export(
    dest: Annotated[Path, typer.Argument(help="CSV file to write")],
    batch: Annotated[str | None, typer.Option(help="only this ingest batch id")] = None,
) -> None:
    """Export quarantined records (source, line, reason, raw) as CSV."""
    settings = _settings()
    with _app_for(settings) as a:
        rows = a.store.quarantine_rows(batch)
    with dest.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(
            fh, fieldnames=["batch_id", "source", "line", "reason", "raw"], extrasaction="ignore"
        )
        w.writeheader()
        w.writerows(rows)
    out.print(f"wrote {len(rows)} quarantined records to {dest}")


# -- demo ----------------------------------------------------------------------------------


@app.command("demo")
def demo(
    subscribers: Annotated[int, typer.Option(help="simulated subscribers")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    as_json: JsonOpt = False,
) -> None:
    """Generate a day of CDRs for a simulated province and ingest it (the quick-start job)."""
    from mmsq.adapters.sql_store import SqlStore
    from mmsq.simulators.cdr_generator import CdrSpec, write_cdr

    settings = _settings()
    store = SqlStore.from_url(settings.database_url)
    try:
        store.upgrade()
    finally:
        store.close()
    path = settings.data_dir / "inbox" / f"cdr-demo-{seed}.csv.gz"
    rows = write_cdr(path, CdrSpec(subscribers=subscribers, seed=seed))
    if not as_json:
        out.print(f"generated {rows:,} CDR rows for {subscribers:,} subscribers: {path}")
    summary = run_ingest(settings, [path], as_json)
    if as_json:
        _emit_json(summary)
    else:
        _render_summary(summary)


# -- scoring and recovery ------------------------------------------------------------------

subscriber_app = typer.Typer(
    help="One subscriber: deliveries, features, verdict.", no_args_is_help=True
)
suspensions_app = typer.Typer(
    help="The suspension list for the content platform.", no_args_is_help=True
)
blacklist_app = typer.Typer(help="The do-not-contact list.", no_args_is_help=True)
recovery_app = typer.Typer(help="Recovery funnel, due probes, clean-up list.", no_args_is_help=True)
app.add_typer(subscriber_app, name="subscriber")
app.add_typer(suspensions_app, name="suspensions")
app.add_typer(blacklist_app, name="blacklist")
app.add_typer(recovery_app, name="recovery")

AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="score as of this local date (YYYY-MM-DD; default today)"),
]


def _date(text: str | None, name: str) -> Any:
    from datetime import date

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


@contextmanager
def _scoring_for(settings: Settings) -> Iterator[Any]:
    from mmsq.bootstrap import build_scoring

    with _app_for(settings) as a:
        try:
            yield a, build_scoring(a)
        except RulesError as exc:
            raise _fail("invalid rules: " + str(exc)) from None


@app.command("score")
def score(
    as_json: JsonOpt = False,
    export: Annotated[
        Path | None, typer.Option("--export", help="CSV: msisdn,verdict,score,state,reasons")
    ] = None,
    as_of: AsOfOpt = None,
) -> None:
    """Score every subscriber and move the recovery state machine; print the counts."""
    from mmsq.scoring_run import EXPORT_COLUMNS

    settings = _settings()
    day = _date(as_of, "--as-of")
    with _scoring_for(settings) as (_a, s):
        result = s.scoring.run(day)
    if export is not None:
        result.frame[list(EXPORT_COLUMNS)].to_csv(export, index=False)
    doc = result.as_dict()
    if export is not None:
        doc["export"] = str(export)
    if as_json:
        _emit_json(doc)
        return
    table = Table(title=f"verdicts as of {doc['as_of']} ({doc['window'][0]} to {doc['window'][1]})")
    table.add_column("verdict")
    table.add_column("subscribers", justify="right")
    for k, v in sorted(doc["by_verdict"].items(), key=lambda kv: -kv[1]):
        table.add_row(k, f"{v:,}")
    out.print(table)
    moves = Table(title="state transitions")
    moves.add_column("transition")
    moves.add_column("subscribers", justify="right")
    for k, v in sorted(doc["by_transition"].items(), key=lambda kv: -kv[1]):
        moves.add_row(k, f"{v:,}")
    out.print(moves)
    if export is not None:
        out.print(f"wrote {doc['subscribers']:,} rows to {export}")


def _normalised(settings: Settings, msisdn: str) -> str:
    from mmsq.msisdn import MsisdnNormaliser

    normal = MsisdnNormaliser(settings.ingest.default_region).normalise(msisdn)
    if normal is None:
        raise _fail(f"not a valid MSISDN: {msisdn!r}")
    return normal


@subscriber_app.command("show")
def subscriber_show(
    msisdn: Annotated[str, typer.Argument(help="national, E.164 or with separators")],
    as_json: JsonOpt = False,
    as_of: AsOfOpt = None,
    events: Annotated[int, typer.Option(help="recent deliveries to show")] = 10,
) -> None:
    """Recent deliveries with causes, features, verdict, reasons and state history."""
    from datetime import UTC, datetime

    import pandas as pd

    settings = _settings()
    normal = _normalised(settings, msisdn)
    day = _date(as_of, "--as-of")
    with _scoring_for(settings) as (a, s):
        features, scored = s.scoring.assess(day, [normal])
        recent = a.store.recent_events(normal, events)
        history = s.recovery.history(normal)
        state = s.recovery.state_of(normal)
    f = features.iloc[0].to_dict()
    v = scored.iloc[0].to_dict()
    for e in recent:
        for k in ("submitted_ts", "done_ts"):
            e[k.removesuffix("_ts") + "_at"] = (
                datetime.fromtimestamp(e.pop(k), tz=UTC).isoformat() if e.get(k) else None
            )
    doc = {
        "msisdn": normal,
        "verdict": v["verdict"],
        "score": float(v["score"]),
        "reasons": v["reasons"],
        "state": (state or {}).get("state", "active"),
        "features": {k: (None if pd.isna(x) else x) for k, x in f.items()},
        "recent_deliveries": recent,
        "history": history,
    }
    if as_json:
        _emit_json(doc)
        return
    out.print(
        f"[bold]{normal}[/]  verdict [bold]{doc['verdict']}[/] (score {doc['score']:.2f})"
        f"  state [bold]{doc['state']}[/]",
        highlight=False,
    )
    out.print(f"reasons: {doc['reasons']}", highlight=False)
    t = Table(title="recent deliveries")
    for c in ("submitted_at", "edition", "status_source", "status_code", "cause", "notify_ok"):
        t.add_column(c)
    for e in recent:
        t.add_row(
            *(
                str(e.get(c) if e.get(c) is not None else "")
                for c in (
                    "submitted_at",
                    "edition",
                    "status_source",
                    "status_code",
                    "cause",
                    "notify_ok",
                )
            )
        )
    out.print(t)
    keys = (
        "attempts",
        "final",
        "delivered",
        "final_days",
        "failed_run",
        "last_delivery_day",
        "run_start_day",
        "days_notified_not_fetched",
        "days_capacity",
        "days_unreachable",
        "days_incapable",
        "days_invalid",
        "days_policy",
        "days_other",
        "tac",
        "brand",
        "model",
        "subscription_status",
        "blacklisted",
    )
    out.print(
        "features: " + ", ".join(f"{k}={doc['features'].get(k)}" for k in keys), highlight=False
    )
    h = Table(title="state history")
    for c in ("at", "from_state", "to_state", "event", "cause", "evidence"):
        h.add_column(c)
    for r in history:
        h.add_row(
            str(r["at"]),
            r["from_state"],
            r["to_state"],
            r["event"],
            r["cause"],
            r["evidence"][:120],
        )
    out.print(h)


@suspensions_app.command("export")
def suspensions_export(dest: Annotated[Path, typer.Argument(help="CSV file to write")]) -> None:
    """Write the suspended subscribers (msisdn,reason,since) for the content platform."""
    settings = _settings()
    with _scoring_for(settings) as (_a, s):
        frame = s.recovery.suspensions()
    frame.to_csv(dest, index=False, columns=["msisdn", "reason", "since"])
    out.print(f"wrote {len(frame):,} suspended subscribers to {dest}")


@blacklist_app.command("import")
def blacklist_import(
    source: Annotated[Path, typer.Argument(help="CSV with header msisdn,reason,until")],
    as_json: JsonOpt = False,
) -> None:
    """Add or replace do-not-contact entries from a CSV; bad rows are listed, not fatal."""
    settings = _settings()
    with _scoring_for(settings) as (_a, s):
        try:
            result = s.blacklist.import_file(source)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise _fail(f"cannot read {source}: {exc}", 1) from None
    rejected = [{"line": r.line, "reason": r.reason} for r in result.rejected]
    if as_json:
        _emit_json({"stored": len(result.entries), "rejected": rejected})
    else:
        out.print(f"stored {len(result.entries):,} do-not-contact entries from {source}")
        for r in result.rejected:
            err.print(f"[yellow]line {r.line}[/]: {r.reason}", highlight=False)
    if result.entries.empty and result.rejected:
        raise typer.Exit(1)


@blacklist_app.command("add")
def blacklist_add(
    msisdn: Annotated[str, typer.Argument()],
    reason: Annotated[
        str, typer.Option(help="complaint, staff, test, opted_out, ...")
    ] = "unspecified",
    until: Annotated[str | None, typer.Option(help="last day (YYYY-MM-DD); default no end")] = None,
) -> None:
    """Add or replace one do-not-contact entry."""
    settings = _settings()
    day = _date(until, "--until")
    with _scoring_for(settings) as (_a, s):
        try:
            normal = s.blacklist.add(msisdn, reason, day)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    out.print(f"do-not-contact: {normal} ({reason})", highlight=False)


@blacklist_app.command("remove")
def blacklist_remove(msisdn: Annotated[str, typer.Argument()]) -> None:
    """Lift one do-not-contact entry."""
    settings = _settings()
    with _scoring_for(settings) as (_a, s):
        removed = s.blacklist.remove(msisdn)
    out.print("removed" if removed else "not on the list")
    if not removed:
        raise typer.Exit(1)


@recovery_app.command("funnel")
def recovery_funnel(
    first: Annotated[str, typer.Option("--from", help="first local day (YYYY-MM-DD)")],
    last: Annotated[
        str | None, typer.Option("--to", help="last local day (default: today)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Subscribers flagged, remedied, recovered, suspended, probed, resumed in a period."""
    settings = _settings()
    with _scoring_for(settings) as (_a, s):
        start = _date(first, "--from")
        end = _date(last, "--to") or s.recovery.today()
        counts = s.recovery.funnel(start, end)
    if as_json:
        _emit_json({"from": start.isoformat(), "to": end.isoformat(), **counts})
    else:
        out.print(
            f"recovery funnel {start} to {end}: "
            + ", ".join(f"{k} {v:,}" for k, v in counts.items())
        )


@recovery_app.command("probes")
def recovery_probes(as_json: JsonOpt = False) -> None:
    """Suspended subscribers whose next probe is due (do-not-contact ones excluded)."""
    settings = _settings()
    with _scoring_for(settings) as (_a, s):
        due = s.recovery.due_probes()
    rows = due.astype({"due_day": str}).to_dict(orient="records")
    if as_json:
        _emit_json({"due": rows})
    else:
        out.print(f"{len(rows):,} probes due")


@recovery_app.command("cleanup-export")
def recovery_cleanup_export(
    dest: Annotated[Path, typer.Argument(help="CSV file to write")],
) -> None:
    """Write the subscription clean-up list (invalid or cancelled numbers): msisdn,reason,since."""
    settings = _settings()
    with _scoring_for(settings) as (_a, s):
        frame = s.recovery.cleanup_list()
    frame.to_csv(dest, index=False)
    out.print(f"wrote {len(frame):,} numbers to {dest}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
