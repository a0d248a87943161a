"""The ``mmsq`` command line: parse input, call a service, render output."""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mmsq.log import configure_logging
from mmsq.rules_loader import RulesError, load_rules
from mmsq.settings import CONFIG_ENV, ConfigError, Settings, load_settings

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
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        settings = load_settings(_state.config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    configure_logging(settings.log.level, settings.log.format)
    return settings


@contextmanager
def _built(build: Callable[[], Any]) -> Iterator[Any]:
    """What ``build`` makes (anything with ``close``), closed on exit; a rules or schema error
    ends the command with its message and exit code 2."""
    from mmsq.adapters.sql_store import SchemaNotCurrentError

    try:
        built = build()
    except RulesError as exc:
        raise _fail("invalid rules: " + str(exc)) from None
    except SchemaNotCurrentError as exc:
        raise _fail(str(exc)) from None
    try:
        yield built
    finally:
        built.close()


def _app_for(settings: Settings, check_schema: bool = True) -> AbstractContextManager[Any]:
    from mmsq.bootstrap import build_app

    return _built(lambda: build_app(settings, check_schema=check_schema))


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
    from mmsq.devices import load_devices
    from mmsq.scoring_rules import load_scoring_rules

    # Every rules file is checked, so one run lists every problem.
    problems = []
    try:
        rules = load_rules(target)
        from mmsq.complaint_cases import load_complaint_cases

        load_complaint_cases(target)
    except RulesError as exc:
        problems += exc.problems
    try:
        scoring_rules = load_scoring_rules(target)
    except RulesError as exc:
        problems += exc.problems
    try:
        devices = load_devices(target)
    except RulesError as exc:
        problems += exc.problems
    if problems:
        # A missing directory is reported by each loader: once is enough.
        problems = list({(p.file, p.key, p.reason): p for p in problems}.values())
        if as_json:
            _emit_json({"ok": False, "problems": [p.__dict__ for p in problems]})
        else:
            for p in problems:
                err.print(f"[red]✗[/] {p.file}: [bold]{p.key}[/]: {p.reason}", highlight=False)
        raise typer.Exit(1) from None
    counts = {name: len(ns.codes) for name, ns in rules.status_codes.namespaces.items()}
    scoring_doc = {"version": scoring_rules.version, "verdicts": len(scoring_rules.verdicts)}
    if as_json:
        _emit_json(
            {
                "ok": True,
                "directory": str(target) if target else None,
                "status_codes": counts,
                "scoring": scoring_doc,
                "devices": len(devices),
            }
        )
    else:
        out.print(
            f"[green]✓[/] rules valid ({'shipped' if target is None else f'shipped + {target}'}): "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            + f"; scoring {scoring_doc['version']} ({scoring_doc['verdicts']} verdicts)"
            + f"; devices {len(devices)}"
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


def _without_numpy_huge_pages() -> None:
    """numpy asks the kernel for transparent huge pages for arrays of 4 MiB and more; an
    ingest makes and frees hundreds of such arrays, and each first touch of a huge page
    zeroes 2 MiB. Without them a province-day spends about a second less in the kernel
    (docs/performance.md). The setter is numpy's (its NUMPY_MADVISE_HUGEPAGE at run time);
    where a numpy lacks it, nothing changes."""
    from numpy._core import multiarray

    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is not None:
        setter(False)


def _arrow_on_jemalloc() -> None:
    """Arrow's buffers from its jemalloc pool instead of the wheel's default (mimalloc): an
    ingest allocates and frees Arrow columns of tens of MiB chunk after chunk, and jemalloc
    reuses the freed pages where mimalloc's come back fresh from the kernel, to be zeroed
    again. A province-day: about 1 s less CPU (mostly system time) and about 80 MiB less
    peak RSS (docs/performance.md). Where pyarrow lacks jemalloc, nothing changes."""
    import pyarrow as pa

    with contextlib.suppress(NotImplementedError):
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def run_ingest(settings: Settings, paths: list[Path], as_json: bool) -> dict[str, Any]:
    from mmsq.adapters.cdr_csv import CdrFileReader

    _without_numpy_huge_pages()
    _arrow_on_jemalloc()

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

        _out_of_the_collectors_sight()
        result: dict[str, Any] = a.ingest.ingest(readers, progress=on_progress).as_dict()
    return result


def _out_of_the_collectors_sight() -> None:
    """Every object made so far moved out of the cyclic garbage collector's sight
    (``gc.freeze``): ``mmsq ingest`` is the whole process, so they live until it ends.

    Before the ingest that is about 150,000 objects (modules, the app, the rules). The
    ingest makes tens of thousands of small objects (quarantined rows, statement
    parameters), enough to set off full collections, each of which walked all of them with
    the GIL held, stalling the pipeline's threads (about 0.2 s of a province-day). After
    it, Python's collections at exit walked everything again: the summary came 0.3 to 0.6 s
    before the end of the process, now about 0.1 s (docs/performance.md). Garbage made in
    between is collected as before."""
    gc.freeze()


@app.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="CDR files (.csv, .csv.gz) or directories")],
    as_json: JsonOpt = False,
) -> None:
    """Ingest MMSC CDR exports: classify, store idempotently, quarantine bad rows."""
    settings = _settings()
    summary = run_ingest(settings, paths, as_json)
    _out_of_the_collectors_sight()
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
    subscribers: Annotated[int, typer.Option(min=100, help="simulated subscribers")] = 8_000,
    days: Annotated[int, typer.Option(min=1, help="simulated days")] = 18,
    observe_days: Annotated[
        int, typer.Option(min=0, help="first days with mmsq only observing")
    ] = 4,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same run)")] = 7,
    as_json: JsonOpt = False,
) -> None:
    """Simulate a province's newspaper for some days on 127.0.0.1, with mmsq watching, then acting.

    The MMSC, SMSC and handset population run as simulators; each night's CDR export is
    ingested. Everything lives under DATA_DIR/demo (recreated on each run).
    """
    from mmsq.demo import DayFigures, DemoConfig, run_demo

    settings = _settings()
    config = DemoConfig(
        subscribers=subscribers,
        days=days,
        observe_days=min(observe_days, days),
        seed=seed,
        workdir=settings.data_dir / "demo",
        timezone=settings.ingest.timezone,
        default_region=settings.ingest.default_region,
        rules_dir=settings.rules.dir,
        settings=settings,
    )
    table = Table(title=f"mmsq demo: {subscribers:,} subscribers, {days} days (seed {seed})")
    numeric = {"sent", "delivered", "success", "flag/susp"}
    for col in ("day", "phase", "sent", "delivered", "success", "flag/susp"):
        table.add_column(col, justify="right" if col in numeric else "left")
    table.add_column("top causes of failure")
    show = not as_json and err.is_terminal
    with Progress(
        TextColumn("[bold]demo"),
        BarColumn(),
        TextColumn("day {task.completed:.0f}/{task.total:.0f}"),
        TimeRemainingColumn(),
        console=err,
        disable=not show,
    ) as progress:
        task = progress.add_task("days", total=days)

        def on_day(d: DayFigures) -> None:
            progress.advance(task)
            failures = Counter(
                {k: v for k, v in d.by_cause.items() if k not in {"delivered", "pending"}}
            )
            mix = ", ".join(f"{k} {v / max(d.final, 1):.1%}" for k, v in failures.most_common(3))
            rate = "n/a" if d.success_rate is None else f"{d.success_rate:.1%}"
            # newly flagged / newly suspended by the day's scoring run (act phase)
            acted = f"{d.actions['flagged']:,}/{d.actions['suspended']:,}" if d.actions else ""
            table.add_row(
                d.day.isoformat(), d.phase, f"{d.sent:,}", f"{d.delivered:,}", rate, acted, mix
            )
            if not as_json and not show:
                out.print(f"{d.day} {d.phase:7} sent {d.sent:,} delivered {d.delivered:,} ({rate})")

        result = run_demo(config, on_day)
    if as_json:
        _emit_json(result.as_dict())
        return
    out.print(table)
    before, after = result.phase_rate("observe"), result.phase_rate("act")
    out.print(
        "success rate while observing: "
        + ("n/a" if before is None else f"{before:.1%}")
        + "; with mmsq acting: "
        + ("n/a" if after is None else f"{after:.1%}")
    )
    out.print(f"capabilities on after day {observe_days}: {', '.join(result.capabilities)}")
    if result.days and result.days[-1].actions:
        last = result.days[-1]
        out.print(
            f"verdicts on {last.day}: "
            + ", ".join(f"{k} {v:,}" for k, v in last.verdicts.items())
            + f"; under suspension (not sent to): {last.actions['under_suspension']:,}"
        )
    out.print(f"complaints in the simulated population: {result.complaints}")
    for group, (size, healthy) in result.uplift.items():
        rate = f"{healthy / size:.1%}" if size else "n/a"
        out.print(f"flagged and {group}: {size:,} subscribers, {rate} healthy at the end")
    f = result.funnel
    if f:
        out.print(
            f"recovery funnel (act phase): flagged {f['flagged']:,} -> remedied "
            f"{f['remedied']:,} -> recovered {f['recovered']:,} (after a remedy "
            f"{f['recovered_after_remedy']:,}, by themselves {f['recovered_self']:,}); "
            f"suspended {f['suspended']:,} -> probed {f['probed']:,} -> resumed "
            f"{f['resumed']:,}; to the clean-up list {f['cleanup']:,}"
        )
    h = result.handsets
    if h:
        out.print(
            f"handsets: {h['help_sms_received']:,} help SMS received, "
            f"{h['fixed_by_help_sms']:,} fixed by their user; {h['ota_pushes_received']:,} OTA "
            f"pushes received, {h['ota_pushes_applied']:,} applied, {h['fixed_by_ota']:,} fixed"
        )
    out.print(
        "simulators were at " + ", ".join(f"{name} {url}" for name, url in result.endpoints.items())
    )


# -- sim -----------------------------------------------------------------------------------

sim_app = typer.Typer(help="Run a network simulator standalone.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")


def _stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM: a simulator's main loop waits on it, so no
    KeyboardInterrupt is raised into a lock or a join while it stops."""
    import signal

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


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
    stop = _stop_on_signals()
    try:
        server.start_report_loop()
        typer.echo(f"mmsc listening on {server.url}", err=False)
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
    stats = simulator.stats()
    typer.echo(
        f"mmsc stopped: {stats.submits_accepted} accepted, {stats.submits_refused} refused, "
        f"{stats.reports_delivered} reports delivered, {stats.reports_abandoned} abandoned"
    )


# -- ota -----------------------------------------------------------------------------------

ota_app = typer.Typer(help="OTA MMS settings (OMA Client Provisioning).", no_args_is_help=True)
app.add_typer(ota_app, name="ota")


def _ota_profiles(directory: Path | None) -> Any:
    from mmsq.ota_profiles import load_ota_profiles

    try:
        return load_ota_profiles(directory)
    except RulesError as exc:
        raise _fail("invalid OTA profiles: " + str(exc)) from None


@ota_app.command("profiles")
def ota_profiles(
    directory: Annotated[Path | None, typer.Argument(help="operator rules directory")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate and list the OTA settings profiles (shipped + operator directory)."""
    target = directory if directory is not None else _settings().rules.dir
    profiles = _ota_profiles(target)
    if as_json:
        _emit_json(
            {
                "default": profiles.default,
                "profiles": {k: v.model_dump() for k, v in profiles.profiles.items()},
            }
        )
        return
    for key, p in sorted(profiles.profiles.items()):
        mark = "*" if key == profiles.default else " "
        line = (
            f"{mark} {key}: APN {p.apn}, proxy {p.proxy_address}:{p.proxy_port}, MMSC {p.mmsc_url}"
        )
        out.print(
            f"{line}, {p.security} (without IMSI: {p.without_imsi})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@ota_app.command("preview")
def ota_preview(
    msisdn: Annotated[str, typer.Argument(help="subscriber number (national or E.164)")],
    profile: Annotated[str | None, typer.Option(help="profile name (default: rules)")] = None,
    imsi: Annotated[str | None, typer.Option(help="subscriber IMSI, for NETWPIN")] = None,
    pin: Annotated[str | None, typer.Option(help="PIN for USERPIN (default: random)")] = None,
    security: Annotated[
        str | None, typer.Option(help="NETWPIN, USERPIN or USERNETWPIN (default: profile)")
    ] = None,
    reference: Annotated[int, typer.Option(help="SMS concatenation reference 0-255")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Show the OTA MMS settings push for one subscriber: XML, security, MAC, SMS segments."""
    from mmsq.adapters.wbxml_tool import Wbxml2Xml, WbxmlDecodeError
    from mmsq.msisdn import MsisdnNormaliser, mask_msisdn
    from mmsq.ota_message import prepare_ota_message
    from mmsq.ota_preview import OtaPreview, parse_security

    settings = _settings()
    number = MsisdnNormaliser(settings.ingest.default_region).normalise(msisdn)
    if number is None:
        raise _fail(f"not a valid MSISDN: {mask_msisdn(msisdn)}")
    profiles = _ota_profiles(settings.rules.dir)
    try:
        method = parse_security(security)
        message = prepare_ota_message(
            profiles.get(profile), imsi=imsi, pin=pin, security=method, reference=reference
        )
    except (KeyError, ValueError) as exc:
        raise _fail(str(exc).strip("'\"")) from None
    decoded, note = None, "wbxml2xml not installed (Debian package libwbxml2-utils)"
    if (decoder := Wbxml2Xml.find()) is not None:
        try:
            decoded, note = decoder.decode(message.wbxml), "decoded by wbxml2xml"
        except WbxmlDecodeError as exc:
            note = str(exc)
    preview = OtaPreview(mask_msisdn(number), profile or profiles.default, message, decoded, note)
    if as_json:
        _emit_json(preview.as_dict())
    else:
        sys.stdout.write(preview.as_text())


@sim_app.command("smsc")
def sim_smsc(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port)")] = 2775,
    system_id: Annotated[str, typer.Option(help="the ESME account's system_id")] = "mmsq",
    password: Annotated[str, typer.Option(help="the ESME account's password")] = "secret",  # noqa: S107 - a simulator's demo account
    throughput: Annotated[
        float | None, typer.Option(help="submit_sm per second before ESME_RTHROTTLED")
    ] = None,
    msgqful_rate: Annotated[float, typer.Option(help="share answered ESME_RMSGQFUL")] = 0.0,
    drop_rate: Annotated[float, typer.Option(help="share of submits that drop the link")] = 0.0,
    resp_delay: Annotated[float, typer.Option(help="seconds before each submit_sm_resp")] = 0.0,
    id_format: Annotated[str, typer.Option(help="message ids: dec or hex")] = "dec",
    seed: Annotated[int, typer.Option(help="seed of the fault generators")] = 0,
    stats_every: Annotated[float, typer.Option(help="seconds between stats lines")] = 10.0,
) -> None:
    """Run the SMSC simulator (SMPP 3.4) until Ctrl-C; every SMS is delivered."""

    import structlog
    from pydantic import ValidationError

    from mmsq.simulators.smsc import SmscSimulator
    from mmsq.simulators.smsc_config import SmscConfig

    configure_logging("INFO")
    options = {
        "host": host,
        "port": port,
        "system_id": system_id,
        "password": password,
        "throughput": throughput,
        "msgqful_rate": msgqful_rate,
        "drop_rate": drop_rate,
        "resp_delay_s": resp_delay,
        "id_format": id_format,
        "seed": seed,
    }
    try:
        config = SmscConfig.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).removesuffix("_s").replace("_", "-")
        raise _fail(f"--{name}: {first['msg']}") from None
    log = structlog.get_logger("mmsq.sim.smsc")
    try:
        smsc = SmscSimulator(config).start()
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = _stop_on_signals()
    try:
        while not stop.wait(stats_every):
            s = smsc.stats()
            log.info(
                "smsc stats",
                binds=s.binds,
                submits=s.submits,
                throttled=s.throttled,
                msgqful=s.msgqful,
                dropped=s.dropped_connections,
                receipts_sent=s.receipts_sent,
                receipts_pending=s.receipts_pending,
                texts=s.texts,
                pushes=s.pushes,
                decode_failures=s.decode_failures,
            )
    finally:
        smsc.stop()


# -- report --------------------------------------------------------------------------------


def _write_report_file(path: Path, message: Any, rendered: Any, config: Any, now: datetime) -> None:
    """``.eml``: the whole email; anything else: the HTML with its images embedded."""
    from mmsq.report_render import build_message

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".eml":
        if message is None:
            message = build_message(
                rendered, sender=config.sender, recipients=config.recipients, now=now
            )
        path.write_bytes(message.as_bytes())
    else:
        path.write_text(rendered.browser_html(), encoding="utf-8")


@app.command("report")
def report(
    week: Annotated[
        str | None,
        typer.Option(help="ISO week, e.g. 2026-W47 (default: the last complete week)"),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="write it to a file: .html (images embedded) or .eml"),
    ] = None,
    send: Annotated[bool, typer.Option("--send", help="email it to report.recipients")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The weekly success-rate report: print it, write it to a file, or email it.

    A send that still fails after the retries is kept as an .eml file in the spool directory
    and the exit code is 1.
    """
    from mmsq.adapters.smtp_mailer import SmtpConfig, SmtpMailer
    from mmsq.bootstrap import report_source
    from mmsq.report import ReportConfig, make_report, send_weekly_report
    from mmsq.report_data import ReportWeek
    from mmsq.report_devices import load_device_table
    from mmsq.report_render import report_document

    settings = _settings()
    config = ReportConfig.from_settings(settings)
    try:
        target = ReportWeek.parse(week, config.week_start) if week else None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if send and not config.recipients:
        raise _fail("report.recipients is empty: nobody to send the report to")
    devices = load_device_table(settings.report.devices_file, settings.rules.dir)
    run = None
    with _app_for(settings) as a:
        try:
            source = report_source(a)
        except RulesError as exc:
            raise _fail("invalid rules: " + str(exc)) from None
        if send:
            mailer = SmtpMailer(SmtpConfig.from_settings(settings.report))
            run = send_weekly_report(
                source, mailer, config, devices=devices, clock=a.clock, week=target
            )
            rendered = run.rendered
        else:
            _, rendered = make_report(source, config, devices=devices, clock=a.clock, week=target)
        now = a.clock.now()
    if out_path is not None:
        _write_report_file(out_path, run.message if run else None, rendered, config, now)
    if as_json:
        doc = report_document(rendered.report)
        if run is not None:
            doc["sent"] = run.sent
            doc["spooled"] = str(run.spooled) if run.spooled else None
        _emit_json(doc)
    elif out_path is None and run is None:
        sys.stdout.write(rendered.text)
    elif out_path is not None:
        out.print(f"wrote the report for {rendered.report.week.label} to {out_path}")
    if run is not None and not run.sent:
        err.print(
            f"[bold red]error:[/] the report for {rendered.report.week.label} was not sent "
            f"after {run.attempts} attempt(s): {run.error}; kept in {run.spooled}",
            highlight=False,
        )
        raise typer.Exit(1)
    if run is not None and not as_json:
        out.print(
            f"sent the report for {rendered.report.week.label} to "
            f"{len(config.recipients)} recipient(s)"
        )


# -- daemon --------------------------------------------------------------------------------


@app.command("daemon")
def daemon() -> None:
    """Run the scheduler (inbox ingest, retention purge, ...) and the HTTP server until SIGTERM.

    HTTP: the MM7 delivery-report endpoint, /healthz, /readyz, /metrics. Exit code 0 after a
    clean shutdown, 1 when stopping had to be forced, 2 for a configuration, rules or schema
    error (systemd should not restart on 2: see docs/mmsq.service).
    """

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


# -- subscriptions and reconciliation ------------------------------------------------------

subscriptions_app = typer.Typer(
    help="Subscription snapshots from BOSS, MISC and the content platform.", no_args_is_help=True
)
app.add_typer(subscriptions_app, name="subscriptions")

AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="date YYYY-MM-DD (default: today, operator time)")
]


def _as_of(value: str | None) -> Any:
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"--as-of: not a date (YYYY-MM-DD): {value!r}") from None


@subscriptions_app.command("import")
def subscriptions_import(
    source: Annotated[str, typer.Option("--source", help="boss, misc or platform")],
    files: Annotated[list[Path], typer.Argument(help="snapshot CSV files (.csv, .csv.gz)")],
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import one source's subscription snapshot; bad rows are quarantined, never fatal."""
    from mmsq.adapters.subscription_csv import SnapshotFileReader
    from mmsq.bootstrap import build_subscriptions
    from mmsq.subscriptions import Source

    try:
        src = Source(source.strip().lower())
    except ValueError:
        raise _fail(f"--source must be boss, misc or platform, not {source!r}") from None
    day = _as_of(as_of)
    settings = _settings()
    readers = [SnapshotFileReader(f, settings.ingest.chunk_bytes) for f in _expand(files)]
    total = sum(r.total_bytes or 0 for r in readers)
    with (
        _app_for(settings) as a,
        Progress(
            TextColumn(f"[bold]import {src.value}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=as_json or not err.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("import", total=total or None)
        done_before: dict[str, int] = {}

        def on_progress(name: str, bytes_read: int) -> None:
            progress.advance(task, bytes_read - done_before.get(name, 0))
            done_before[name] = bytes_read

        services = build_subscriptions(a)
        summary = services.imports.import_snapshot(src, readers, day, on_progress).as_dict()
    if as_json:
        _emit_json(summary)
    else:
        table = Table(title=f"{src.value} snapshot of {summary['as_of']}", show_header=True)
        table.add_column("status")
        table.add_column("subscriptions", justify="right")
        for status, n in summary["by_status"].items():
            table.add_row(status, f"{n:,}")
        out.print(table)
        out.print(
            f"records {summary['records']:,} · stored {summary['stored']:,} · "
            f"duplicates {summary['duplicates']:,} · quarantined {summary['quarantined']:,}"
        )
        for name, why in summary["failed_sources"].items():
            err.print(f"[red]could not read[/] {name}: {why}", highlight=False)
    if summary["records"] == 0 and summary["quarantined"] == 0:
        raise typer.Exit(1)


@app.command("reconcile")
def reconcile(
    as_json: JsonOpt = False,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="write one CSV per difference class and the repairs here"),
    ] = None,
    as_of: AsOfOpt = None,
) -> None:
    """Compare BOSS, MISC and the send list; classify, export and (if enabled) repair."""
    from mmsq.adapters.reconcile_files import CsvDifferenceExport
    from mmsq.bootstrap import build_subscriptions

    day = _as_of(as_of)
    settings = _settings()
    target = export or settings.reconcile.export_dir
    with _app_for(settings) as a:
        services = build_subscriptions(a)
        report = services.reconcile.reconcile(
            day, CsvDifferenceExport(target) if target else None
        ).as_dict()
    if as_json:
        _emit_json(report)
        return
    for name, f in report["sources"].items():
        if f["stale"]:
            err.print(
                f"[yellow]stale:[/] {name} (newest snapshot {f['latest_snapshot'] or 'none'}); "
                "comparisons with it skipped",
                highlight=False,
            )
    table = Table(title=f"reconciliation of {report['as_of']}", show_header=True)
    table.add_column("difference")
    table.add_column("subscriptions", justify="right")
    table.add_column("examples")
    for cls, n in report["counts"].items():
        shown = "skipped: " + report["skipped"][cls] if n is None else f"{n:,}"
        examples = ", ".join(
            f"{e['msisdn']} {e['product']}" for e in report["examples"].get(cls, [])
        )
        table.add_row(cls, shown, examples)
    out.print(table)
    repairs = report["repairs"]
    out.print(
        f"compared {report['compared']:,} · repairs proposed "
        + (", ".join(f"{k} {v:,}" for k, v in repairs["proposed"].items()) or "none")
        + f" · applied {repairs['applied']:,}"
    )
    for name, path in report["exports"].items():
        out.print(f"  {name}: {path}", highlight=False)


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

ScoreAsOfOpt = Annotated[
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
    as_of: ScoreAsOfOpt = None,
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
    as_of: ScoreAsOfOpt = None,
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


# -- mms -----------------------------------------------------------------------------------

mms_app = typer.Typer(
    help="Recovery probes and resends over MM7 (the outbox).", no_args_is_help=True
)
app.add_typer(mms_app, name="mms")

_SENT_STATES = ("submitted", "delivered")


def _item_doc(item: Any) -> dict[str, Any]:
    from mmsq.msisdn import mask_msisdn

    doc: dict[str, Any] = item.as_dict()
    doc["msisdn"] = mask_msisdn(item.msisdn)
    for private in ("claim_token", "message_key", "version"):
        doc.pop(private, None)
    return doc


def _print_item(item: Any) -> None:
    from mmsq.msisdn import mask_msisdn

    line = (
        f"{item.kind} {item.reference}: [bold]{item.state}[/] to {mask_msisdn(item.msisdn)} "
        f"(edition {item.edition}, attempts {item.attempts}"
        + (f", in doubt {item.in_doubt}" if item.in_doubt else "")
        + ")"
    )
    out.print(line, highlight=False)
    details = {
        "message id": item.message_id,
        "status": f"{item.status_code or ''} {item.status_text or ''}".strip() or None,
        "MMStatus": item.mm_status,
        "cause": item.cause,
        "reason": item.reason,
        "next attempt": item.next_attempt_at.isoformat() if item.state == "queued" else None,
    }
    for key, value in details.items():
        if value:
            out.print(f"  {key}: {value}", highlight=False)


@mms_app.command("send-probe")
def mms_send_probe(
    msisdn: Annotated[str, typer.Argument(help="the handset to test (national or E.164)")],
    reference: Annotated[
        str | None, typer.Option(help="idempotency key (default: a new cli-... reference)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Queue a recovery probe to one handset and submit it now (exit 1 unless accepted).

    The delivery report arrives later at the daemon's MM7 endpoint; `mmsq mms status` shows it.
    """
    import uuid

    from mmsq.bootstrap import mms_outbox
    from mmsq.msisdn import MsisdnNormaliser, mask_msisdn

    settings = _settings()
    number = MsisdnNormaliser(settings.ingest.default_region).normalise(msisdn)
    if number is None:
        raise _fail(f"not a valid MSISDN: {mask_msisdn(msisdn)}")
    with _app_for(settings) as a, mms_outbox(a) as outbox:
        queued = outbox.enqueue("probe", number, "", reference or f"cli-{uuid.uuid4().hex[:12]}")
        outbox.dispatch_once(item_id=queued.item.id)
        item = outbox.store.get(queued.item.id) or queued.item
    if as_json:
        _emit_json({"created": queued.created, **_item_doc(item)})
    else:
        _print_item(item)
    if item.state not in _SENT_STATES:
        raise typer.Exit(1)


@mms_app.command("status")
def mms_status(
    reference: Annotated[str | None, typer.Argument(help="the item's reference")] = None,
    message_id: Annotated[
        str | None, typer.Option("--message-id", help="look up by the MMSC's MessageID")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show outbox items by reference (a probe and a resend may share one) or MessageID."""
    from mmsq.bootstrap import mms_outbox

    if (reference is None) == (message_id is None):
        raise _fail("give a REFERENCE or --message-id (one of them)")
    settings = _settings()
    with _app_for(settings) as a, mms_outbox(a) as outbox:
        if message_id is not None:
            found = outbox.by_message_id(message_id)
            items = [found] if found is not None else []
        else:
            items = outbox.status(reference or "")
    if as_json:
        _emit_json({"items": [_item_doc(i) for i in items]})
    else:
        for item in items:
            _print_item(item)
        if not items:
            err.print("no such item", highlight=False)
    if not items:
        raise typer.Exit(1)


@mms_app.command("dispatch")
def mms_dispatch(
    until_idle: Annotated[
        bool,
        typer.Option(
            "--until-idle",
            help="keep going until nothing is queued or in flight (waits for retries)",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send the queued probes and resends that are due (resends first)."""
    import time as time_module

    from mmsq.bootstrap import mms_outbox

    settings = _settings()
    totals: Counter[str] = Counter()
    with _app_for(settings) as a, mms_outbox(a) as outbox:
        while True:
            summary = outbox.dispatch_once()
            totals.update(summary.as_dict())
            if not until_idle or (not summary.claimed and not outbox.busy()):
                break
            if summary.claimed:
                continue
            wakeup = outbox.store.next_wakeup()
            wait = (wakeup - a.clock.now()).total_seconds() if wakeup else 1.0
            time_module.sleep(min(max(wait, 0.05), 5.0))
        counts = outbox.store.counts()
        unmatched = outbox.store.unmatched_count()
    doc = {"dispatched": dict(totals), "states": counts, "unmatched_reports": unmatched}
    if as_json:
        _emit_json(doc)
    else:
        out.print(
            "dispatched: "
            + ", ".join(f"{k} {v}" for k, v in sorted(totals.items()) if v)
            + ("" if any(totals.values()) else "nothing due")
            + " · outbox: "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            + f" · unmatched reports {unmatched}",
            highlight=False,
        )


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
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="worker processes (default: [api] workers)"),
    ] = None,
) -> None:
    """Serve the agent HTTP API (/v1: resend, diagnosis, audit, subscription events) alone.

    `mmsq daemon` serves the same API under /v1 and also sends what it queues; here resends are
    only queued in the MM7 outbox, for a running daemon (or `mmsq mms dispatch`) to send.
    With several workers, each process has its own connections and audit writer, and the
    per-token rate limits are shared through a file in data_dir.
    """
    import uvicorn

    from mmsq.adapters.http_workers import ReusePortWorkers, reuse_port_supported
    from mmsq.adapters.sql_store import SchemaNotCurrentError
    from mmsq.bootstrap import api_server_app

    settings = _settings()
    n = workers or settings.api.workers
    try:  # one worker: served here; several: built here once so that a mistake stops start-up
        served = api_server_app(settings, shared_limits=n > 1)
    except RulesError as exc:
        raise _fail("invalid rules: " + str(exc)) from None
    except SchemaNotCurrentError as exc:
        raise _fail(str(exc)) from None
    common: dict[str, Any] = {
        "host": host or settings.api.host,
        "port": settings.api.port if port is None else port,
        "log_level": settings.log.level.lower(),
        "access_log": False,  # the audit trail records every call, with MSISDNs masked
    }
    if n == 1:
        uvicorn.run(served, **common)
        return
    served.state.close()
    if _state.config is not None:  # the workers read the same file
        os.environ[CONFIG_ENV] = str(_state.config.resolve())
    factory = "mmsq.bootstrap:api_server_app"
    if not reuse_port_supported():  # one shared socket: connections spread less evenly
        uvicorn.run(factory, factory=True, workers=n, **common)
        return
    try:
        workers_ = ReusePortWorkers(factory, common.pop("host"), common.pop("port"), n, common)
    except OSError as exc:
        raise _fail(str(exc)) from None
    workers_.run()


# -- outreach --------------------------------------------------------------------------------

outreach_app = typer.Typer(
    help="Help SMS and OTA pushes: plan, dispatch, status.", no_args_is_help=True
)
app.add_typer(outreach_app, name="outreach")


def _outreach_for(settings: Settings, metrics: Any = None) -> AbstractContextManager[Any]:
    from mmsq.bootstrap import build_outreach

    return _built(lambda: build_outreach(settings, metrics=metrics))


@outreach_app.command("plan")
def outreach_plan(
    candidates: Annotated[
        Path,
        typer.Option(
            "--candidates",
            help="CSV: msisdn, verdict [, region, delivered, tac, brand, model, ota_capable], "
            "in priority order",
        ),
    ],
    blacklist: Annotated[
        Path | None, typer.Option(help="file with one MSISDN per line never to contact")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Plan help SMS and OTA pushes into the outbox (idempotent; every skip is recorded)."""
    import pandas as pd

    from mmsq.msisdn import MsisdnNormaliser

    settings = _settings()
    try:
        frame = pd.read_csv(candidates, dtype=str, keep_default_na=False)
        blocked = (
            {ln.strip() for ln in blacklist.read_text(encoding="utf-8").splitlines() if ln.strip()}
            if blacklist
            else set()
        )
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read input: {exc}") from None
    missing = {"msisdn", "verdict"} - set(frame.columns)
    if missing:
        raise _fail(f"{candidates}: missing column(s) {sorted(missing)}")
    norm = MsisdnNormaliser(settings.ingest.default_region)
    frame["msisdn"] = frame["msisdn"].map(norm.normalise)
    invalid = int(frame["msisdn"].isna().sum())
    frame = frame[frame["msisdn"].notna()].reset_index(drop=True)
    blocked = {n for n in (norm.normalise(b) for b in blocked) if n}
    for column in ("brand", "model", "region", "tac", "ota_capable", "delivered"):
        if column in frame:
            frame[column] = frame[column].replace("", None)
    if "ota_capable" in frame:
        frame["ota_capable"] = frame["ota_capable"].map(
            lambda v: None if v is None else str(v).strip().lower() in ("1", "true", "yes")
        )
    with _outreach_for(settings) as o:
        summary = o.planner.plan(frame, blacklist=blocked).as_dict()
    summary["invalid_msisdns"] = invalid
    if as_json:
        _emit_json(summary)
        return
    out.print(
        f"planned {summary['planned']} new contacts ({summary['segments']} segments), "
        f"{summary['already_planned']} already planned, {invalid} invalid MSISDNs"
    )
    for key, value in sorted(summary["by_action"].items()):
        out.print(f"  {key}: {value}")
    if summary["skipped"]:
        out.print("not contacted:")
        for key, value in sorted(summary["skipped"].items()):
            out.print(f"  {key}: {value}")


@outreach_app.command("dispatch")
def outreach_dispatch(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="stop when nothing is due and nothing in flight")
    ] = False,
    receipt_wait: Annotated[
        float, typer.Option(help="with --until-idle: seconds to wait for receipts")
    ] = 0.0,
    max_seconds: Annotated[float | None, typer.Option(help="stop after this long")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send planned contacts to the SMSC (until Ctrl-C/SIGTERM, or --until-idle)."""
    import signal

    from mmsq.outbox import CountingMetrics

    settings = _settings()
    metrics = CountingMetrics()
    with _outreach_for(settings, metrics) as o:
        previous = signal.signal(signal.SIGTERM, lambda *_: o.dispatcher.request_stop())
        try:
            summary = o.dispatcher.dispatch_once(
                until_idle=until_idle, max_seconds=max_seconds, receipt_wait_s=receipt_wait
            )
        except KeyboardInterrupt:
            summary = o.dispatcher.summary
        finally:
            signal.signal(signal.SIGTERM, previous)
    doc = {**summary.as_dict(), "metrics": metrics.as_dict()}
    if as_json:
        _emit_json(doc)
        return
    out.print(
        f"submitted {summary.submitted} segments: {summary.accepted} accepted, "
        f"{summary.failed} failed, {summary.retried} to retry; {summary.receipts} receipts, "
        f"{summary.expired} contacts expired; {summary.deferred} segments deferred"
        + (f" until {summary.next_due:%Y-%m-%d %H:%M} UTC" if summary.next_due else "")
    )


@outreach_app.command("status")
def outreach_status(
    msisdn: Annotated[
        str | None, typer.Option(help="one subscriber: their contacts and the decisions")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Outbox counts by state, decisions by reason, receipts that matched nothing."""
    from mmsq.msisdn import MsisdnNormaliser

    settings = _settings()
    with _outreach_for(settings) as o:
        status = o.store.status()
        doc: dict[str, Any] = {
            "contacts": status.contacts,
            "segments": status.segments,
            "decisions": status.decisions,
            "unmatched_receipts": status.unmatched_receipts,
            "waiting_receipts": status.waiting_receipts,
            "oldest_planned": status.oldest_planned,
        }
        if msisdn:
            e164 = MsisdnNormaliser(settings.ingest.default_region).normalise(msisdn) or msisdn
            doc["subscriber"] = {
                "contacts": [
                    {k: c[k] for k in ("action", "reason", "state", "cause", "detail")}
                    for c in o.store.contacts_of(e164)
                ],
                "decisions": o.store.decisions_for(e164),
            }
    if as_json:
        _emit_json(doc)
        return
    table = Table("what", "state", "count")
    for kind in ("contacts", "segments", "decisions"):
        for state, count in sorted(doc[kind].items()):
            table.add_row(kind, state, str(count))
    table.add_row("receipts", "unmatched", str(status.unmatched_receipts))
    table.add_row("receipts", "waiting", str(status.waiting_receipts))
    out.print(table)
    if msisdn:
        sub = doc["subscriber"]
        for c in sub["contacts"]:
            out.print(f"contact {c['action']} ({c['reason']}): {c['state']} {c['detail'] or ''}")
        for d in sub["decisions"]:
            out.print(f"decision {d['day']}: not contacted ({d['reason']}): {d['decision']}")
        if not sub["contacts"] and not sub["decisions"]:
            out.print("no contact planned and no decision recorded for this subscriber")


# -- devices -------------------------------------------------------------------------------

devices_app = typer.Typer(
    help="The device table (TAC -> handset model): import an operator's list, coverage.",
    no_args_is_help=True,
)
app.add_typer(devices_app, name="devices")


@devices_app.command("import")
def devices_import(
    file: Annotated[Path, typer.Argument(help="CSV with the columns of rules/devices.csv")],
    as_json: JsonOpt = False,
) -> None:
    """Merge an operator's TAC list into devices.csv in the rules directory (by TAC).

    Bad rows are reported with their line number and left out; the rest is imported.
    """
    from mmsq.device_import import check_device_rows, merge_device_rows, write_device_table
    from mmsq.devices import DEVICES_FILE, read_device_table

    settings = _settings()
    rules_dir = settings.rules.dir
    if rules_dir is None:
        raise _fail(
            "rules.dir is not configured: set [rules] dir (or MMSQ_RULES__DIR) to the operator "
            "rules directory that devices.csv is written to"
        )
    checked = check_device_rows(file)
    if checked.fatal is not None:
        raise _fail(str(checked.fatal))
    target = rules_dir / DEVICES_FILE
    try:
        existing = read_device_table(target) if target.is_file() else checked.rows.iloc[0:0]
    except RulesError as exc:
        raise _fail(f"the operator table {target} is invalid: {exc}") from None
    merge = merge_device_rows(existing, checked.rows)
    if merge.added or merge.changed:
        write_device_table(merge.table, target)
    doc = {
        "file": str(file),
        "target": str(target),
        "rows": len(checked.rows),
        "added": merge.added,
        "changed": merge.changed,
        "unchanged": merge.unchanged,
        "tacs": len(merge.table),
        "bad_rows": [{"line": p.key, "reason": p.reason} for p in checked.problems],
    }
    if as_json:
        _emit_json(doc)
        return
    for p in checked.problems:
        err.print(f"{p.key}: {p.reason}", highlight=False)
    out.print(
        f"{merge.added} TACs added, {merge.changed} changed, {merge.unchanged} unchanged; "
        f"{len(checked.problems)} bad rows left out; {len(merge.table)} TACs in {target}",
        highlight=False,
    )


@devices_app.command("match")
def devices_match(
    top: Annotated[int, typer.Option(min=1, help="how many unknown TACs to list")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """The share of subscribers whose stored device the table knows; the top unknown TACs."""
    from mmsq.device_import import device_coverage
    from mmsq.devices import load_devices

    settings = _settings()
    try:
        catalogue = load_devices(settings.rules.dir)
    except RulesError as exc:
        raise _fail("invalid rules: " + str(exc)) from None
    with _app_for(settings) as application:
        coverage = device_coverage(application.store.devices(), catalogue, top)
    doc = coverage.as_dict() | {"table_tacs": len(catalogue)}
    if as_json:
        _emit_json(doc)
        return
    out.print(
        f"{coverage.known:,} of {coverage.subscribers:,} subscribers with a device have a "
        f"known TAC ({coverage.known_share:.1%}); {coverage.unknown_tacs:,} unknown TACs",
        highlight=False,
    )
    if coverage.top_unknown:
        table = Table("TAC", "subscribers", title="top unknown TACs")
        for tac, n in coverage.top_unknown:
            table.add_row(tac, f"{n:,}")
        out.print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
