"""Settings of ``fleetmind serve`` (one field per command-line flag)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleetmind.core.cpus import usable_cpus
from fleetmind.core.errors import ConfigError

MIB = 1024 * 1024
SHEDDING_PENDING_CALLS = 8192
"""The pending-call limit when unset and load shedding is on."""


@dataclass
class ServeConfig:
    """How the inference server listens, batches, reloads and protects itself."""

    host: str = "0.0.0.0"
    """Interface to listen on (``127.0.0.1`` for this machine only)."""
    port: int = 8001
    """gRPC port; 0 picks a free one (it is logged)."""
    http_port: int | None = None
    """Port of the same service over HTTP/REST (KServe V2 JSON, Triton's binary tensor
    extension), on --host with the same TLS, tokens, batcher and metrics; 0 picks a
    free one (it is logged). Off when unset."""
    http_body_timeout_s: float = 30.0
    """Longest an HTTP request body may take to arrive; a slower one is answered 408 and
    its connection closed."""
    model_name: str | None = None
    """Name of the model when PATH is a run directory (default: the directory's name)."""
    max_batch_size: int = 64
    """Most observation rows run in one forward pass; 1 turns batching off."""
    max_queue_delay_us: int = 0
    """Extra time the first queued request waits for others to join its batch. At 0 a
    request to an idle model runs at once, and the requests that arrive while a batch
    computes form the next one; a wait pays off only for models run on a worker thread
    whose callers arrive in bursts (see docs/serving.md)."""
    max_queue: int = 1024
    """Requests waiting per model version; beyond it calls get RESOURCE_EXHAUSTED."""
    max_pending_calls: int | None = None
    """Calls that may wait for the server to take them up (in gRPC's core, before any
    Python runs); from half of it on, new calls are refused more and more often, at once
    and with status CANCELLED. Unset: 8,192 while --max-wait-ms sheds load (a burst of
    thousands of callers then waits to be refused RESOURCE_EXHAUSTED with a pushback
    rather than cancelled), gRPC's own limits (1,000 and 3,000) with --max-wait-ms 0. A
    lower limit spends CPU refusing callers that retry at once (see BENCHMARKS.md,
    serve overload)."""
    max_wait_ms: float = 100.0
    """Longest a new call should wait for the server to take it up. While a probe of the
    server's own health service waits longer, a share of new inference calls is refused
    at once with RESOURCE_EXHAUSTED and a pushback (``grpc-retry-pushback-ms``; HTTP 429
    with ``Retry-After``) that grows with the overload; 0 turns this off."""
    metrics_port: int | None = None
    """Port of the Prometheus metrics page (``/metrics``); off when unset."""
    metrics_host: str | None = None
    """Interface of the metrics page (default: --host)."""
    metrics_tls_cert: Path | None = None
    """PEM certificate chain of the metrics page; with --metrics-tls-key serves HTTPS."""
    metrics_tls_key: Path | None = None
    """PEM private key of --metrics-tls-cert."""
    metrics_token_file: Path | None = None
    """File of bearer tokens, one per line, for the metrics page; without one a scrape
    gets 401. Unset: the page is open to whoever reaches it."""
    tls_cert: Path | None = None
    """PEM certificate chain; with --tls-key turns TLS on."""
    tls_key: Path | None = None
    """PEM private key of --tls-cert."""
    tls_client_ca: Path | None = None
    """PEM CA that must have signed every client certificate (mutual TLS)."""
    token_file: Path | None = None
    """File of accepted bearer tokens, one per line; calls without one get UNAUTHENTICATED."""
    insecure: bool = False
    """Listen beyond loopback with neither a token nor mutual TLS: anyone who reaches the
    port may call every model (refused without this flag)."""
    max_message_mib: int = 16
    """Largest request or response in MiB; bigger ones get RESOURCE_EXHAUSTED."""
    max_request_rows: int | None = None
    """Most observation rows one request may carry; more get INVALID_ARGUMENT naming the
    cap. Unset: as many as keep the reply within --max-message-mib, from each model's
    output size. A forward pass of more than --max-batch-size rows runs on a worker
    thread, so other calls are still answered meanwhile."""
    reload_interval_s: float | None = 2.0
    """How often PATH is scanned for new checkpoints and versions; off when unset."""
    grace_s: float = 10.0
    """On SIGTERM, how long in-flight requests may take to finish."""
    max_connection_age_s: float | None = None
    """Close each client connection after this many seconds (an HTTP/2 GOAWAY; calls in
    flight get --grace-s to finish), so clients resolve the service name again and reach
    replicas that started since they connected. Unset: connections live as long as the
    clients keep them."""
    torch_threads: int = 1
    """Threads torch and numpy's BLAS may use for one forward pass."""
    forward_in_thread: bool | None = None
    """Run forward passes on a worker thread, so the event loop keeps queueing requests
    while a batch computes (large models), or inline on the loop (small models, where
    the thread hop costs more than the forward). Unset: decided per model version from
    its warm-up, on a thread when one row takes longer than 1 ms."""
    workers: str | None = None
    """Server processes sharing the port (SO_REUSEPORT), each with its own batcher and
    copy of the models, under one parent that replaces a worker that dies and serves
    one metrics page for all; ``auto``: one per CPU this process may use (its CPU
    affinity, capped by a cgroup CPU quota such as a Kubernetes CPU limit). Unset: this
    process serves alone."""
    loader: str | None = None
    """Custom model loader ``module:function`` (folder -> LoadedModel); default: fleetmind
    checkpoints."""

    def validate(self) -> None:
        """Raise ConfigError naming the first setting that cannot work."""
        checks = [
            (0 <= self.port <= 65535, f"port={self.port} must be within 0..65535"),
            (
                self.http_port is None or 0 <= self.http_port <= 65535,
                f"http_port={self.http_port} must be within 0..65535",
            ),
            (
                self.http_port is None or self.http_port == 0 or self.http_port != self.port,
                f"http_port={self.http_port} is the gRPC port too; give HTTP a port of its own",
            ),
            (
                self.http_body_timeout_s > 0,
                f"http_body_timeout_s={self.http_body_timeout_s} must be > 0",
            ),
            (self.max_batch_size >= 1, f"max_batch_size={self.max_batch_size} must be >= 1"),
            (
                self.max_queue_delay_us >= 0,
                f"max_queue_delay_us={self.max_queue_delay_us} must be >= 0",
            ),
            (self.max_queue >= 1, f"max_queue={self.max_queue} must be >= 1"),
            (
                self.max_pending_calls is None or self.max_pending_calls >= 2,
                f"max_pending_calls={self.max_pending_calls} must be >= 2",
            ),
            (self.max_wait_ms >= 0, f"max_wait_ms={self.max_wait_ms} must be >= 0 (0: off)"),
            (self.max_message_mib >= 1, f"max_message_mib={self.max_message_mib} must be >= 1"),
            (
                self.max_request_rows is None or self.max_request_rows >= 1,
                f"max_request_rows={self.max_request_rows} must be >= 1",
            ),
            (self.grace_s >= 0, f"grace_s={self.grace_s} must be >= 0"),
            (
                self.max_connection_age_s is None or self.max_connection_age_s > 0,
                f"max_connection_age_s={self.max_connection_age_s} must be > 0",
            ),
            (self.torch_threads >= 1, f"torch_threads={self.torch_threads} must be >= 1"),
            (
                self.reload_interval_s is None or self.reload_interval_s > 0,
                f"reload_interval_s={self.reload_interval_s} must be > 0",
            ),
        ]
        checks += [
            (
                (self.tls_cert is None) == (self.tls_key is None),
                "TLS needs both --tls-cert and --tls-key",
            ),
            (
                (self.metrics_tls_cert is None) == (self.metrics_tls_key is None),
                "metrics TLS needs both --metrics-tls-cert and --metrics-tls-key",
            ),
            (
                self.tls_client_ca is None or self.tls_cert is not None,
                "mutual TLS (--tls-client-ca) needs --tls-cert and --tls-key too",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self.worker_count()

    def worker_count(self) -> int | None:
        """How many worker processes ``workers`` asks for (None: serve in this process)."""
        if self.workers is None:
            return None
        text = str(self.workers).strip()
        if text == "auto":
            return usable_cpus()
        if not text.isascii() or not text.isdigit() or int(text) < 1:
            raise ConfigError(f"workers={self.workers!r} must be a whole number >= 1 or 'auto'")
        return int(text)
