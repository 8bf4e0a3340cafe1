"""Command line: ``riskactors serve``, ``down``, ``rebalance``, ``replay``, ``run``, ``hash-key``.

Every ``serve`` flag also has an environment variable (``RISKACTORS_HOST``, ``RISKACTORS_PORT``,
``RISKACTORS_ADDRESS``, ``RISKACTORS_PLACEMENT``, ``RISKACTORS_SHARDS``…, see
:class:`riskactors.settings.Settings`); a flag given on the command line wins.

API keys (``RISKACTORS_API_KEYS`` / ``RISKACTORS_API_KEYS_FILE``) are loaded and the listen
address checked before anything starts: with no key configured, only a loopback address is
accepted (see :mod:`api.auth`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import click

from .settings import Settings

__all__ = ["main"]


#: A replay's own server lists every breach a mark causes (the report needs each one).
_EVERY_BREACH = 10**9


def _settings(**flags) -> Settings:
    return Settings(**{k: v for k, v in flags.items() if v is not None})


_server_options = [
    click.option("--host", default=None, help="Listen address [RISKACTORS_HOST, default 127.0.0.1]"),
    click.option("--port", type=int, default=None, help="Listen port [RISKACTORS_PORT, default 8000]"),
    click.option("--address", default=None,
                 help="Join this Ray cluster (auto or HOST:PORT) instead of starting an embedded Ray "
                      "[RISKACTORS_ADDRESS]"),
    click.option("--placement", type=click.Choice(["sharded", "dedicated"]), default=None,
                 help="sharded: users hashed over N shard actors; dedicated: one actor per user "
                      "[RISKACTORS_PLACEMENT, default sharded]"),
    click.option("--shards", type=click.IntRange(min=1), default=None,
                 help="Shard actors for sharded placement [RISKACTORS_SHARDS, default 2 embedded; on a cluster "
                      "RISKACTORS_SHARDS_PER_NODE (8) x the live nodes at creation]"),
]


def server_options(f):
    for opt in reversed(_server_options):
        f = opt(f)
    return f


def _check_auth(settings: Settings, client_key: str | None = None, *, replay: bool = False) -> None:
    """Load the API keys and apply the loopback rule before Ray or the front start; with
    ``replay``, also check that ``client_key`` (the replay client's key) is an admin key."""
    from api.auth import ApiKeysError, InsecureBindError, check_bind

    try:
        store = check_bind(settings, warn=not replay)  # the embedded server warns when it starts
    except (ApiKeysError, InsecureBindError) as exc:
        raise click.ClickException(str(exc)) from exc
    if replay and store.enabled:
        key = store.lookup(client_key.strip()) if client_key else None
        if key is None or key.role != "admin":
            why = ("" if not client_key else " (the key given is unknown)" if key is None
                   else f" (key {key.name!r} has role {key.role})")
            raise click.ClickException("API keys are configured: pass --api-key (or RISKACTORS_API_KEY) with an "
                                       f"admin key, the replay registers accounts{why}")


@click.group()
@click.version_option(package_name="riskactors")
def main() -> None:
    """riskactors: in-memory pre-trade risk server for prop-trading firms."""


@main.command()
@server_options
@click.option("--clock", type=click.Choice(["wall", "events"]), default=None,
              help="What moves the deployment's time: wall (the server's, live) or events (the latest ts of the "
                   "events received: replays, back-tests) [RISKACTORS_CLOCK, default wall]")
@click.option("--deployment", default=None,
              help="Name of the deployment whose actors this front creates or attaches to "
                   "[RISKACTORS_DEPLOYMENT, default riskactors]")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Front processes on this port, each attached to the deployment [RISKACTORS_WORKERS, default 1]")
def serve(host, port, address, placement, shards, clock, deployment, workers) -> None:
    """Start the HTTP front and the actors (embedded local Ray unless --address).

    With --address the first front creates the deployment's actors (named, detached: they
    outlive the front) and every later one attaches to them; a front whose version or
    deployment-level settings differ from the deployment's is refused, naming the setting.
    """
    import uvicorn

    from api import create_app

    settings = _settings(host=host, port=port, address=address, placement=placement, shards=shards, clock=clock,
                         deployment=deployment, workers=workers)
    _check_auth(settings)
    shards = settings.shards if "shards" in settings.model_fields_set or not settings.address else "auto"
    click.echo(f"riskactors: placement={settings.placement} shards={shards} clock={settings.clock} "
               f"ray={'embedded' if not settings.address else settings.address} workers={settings.workers}; "
               f"http://{settings.host}:{settings.port}/docs")
    from .actors import ray_runtime

    # Ray starts and stops on the main thread: off it, Ray's handlers turn SIGTERM into an abort
    # (exit 143) instead of the orderly stop below
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    runtime = ray_runtime.start(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):  # uvicorn raises them again after its own stop
        signal.signal(sig, lambda *_: None)
    settings = getattr(runtime, "settings", None) or settings  # on a cluster the shard count may come from the deployment
    try:
        if settings.workers == 1:
            uvicorn.run(create_app(settings, runtime.service), host=settings.host, port=settings.port,
                        log_level="warning", timeout_graceful_shutdown=settings.drain_timeout_seconds)
        else:
            _serve_workers(settings)
    finally:
        runtime.shutdown()
    click.echo("riskactors: stopped")


def _serve_workers(settings: Settings) -> None:
    """``serve --workers N``: this process created (or attached to) the deployment and keeps it
    (embedded: it owns Ray and the actors); uvicorn runs N front processes on the port, each
    attached to the deployment through the Ray address, with metrics in multiprocess mode. On
    SIGTERM/SIGINT uvicorn stops them (each drains), then the caller stops the deployment."""
    import tempfile

    import ray
    import uvicorn

    from api.app import WORKER_SETTINGS

    metrics_dir = tempfile.mkdtemp(prefix="riskactors-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    front = settings.model_copy(update={"address": ray.get_runtime_context().gcs_address, "workers": 1})
    os.environ[WORKER_SETTINGS] = front.model_dump_json()
    try:
        uvicorn.run("api.app:create_worker_app", factory=True, workers=settings.workers, host=settings.host,
                    port=settings.port, log_level="warning",
                    timeout_graceful_shutdown=settings.drain_timeout_seconds)
    finally:
        import shutil

        shutil.rmtree(metrics_dir, ignore_errors=True)


def _check_tz(ctx, param, value: str) -> str:
    """``--tz``: a zone :mod:`zoneinfo` knows, or a usage error naming it."""
    from .replay.loaders import time_zone

    try:
        time_zone(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


@main.command()
@click.option("--address", default=None, help="The Ray cluster (auto or HOST:PORT) [RISKACTORS_ADDRESS]")
@click.option("--deployment", default=None, help="The deployment [RISKACTORS_DEPLOYMENT, default riskactors]")
@click.option("--drain", "drain", default=None, metavar="NODE",
              help="Move every shard off this node (its Ray node id or address) before it leaves")
def rebalance(address, deployment, drain) -> None:
    """Spread the deployment's shards over the cluster's live nodes (nodes that joined later
    get their share), one shard at a time: each is restarted on its new node from the storage
    root, fenced; checks to that shard fail closed (503) only for the moment of its move."""
    from .actors import ray_runtime

    settings = _settings(address=address, deployment=deployment)
    try:
        result = ray_runtime.rebalance(settings, drain)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    for move in result["moves"]:
        click.echo(f"moved {move['shard']}: {move['from']} -> {move['to']} ({move['seconds']:.2f} s)")
    per_node: dict[str, list[str]] = {}
    for shard, node in result["layout"].items():
        per_node.setdefault(node, []).append(shard)
    for node, shards in sorted(per_node.items()):
        click.echo(f"node {node}: {len(shards)} shards ({', '.join(shards)})")
    click.echo(f"riskactors: {len(result['moves'])} shards moved")


@main.command()
@click.option("--address", default=None, help="The Ray cluster (auto or HOST:PORT) [RISKACTORS_ADDRESS]")
@click.option("--deployment", default=None, help="The deployment to remove [RISKACTORS_DEPLOYMENT, default riskactors]")
def down(address, deployment) -> None:
    """Remove a deployment's actors from a Ray cluster (journals flushed first). The state on
    the storage root stays: the next `riskactors serve` recovers it."""
    from .actors import ray_runtime

    settings = _settings(address=address, deployment=deployment)
    if not settings.address:
        raise click.ClickException("--address (or RISKACTORS_ADDRESS) is required: an embedded deployment stops "
                                   "with its front")
    killed = ray_runtime.down(settings)
    if not killed:
        raise click.ClickException(f"no deployment {settings.deployment!r} on {settings.address}")
    click.echo(f"riskactors: deployment {settings.deployment!r} removed ({killed} actors); its state stays on the "
               f"storage root")


_replay_options = [
    click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
    click.option("--format", "fmt", type=click.Choice(["auto", "fundingpips", "mt4"]), default="auto",
                 help="Trade file format (auto: by header)"),
    click.option("--plan", default="two_step_phase1", show_default=True,
                 help="Plan for accounts unknown to the server"),
    click.option("--balance", type=float, default=None,
                 help="Initial balance of new accounts (default 100000 USD; 1000000 for the JPY MT4 file)"),
    click.option("--currency", default=None, help="Account currency of new accounts (default: USD; MT4 file: JPY)"),
    click.option("--position-mode", type=click.Choice(["hedging", "netting"]), default="hedging", show_default=True,
                 help="Position mode of new accounts: hedging (every ticket its own position, the ticket as "
                      "position_id) or netting (one position per instrument)"),
    click.option("--bars", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                 help="MT4 H1 bars folder for marks (default: broker_bars_H1 beside the file)"),
    click.option("--limit", type=click.IntRange(min=1), default=None, help="Replay only the first N trades"),
    click.option("--max-mark-age", type=click.FloatRange(min=0, min_open=True), default=None,
                 help="Apply rule STALE_PRICE with this maximum mark age in seconds (default: the rule only warns, "
                      "and the report counts the checks that would have been stale at 300 s)"),
    click.option("--tz", default="UTC", show_default=True, callback=_check_tz,
                 help="Time zone of the file's naive times (trades and bars), an IANA name, e.g. Europe/Prague"),
    click.option("--api-key", envvar="RISKACTORS_API_KEY", default=None,
                 help="Key the replay client sends when the server has API keys (an admin key: it registers "
                      "accounts) [RISKACTORS_API_KEY]"),
]


def replay_options(f):
    for opt in reversed(_replay_options):
        f = opt(f)
    return f


@main.command()
@replay_options
@click.option("--url", default=None, help="Drive this running server; default: start an embedded one")
@server_options
def replay(file, fmt, plan, balance, currency, position_mode, bars, limit, max_mark_age, tz, api_key, url, host, port,
           address, placement, shards) -> None:
    """Replay a trade history through the HTTP API as an order router and price feed would."""
    from .replay import ReplayOptions, load_trades
    from .replay.server import embedded_server

    settings = None
    if not url:
        settings = _settings(host=host or "127.0.0.1", port=port if port is not None else 0, address=address,
                             placement=placement, shards=shards, clock="events", max_breaches_listed=_EVERY_BREACH)
        _check_auth(settings, api_key, replay=True)
    options = ReplayOptions(plan=plan, balance=balance, currency=currency, position_mode=position_mode,
                            max_mark_age=max_mark_age)
    trades = load_trades(file, fmt, bars=bars, limit=limit, tz=tz)
    if url:
        report = asyncio.run(_replay(url, trades, options, api_key))
    else:
        with embedded_server(settings) as base_url:
            report = asyncio.run(_replay(base_url, trades, options, api_key))
    click.echo(report.render())


@main.command()
@replay_options
@server_options
def run(file, fmt, plan, balance, currency, position_mode, bars, limit, max_mark_age, tz, api_key, host, port, address,
        placement, shards) -> None:
    """Start the server (embedded Ray), replay FILE into it, print the report, keep serving."""
    from .replay import ReplayOptions, load_trades
    from .replay.server import embedded_server

    settings = _settings(host=host, port=port, address=address, placement=placement, shards=shards, clock="events",
                         max_breaches_listed=_EVERY_BREACH)
    _check_auth(settings, api_key, replay=True)
    options = ReplayOptions(plan=plan, balance=balance, currency=currency, position_mode=position_mode,
                            max_mark_age=max_mark_age)
    trades = load_trades(file, fmt, bars=bars, limit=limit, tz=tz)
    with embedded_server(settings) as base_url:
        click.echo(f"riskactors: serving at {base_url} (placement={settings.placement}); replaying {file.name} …")
        report = asyncio.run(_replay(base_url, trades, options, api_key))
        click.echo(report.render())
        sample = report.sample_account or "ID"
        click.echo("\nWhere to look:\n"
                   f"  {base_url}/docs              OpenAPI, try the endpoints\n"
                   f"  {base_url}/v1/risk/firm      consolidated firm risk\n"
                   f"  {base_url}/v1/accounts/{sample}    one account of the replay\n"
                   f"  {base_url}/v1/analytics/firm  behaviour analytics of the firm\n"
                   f"  {base_url}/v1/accounts/{sample}/analytics    behaviour analytics of that account\n"
                   f"  {base_url}/metrics           Prometheus metrics\n"
                   "Serving until Ctrl-C.")
        try:
            _wait_for_stop_signal()
        except KeyboardInterrupt:
            pass
        click.echo("stopping: shutting down the front and Ray")


async def _replay(base_url: str, trades, options, api_key: str | None):
    """Run the replay against ``base_url``, sending ``api_key`` as a bearer key when given."""
    import httpx

    from .replay import run_replay

    headers = {"Authorization": f"Bearer {api_key.strip()}"} if api_key else None
    with _progress("replay") as progress:
        async with httpx.AsyncClient(base_url=base_url, timeout=30.0, headers=headers) as client:
            return await run_replay(client, trades, options, progress=progress)


@contextlib.contextmanager
def _progress(label: str):
    """A ``progress(done, total)`` callback: a rich progress bar (rate, time left) on a terminal,
    else a plain line on stderr at every tenth of the way, with the rate and the time left."""
    import time

    if sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                   TextColumn("{task.fields[rate]} events/s"), TimeRemainingColumn())
        started = time.monotonic()
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task(label, total=None, rate="-")

            def update(done: int, total: int) -> None:
                rate = done / max(time.monotonic() - started, 1e-9)
                bar.update(task, completed=done, total=total, rate=f"{rate:,.0f}")

            yield update
        return
    started = time.monotonic()
    shown = [-1]

    def line(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth == shown[0] and done != total:
            return
        shown[0] = tenth
        spent = max(time.monotonic() - started, 1e-9)
        rate = done / spent
        left = (total - done) / rate if rate > 0 else float("nan")
        click.echo(f"{label}: {done:,}/{total:,} events ({100 * done / max(total, 1):.0f} %), {rate:,.0f}/s, "
                   f"{left:,.0f} s left", err=True)

    yield line


@main.command("hash-key")
@click.option("--generate", is_flag=True,
              help="Make a new random key (also the default when stdin is a terminal)")
@click.option("--role", type=click.Choice(["router", "ops", "admin"]), default="router", show_default=True,
              help="Role shown in the example configuration")
@click.option("--name", default=None, help="Key name shown in the example configuration [default: ROLE-1]")
def hash_key(generate, role, name) -> None:
    """Print the SHA-256 of an API key read from stdin, or of a new random key (--generate).

    The server stores only the digest: put it in RISKACTORS_API_KEYS (JSON) or in the JSON list
    of RISKACTORS_API_KEYS_FILE; clients send the key itself as 'Authorization: Bearer <key>'
    or 'X-API-Key: <key>'.
    """
    import json
    import secrets

    from api.auth import hash_key as digest_of

    stdin = sys.stdin
    if not generate and stdin.isatty():
        generate = True
    if generate:
        key = secrets.token_urlsafe(32)
    else:
        key = stdin.read().strip()
        if not key:
            raise click.ClickException("no key on stdin (pipe one in, or pass --generate for a new one)")
        if any(c.isspace() for c in key):
            raise click.ClickException("a key cannot contain whitespace (one key per call, on one line)")
        if len(key) < 16:
            click.echo("warning: keys shorter than 16 characters are easy to guess; prefer --generate", err=True)
    sha = digest_of(key)
    entry = json.dumps([{"name": name or f"{role}-1", "role": role, "sha256": sha}])
    if generate:
        click.echo(f"key:    {key}\n        (shown once; it is not stored anywhere, give it to the client)")
    click.echo(f"sha256: {sha}")
    click.echo(f"\nexample configuration:\n  RISKACTORS_API_KEYS='{entry}'")


def _wait_for_stop_signal() -> None:
    """Block until SIGINT (Ctrl-C) or SIGTERM; both end in an orderly shutdown."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
