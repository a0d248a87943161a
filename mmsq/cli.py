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
    import time

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
    try:
        while True:
            time.sleep(stats_every)
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
    except KeyboardInterrupt:
        pass
    finally:
        smsc.stop()


# -- outreach --------------------------------------------------------------------------------

outreach_app = typer.Typer(
    help="Help SMS and OTA pushes: plan, dispatch, status.", no_args_is_help=True
)
app.add_typer(outreach_app, name="outreach")


@contextmanager
def _outreach_for(settings: Settings, metrics: Any = None) -> Iterator[Any]:
    from mmsq.adapters.sql_store import SchemaNotCurrentError
    from mmsq.bootstrap import build_outreach

    try:
        outreach = build_outreach(settings, metrics=metrics)
    except RulesError as exc:
        raise _fail("invalid rules: " + str(exc)) from None
    except SchemaNotCurrentError as exc:
        raise _fail(str(exc)) from None
    try:
        yield outreach
    finally:
        outreach.close()


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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
