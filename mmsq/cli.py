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


# -- sim -----------------------------------------------------------------------------------

sim_app = typer.Typer(help="Run a network simulator standalone.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")


@sim_app.command("mmsc")
def sim_mmsc(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0 picks a free one)")] = 8007,
    vasp_url: Annotated[
        str | None, typer.Option(help="where to POST DeliveryReportReq (none: no reports)")
    ] = None,
    vaspid: Annotated[str | None, typer.Option(help="VASPID a SubmitReq must carry")] = None,
    vasid: Annotated[str | None, typer.Option(help="VASID a SubmitReq must carry")] = None,
    fault_4006_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of SubmitReq answered 4006")
    ] = 0.0,
    resp_delay: Annotated[
        float, typer.Option(min=0.0, help="seconds to wait before each answer")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="random seed for the faults")] = 0,
) -> None:
    """Run the MMSC simulator (MM7 over HTTP) until Ctrl-C; every MM is Retrieved."""
    import signal
    import threading

    from mmsq.simulators.mmsc import MmscConfig, MmscFaults, MmscSimulator
    from mmsq.simulators.mmsc_http import MmscServer
    from mmsq.simulators.outcomes import FixedOutcomes

    _settings()
    config = MmscConfig(
        vaspid=vaspid,
        vasid=vasid,
        vasp_url=vasp_url,
        seed=seed,
        faults=MmscFaults(unavailable_rate=fault_4006_rate, response_delay_s=resp_delay),
    )
    simulator = MmscSimulator(FixedOutcomes(), config)
    server = MmscServer(simulator, host=host, port=port)
    try:
        server.start()
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc}") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        server.start_report_loop()
        typer.echo(f"mmsc listening on {server.url}", err=False)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    stats = simulator.stats()
    typer.echo(
        f"mmsc stopped: {stats.submits_accepted} accepted, {stats.submits_refused} refused, "
        f"{stats.reports_delivered} reports delivered, {stats.reports_abandoned} abandoned"
    )


# -- daemon --------------------------------------------------------------------------------


@app.command("daemon")
def daemon() -> None:
    """Run the scheduler (inbox ingest, retention purge, ...) and the HTTP server until SIGTERM.

    HTTP: the MM7 delivery-report endpoint, /healthz, /readyz, /metrics. Exit code 0 after a
    clean shutdown, 1 when stopping had to be forced, 2 for a configuration, rules or schema
    error (systemd should not restart on 2: see docs/mmsq.service).
    """
    import os

    from mmsq.adapters.scheduler import ScheduleError
    from mmsq.adapters.sql_store import SchemaNotCurrentError
    from mmsq.bootstrap import build_daemon
    from mmsq.log import route_stdlib_logging

    settings = _settings()
    route_stdlib_logging("WARNING")
    try:
        parts = build_daemon(settings)
    except RulesError as exc:
        raise _fail("invalid rules: " + str(exc)) from None
    except (SchemaNotCurrentError, ScheduleError) as exc:
        raise _fail(str(exc)) from None
    if parts.unavailable_jobs:
        import structlog

        structlog.get_logger("mmsq.daemon").info(
            "daemon.jobs_not_available",
            jobs=parts.unavailable_jobs,
            reason="their services are not part of this version; schedules are ignored",
        )
    try:
        code = parts.run()
    except OSError as exc:
        raise _fail(str(exc)) from None
    if code:
        # Running jobs outlasted the grace: do not wait for their threads at interpreter exit.
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
