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
        from mmsq.complaint_cases import load_complaint_cases

        load_complaint_cases(target)
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


# -- agents and the API --------------------------------------------------------------------

agents_app = typer.Typer(help="API callers and their tokens.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")


@contextmanager
def _agent_service(settings: Settings) -> Iterator[Any]:
    from mmsq.adapters.sql_api import SqlApiStore
    from mmsq.agents import AgentService

    with _app_for(settings) as a:
        yield AgentService(SqlApiStore(a.store.engine), a.clock, cache_seconds=0)


@agents_app.command("add")
def agents_add(
    name: Annotated[str, typer.Argument(help="agent name, e.g. a staff login")],
    role: Annotated[str, typer.Option(help="agent | supervisor | admin | feed")] = "agent",
    as_json: JsonOpt = False,
) -> None:
    """Add an API caller and print its token (shown this once; only a hash is stored)."""
    from mmsq.agents import AgentExistsError, Role

    settings = _settings()
    try:
        chosen = Role(role)
    except ValueError:
        raise _fail(f"unknown role {role!r}: use agent, supervisor, admin or feed") from None
    with _agent_service(settings) as agents:
        try:
            agent, token = agents.add(name, chosen)
        except (AgentExistsError, ValueError) as exc:
            raise _fail(str(exc)) from None
    if as_json:
        _emit_json({"name": agent.name, "role": agent.role.value, "token": token})
        return
    err.print(f"added {agent.name} ({agent.role.value}); the token is shown once:", highlight=False)
    sys.stdout.write(token + "\n")


@agents_app.command("list")
def agents_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="also revoked agents")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List API callers (never their tokens)."""
    settings = _settings()
    with _agent_service(settings) as agents:
        rows = list(agents.list(include_revoked))
    if as_json:
        _emit_json(
            [
                {
                    "name": a.name,
                    "role": a.role.value,
                    "created_at": a.created_at.isoformat(),
                    "revoked_at": a.revoked_at.isoformat() if a.revoked_at else None,
                }
                for a in rows
            ]
        )
        return
    table = Table(show_header=True)
    for col in ("name", "role", "created", "revoked"):
        table.add_column(col)
    for a in rows:
        table.add_row(
            a.name,
            a.role.value,
            f"{a.created_at:%Y-%m-%d %H:%M}",
            f"{a.revoked_at:%Y-%m-%d %H:%M}" if a.revoked_at else "",
        )
    out.print(table)


@agents_app.command("revoke")
def agents_revoke(name: Annotated[str, typer.Argument(help="agent name")]) -> None:
    """Revoke an agent's token (within [api] auth_cache_seconds in a running API)."""
    from mmsq.agents import AgentNotFoundError

    settings = _settings()
    with _agent_service(settings) as agents:
        try:
            agent = agents.revoke(name)
        except AgentNotFoundError as exc:
            raise _fail(str(exc), 1) from None
    out.print(f"revoked {agent.name}")


@app.command("api")
def serve_api(
    host: Annotated[str | None, typer.Option(help="address (default: [api] host)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: [api] port)")] = None,
) -> None:
    """Serve the agent HTTP API (resend, diagnosis, audit) with uvicorn."""
    import uvicorn

    from mmsq.api import create_app
    from mmsq.bootstrap import build_api_services

    settings = _settings()
    with _app_for(settings) as a:
        try:
            services = build_api_services(settings, a.store.engine, clock=a.clock)
        except RulesError as exc:
            raise _fail("invalid rules: " + str(exc)) from None
        except OSError as exc:
            raise _fail(
                f"api.subscriptions_csv: cannot read {exc.filename}: {exc.strerror}"
            ) from None
        uvicorn.run(
            create_app(services),
            host=host or settings.api.host,
            port=settings.api.port if port is None else port,
            log_level=settings.log.level.lower(),
            access_log=False,  # the audit trail records every call, with MSISDNs masked
        )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
