"""The inference server's lifecycle: load, listen, reload, drain, stop.

::

    server = InferenceServer(Path("runs/cartpole"), ServeConfig(port=0))
    port = await server.start()          # models loaded and warmed up, health SERVING
    ...
    await server.stop()                  # NOT_SERVING, in-flight calls finish, batchers drain

:func:`serve` runs one until SIGTERM or SIGINT and returns exit code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from grpc import aio

from fleetmind.core.errors import CheckpointError
from fleetmind.nn.threads import limit_threads
from fleetmind.rpc.auth import read_tokens
from fleetmind.rpc.exposure import OPEN_WARNING
from fleetmind.rpc.metrics_http import MetricsPageConfig
from fleetmind.rpc.server import MIB, HealthServicer, ServerConfig, create_server, mark_serving
from fleetmind.rpc.tls import server_credentials, server_ssl_context
from fleetmind.serve.batcher import BatchPolicy
from fleetmind.serve.config import SHEDDING_PENDING_CALLS, ServeConfig
from fleetmind.serve.metrics import MetricsRecorder, ServeMetrics
from fleetmind.serve.model import RequestLimits
from fleetmind.serve.repository import Loader, ModelRepository, default_loader, describe_failures
from fleetmind.serve.rest import RestConfig, RestServer
from fleetmind.serve.service import SERVICE, InferenceServicer
from fleetmind.serve.shedding import LoadShedder, ShedPolicy, WaitProbe

logger = logging.getLogger(__name__)


def batch_policy(config: ServeConfig) -> BatchPolicy:
    """The batching settings of ``config``."""
    return BatchPolicy(
        max_batch_size=config.max_batch_size,
        max_delay_s=config.max_queue_delay_us / 1e6,
        max_queue=config.max_queue,
        in_thread=config.forward_in_thread,
    )


def metrics_page_config(config: ServeConfig, port: int) -> MetricsPageConfig:
    """Where and how the metrics page of ``config`` listens."""
    return MetricsPageConfig(
        port=port,
        host=config.metrics_host or config.host,
        tls_cert=config.metrics_tls_cert,
        tls_key=config.metrics_tls_key,
        tokens=read_tokens(config.metrics_token_file) if config.metrics_token_file else (),
    )


def transport_config(config: ServeConfig, *, share_port: bool = False) -> ServerConfig:
    """The gRPC transport settings of ``config`` (``share_port``: one of several workers)."""
    return ServerConfig(
        max_message_bytes=config.max_message_mib * MIB,
        tls_cert=config.tls_cert,
        tls_key=config.tls_key,
        tls_client_ca=config.tls_client_ca,
        tokens=read_tokens(config.token_file) if config.token_file else (),
        max_pending_calls=pending_limit(config),
        insecure=config.insecure,
        share_port=share_port,
        extra_options=connection_age_options(config),
    )


def pending_limit(config: ServeConfig) -> int | None:
    """The pending-call limit of ``config`` (None: gRPC's own)."""
    if config.max_pending_calls is None and config.max_wait_ms > 0:
        return SHEDDING_PENDING_CALLS
    return config.max_pending_calls


def rest_config(transport: ServerConfig, config: ServeConfig) -> RestConfig:
    """The HTTP/REST server's settings: the same limits, TLS and tokens as gRPC's."""
    tls = None
    if transport.tls_cert is not None and transport.tls_key is not None:
        tls = server_ssl_context(transport.tls_cert, transport.tls_key, transport.tls_client_ca)
    return RestConfig(
        max_body_bytes=transport.max_message_bytes,
        body_timeout_s=config.http_body_timeout_s,
        tokens=transport.tokens,
        ssl_context=tls,
        share_port=transport.share_port,
    )


def connection_age_options(config: ServeConfig) -> dict[str, int]:
    """gRPC's channel arguments for ``--max-connection-age-s`` (none when unset)."""
    if config.max_connection_age_s is None:
        return {}
    return {
        "grpc.max_connection_age_ms": int(config.max_connection_age_s * 1000),
        "grpc.max_connection_age_grace_ms": int(config.grace_s * 1000),
    }


def listen_address(config: ServeConfig) -> str:
    """The gRPC address ``config`` listens on."""
    return f"{config.host}:{config.port}"


class InferenceServer:
    """An Open Inference Protocol server over the checkpoints under ``path``.

    A worker of ``fleetmind serve --workers N`` passes ``metrics`` (its share of the
    parent's page, which it then does not serve itself) and ``share_port`` (the port
    is bound with SO_REUSEPORT beside the other workers).
    """

    def __init__(
        self,
        path: Path,
        config: ServeConfig,
        loader: Loader = default_loader,
        *,
        metrics: MetricsRecorder | None = None,
        share_port: bool = False,
    ) -> None:
        config.validate()
        self.config = config
        self._page_metrics: ServeMetrics | None = None
        if metrics is None:
            metrics = self._page_metrics = ServeMetrics()
        self.metrics: MetricsRecorder = metrics
        self._share_port = share_port
        self.repository = ModelRepository(
            path,
            batch_policy(config),
            loader,
            config.model_name,
            self.metrics.batch_observer,
            RequestLimits(config.max_message_mib * MIB, config.max_request_rows),
        )
        self.shedder = (
            LoadShedder(ShedPolicy(max_wait_s=config.max_wait_ms / 1000))
            if config.max_wait_ms > 0
            else None
        )
        self._probe: WaitProbe | None = None
        self.servicer = InferenceServicer(self.repository, self.metrics, self.shedder)
        self.health = HealthServicer()
        self._metrics_page = (
            None
            if config.metrics_port is None or self._page_metrics is None
            else metrics_page_config(config, config.metrics_port)
        )
        self.port: int | None = None
        self.metrics_port: int | None = None
        self.http_port: int | None = None
        self._rest: RestServer | None = None
        self._grpc: aio.Server | None = None
        self._reloader: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    async def start(self, *, ready: bool = True) -> int:
        """Load every model, start listening; returns the gRPC port.

        With ``ready`` False, calls are answered but health and ServerReady report
        not ready until :meth:`mark_ready`.
        """
        transport = transport_config(self.config, share_port=self._share_port)
        if transport.tls_cert is not None and transport.tls_key is not None:
            # unusable TLS files fail here, not after every model has loaded
            server_credentials(transport.tls_cert, transport.tls_key, transport.tls_client_ca)
        rest = None
        if self.config.http_port is not None:
            rest = RestServer(self.servicer, rest_config(transport, self.config))
        await self.repository.refresh()
        if not self.repository.names():
            failed = describe_failures(self.repository.failures)
            raise CheckpointError(
                f"nothing to serve under {self.repository.root}"
                + (f": {failed}" if failed else ": no checkpoint found")
            )
        # The health service starts out SERVING: not before every model (and, for a
        # worker, every other worker) is ready.
        await mark_serving(self.health, ("", SERVICE.full_name), serving=False)
        address = listen_address(self.config)
        self._grpc, self.port = create_server(
            address, transport, [(self.servicer, SERVICE)], self.health
        )
        if self.shedder is not None:
            self._probe = WaitProbe(self.shedder, self.metrics.waited)
            self._grpc.add_insecure_port(self._probe.address)
        await self._grpc.start()
        if self._probe is not None:
            self._probe.start()
        if rest is not None and self.config.http_port is not None:
            try:
                self.http_port = await rest.start(self.config.host, self.config.http_port)
            except BaseException:  # the HTTP port is taken: serve neither
                if self._probe is not None:
                    await self._probe.stop()
                await self._grpc.stop(0)
                await self.repository.close()
                raise
            self._rest = rest
        if self._metrics_page is not None and self._page_metrics is not None:
            self.metrics_port = self._page_metrics.serve_http(self._metrics_page)
        if ready:
            await self.mark_ready()
        if self.config.reload_interval_s is not None:
            self._reloader = asyncio.get_running_loop().create_task(
                self._reload_forever(self.config.reload_interval_s), name="model-reload"
            )
        logger.info(
            "serving %s on %s (port %d)", ", ".join(self.repository.names()), address, self.port
        )
        if self.http_port is not None:
            http_address = f"{self.config.host}:{self.http_port}"
            logger.info("serving HTTP/REST on %s", http_address)
            if transport.open_at(http_address):  # refused by now unless --insecure
                logger.warning(OPEN_WARNING, http_address)
        return self.port

    async def mark_ready(self) -> None:
        """Report SERVING (health) and ready (ServerReady, ModelReady)."""
        if self._stopped.is_set() or self._grpc is None:
            return
        self.servicer.accepting = True
        await mark_serving(self.health, ("", SERVICE.full_name))

    async def _reload_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.repository.refresh()
            except Exception:
                logger.exception("rescanning %s failed; will retry", self.repository.root)

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, let in-flight calls finish, then release everything."""
        if self._stopped.is_set():
            return
        grace = self.config.grace_s if grace is None else grace
        if self._grpc is not None:  # a server that never listened has nothing to drain
            logger.info("shutting down: draining in-flight requests for up to %.1fs", grace)
        self.servicer.accepting = False
        await self.health.enter_graceful_shutdown()
        if self._reloader is not None:
            self._reloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reloader
        if self._probe is not None:
            await self._probe.stop()
        stopping = [self._grpc.stop(grace)] if self._grpc is not None else []
        if self._rest is not None:
            stopping.append(self._rest.stop(grace))
        await asyncio.gather(*stopping)
        await self.repository.close()
        self.metrics.close()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once :meth:`stop` has finished."""
        await self._stopped.wait()


async def serve(path: Path, config: ServeConfig, loader: Loader = default_loader) -> int:
    """Run a server until SIGTERM/SIGINT, then shut down gracefully; returns 0."""
    limit_threads(config.torch_threads)
    server = InferenceServer(path, config, loader)
    loop = asyncio.get_running_loop()
    requested = asyncio.Event()

    def on_signal(signum: int) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        requested.set()

    # before the server starts: a signal sent as soon as it says it serves must drain
    # it, not kill it (a signal while it loads stops it once loaded)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await server.start()
        waits = {loop.create_task(requested.wait()), loop.create_task(server.wait_stopped())}
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await server.stop()
    return 0
