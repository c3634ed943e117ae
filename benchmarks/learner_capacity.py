"""How far one learner scales: latency-bound actors, and the chunks one learner ingests.

``latency``: env steps/s of N actor processes (1 env each) whose environment step
*waits* ``--step-ms`` (``LatencyCartPole-v1``: CartPole whose step sleeps, standing
for a remote simulator that answers in milliseconds at a CPU cost of microseconds).
Ratios are against linear (N x the 1-actor rate); the CPU and memory (PSS) of the
actors and the learner's CPU say what limits the largest counts. The actors keep
observation statistics, as in training, so every chunk's delta is checked::

    .venv/bin/python benchmarks/learner_capacity.py latency --actors 1 2 4 8 16 32 64
    .venv/bin/python benchmarks/learner_capacity.py latency --mode async --step-ms 2

``ingest``: one learner driven by pusher processes that send synthetic but valid
chunks (real CartPole data collected once, every episode ending on the chunk's last
step so the chunk can be sent again; the real client and codec). Sync: ``--sessions``
sessions each send one chunk per version and fetch every version, as sync actors do.
Async: the pushers offer ``--rates`` chunks/s in all (fetching each new version per
session); the learner's accepted chunks/s stops growing where it saturates. Where the
learner's time goes is timed inside it (decode, validation, update, publishing the
weights; the rest of its CPU is gRPC and the event loop)::

    .venv/bin/python benchmarks/learner_capacity.py ingest --mode sync async
    .venv/bin/python benchmarks/learner_capacity.py ingest --mode async --rates 200 800 3200

Every mode takes ``--json`` (one JSON line per row instead of the table).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym

LATENCY_ENV = "LatencyCartPole-v1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class LatencyCartPole(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole whose every step waits ``step_ms`` (sleeps: a remote simulator's latency)."""

    def __init__(self, step_ms: float = 5.0) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.step_s = step_ms * 1e-3

    def step(self, action: Any) -> Any:
        time.sleep(self.step_s)
        return self.env.step(action)


def register_latency_env(step_ms: float) -> None:
    if LATENCY_ENV in gym.registry:
        del gym.registry[LATENCY_ENV]
    gym.register(
        LATENCY_ENV, entry_point=LatencyCartPole, max_episode_steps=500, kwargs={"step_ms": step_ms}
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of a process in MiB: PSS splits the pages a fork shares with its parent."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        values[name] = int(rest.split()[0]) / 1024
    return values["Rss"], values["Pss"]


class ServedLearner:
    """A :class:`LearnerRun` served on a unix socket from a thread of this process."""

    def __init__(self, tmp: str, env_id: str, envs: int, mode: str, **train: Any) -> None:
        from fleetmind.algos.impala.learner import ImpalaConfig
        from fleetmind.algos.ppo.config import PPOConfig
        from fleetmind.runtime.config import TrainConfig
        from fleetmind.runtime.learner.run_setup import RunSetup
        from fleetmind.runtime.local import prepare_new

        config = TrainConfig(
            env_id=env_id, run_dir=Path(tmp) / "run", steps=10**9, envs=envs,
            log_interval_s=1.0, checkpoint_interval_s=3600.0, **train,
        )  # fmt: skip
        algo: Any = PPOConfig(update_epochs=1)
        if mode == "async":
            config.algo, algo = "impala", ImpalaConfig()
        self.setup = RunSetup(*prepare_new(config, algo))
        self.mode = mode
        self.socket = Path(tmp) / "l.sock"
        self.address = f"unix:{self.socket}"

    def start(self) -> None:
        """Build the learner and serve it (after every fork: gRPC threads do not fork)."""
        from fleetmind.rpc.server import ServerConfig
        from fleetmind.runtime.dist_config import DistConfig
        from fleetmind.runtime.learner.run import LearnerRun

        # A loaded machine can starve an actor for seconds: it must not be dropped.
        dist = DistConfig(mode=self.mode, actor_timeout_s=60.0)  # type: ignore[arg-type]
        self.run = LearnerRun(self.setup, dist, progress=False)
        self.core = self.run.core
        ready = threading.Event()
        loop: list[asyncio.AbstractEventLoop] = []

        def on_bound(address: str) -> None:
            loop.append(asyncio.get_running_loop())
            ready.set()

        serve = self.run.serve(self.address, ServerConfig(reflection=False), on_bound)
        self._thread = threading.Thread(target=lambda: asyncio.run(serve))
        self._thread.start()
        if not ready.wait(60):
            raise SystemExit("the learner did not start serving within 60 s")
        self._loop = loop[0]

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self.run.stop.set)
        self._thread.join(60)


def wait_for(test: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not test():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} within {timeout_s:.0f} s; the machine may be overloaded")
        time.sleep(0.1)


# -- latency: actors whose env step waits --------------------------------------------


def collected(core: Any) -> int:
    """Env steps the learner received from its live actors (trained or dropped as stale)."""
    return sum(s.env_steps for s in core.sessions.values())


def latency_point(actors: int, args: argparse.Namespace) -> dict[str, Any]:
    """Env steps/s of ``actors`` actor processes (1 env each) over ``args.seconds``."""
    from fleetmind.runtime.launch.actor_pool import ActorPool
    from fleetmind.runtime.launch.forked import can_fork

    register_latency_env(args.step_ms)
    if not can_fork():
        raise SystemExit("latency: actors must be forks of this process (they inherit its env)")
    with tempfile.TemporaryDirectory() as tmp:
        served = ServedLearner(tmp, LATENCY_ENV, actors * args.envs, args.mode, normalize_obs=True)
        pool = ActorPool(actors, args.envs, Path(tmp) / "actors")
        pool.start(served.address, fork=True)  # forks wait for the socket
        served.start()
        core = served.core
        try:
            wait_for(
                lambda: len(core.sessions) >= actors and core.version >= 3,
                args.warmup_s,
                f"{actors} actors did not register and train 3 versions",
            )
            pids = pool.pids()
            s0, v0, t0 = collected(core), core.version, time.monotonic()
            trained0, dropped0 = core.env_steps, core.dropped_chunks
            a0, l0 = sum(cpu_seconds(p) for p in pids), time.process_time()
            learn0 = core.timings["learn"]
            time.sleep(args.seconds)
            elapsed = time.monotonic() - t0
            steps, versions = collected(core) - s0, core.version - v0
            trained, dropped = core.env_steps - trained0, core.dropped_chunks - dropped0
            actor_cpu = sum(cpu_seconds(p) for p in pids) - a0
            learner_cpu = time.process_time() - l0
            learn_s = core.timings["learn"] - learn0
            mem = [memory_mib(p) for p in pool.pids()]
            restarts = sum(pool.restarts)
            if restarts:
                for log in sorted((Path(tmp) / "actors").glob("*.log")):
                    print(log.name, log.read_text()[-1500:], file=sys.stderr)
                raise SystemExit(f"{restarts} actor(s) exited during the point (logs above)")
        finally:
            served.stop()
            pool.close()
    return {
        "actors": actors,
        "actor_restarts": restarts,
        "mode": args.mode,
        "step_ms": args.step_ms,
        "steps_per_s": steps / elapsed,
        "envs_per_actor": args.envs,
        "ideal_steps_per_s": actors * 1e3 / args.step_ms,
        "trained_steps_per_s": trained / elapsed,
        "dropped_chunks": dropped,
        "versions_per_s": versions / elapsed,
        "update_ms": 1e3 * learn_s / max(versions, 1),
        "learner_cpu": learner_cpu / elapsed,
        "actors_cpu": actor_cpu / elapsed,
        "actor_cpu_per_step_us": 1e6 * actor_cpu / max(steps, 1),
        "actor_rss_mib": sum(m[0] for m in mem) / len(mem),
        "actors_pss_mib": sum(m[1] for m in mem),
    }


def in_fresh_process(what: str, args: argparse.Namespace, **point: Any) -> dict[str, Any]:
    """One point in a child interpreter: this process forks actors and pushers, and a
    process that has served gRPC must not fork again (gRPC's threads do not survive)."""
    params = {k: v for k, v in vars(args).items() if k not in ("what", "mode")} | point
    done = subprocess.run(
        [sys.executable, __file__, "point", what, json.dumps(params)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join(line for line in done.stderr.splitlines() if "fork_posix" not in line)
        raise SystemExit(f"{what} point {point} failed (exit {done.returncode}):\n{tail[-2000:]}")
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


def run_point(what: str, params: dict[str, Any]) -> None:
    """The ``point`` command: one point of ``what``, printed as one JSON line."""
    args = argparse.Namespace(**params)
    if what == "latency":
        row = latency_point(args.actors, args)
    else:
        row = ingest_point(args.mode, args.sessions, args.rate, args)
    print(json.dumps(row), flush=True)


def latency(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n in args.actors:
        row = in_fresh_process("latency", args, actors=n, mode=args.mode)
        base = rows[0] if rows else row
        row["linear"] = row["steps_per_s"] / (base["steps_per_s"] / base["actors"] * n)
        rows.append(row)
        if not args.json:
            print(
                f"{args.mode} step {args.step_ms:g} ms  actors={n:>2}  "
                f"env steps/s={row['steps_per_s']:7.0f} (sleep-bound ideal "
                f"{row['ideal_steps_per_s']:6.0f})  fraction of linear={row['linear']:.2f}  "
                f"trained {row['trained_steps_per_s']:7.0f}/s, {row['dropped_chunks']} chunks "
                f"dropped  "
                f"versions/s={row['versions_per_s']:5.1f}  update {row['update_ms']:5.1f} ms  "
                f"CPU (cores): learner {row['learner_cpu']:.2f}, actors {row['actors_cpu']:.2f} "
                f"({row['actor_cpu_per_step_us']:.0f} us/step)  memory: "
                f"{row['actor_rss_mib']:.0f} MiB RSS per actor, {row['actors_pss_mib']:.0f} MiB "
                f"PSS all actors",
                flush=True,
            )
    return rows


# -- ingest: how many chunks one learner takes ------------------------------------------

COUNTERS = ("pushed", "overloaded", "weights")


def loopable_chunk(client: Any, session: Any, envs: int) -> Any:
    """One real CartPole chunk whose episodes all end on its last step: the learner's
    episode ledger is back at the start after it, so the chunk can be sent again."""
    from fleetmind.runtime.actor.source import ActorSource
    from fleetmind.runtime.learner.ledger import EpisodeLedger, summed

    source = ActorSource(session, envs)
    source.discard_delta()
    weights, _ = client.weights(session, -1, 30.0)
    source.load(weights)
    source.collect(weights.version)
    chunk = source.chunk(session, {})
    source.close()
    if chunk.obs_stats is not None:
        raise SystemExit("ingest runs without observation statistics (normalize_obs=False)")
    for t in chunk.trajectories:
        t.truncated[-1] = True
    chunk.episodes = summed(EpisodeLedger.fresh(envs, 1), chunk, scaled=False)[1]
    return chunk


def stamped(chunk: Any, session: Any, seq: int, version: int) -> Any:
    """``chunk`` as session ``session``'s chunk ``seq``, acted with ``version``."""
    from dataclasses import replace

    return replace(
        chunk,
        trajectories=[replace(t, policy_version=version) for t in chunk.trajectories],
        session_id=session.session_id,
        incarnation=session.incarnation,
        session_secret=session.session_secret,
        seq=seq,
    )


def pusher(
    address: str, sessions: int, envs: int, mode: str, rate: float, counts: Any, stop: Any
) -> int:
    """A forked process: ``sessions`` sessions pushing the one loopable chunk.

    sync: each session pushes one chunk per version, then every session fetches the
    next version (as sync actors do); async: chunks at ``rate`` per second, round robin
    over the sessions, each fetching a version newer than its own when a reply shows one.
    """
    from fleetmind.core.errors import OverloadedError
    from fleetmind.rpc.channel import ChannelConfig
    from fleetmind.rpc.learner_client import GrpcLearnerClient

    client = GrpcLearnerClient(address, ChannelConfig(), None, 30.0)
    infos = [client.register(f"p{os.getpid()}-{k}", "CartPole-v1", envs, os.getpid())
             for k in range(sessions)]  # fmt: skip
    chunk = loopable_chunk(client, infos[0], envs)
    have, seq = [infos[0].version] * sessions, [0] * sessions
    next_at = time.monotonic()
    while not stop.is_set():
        for k, info in enumerate(infos):
            if mode == "async":
                next_at = max(next_at + 1.0 / rate, time.monotonic() - 0.1)
                time.sleep(max(0.0, next_at - time.monotonic()))
            try:
                reply = client.push([stamped(chunk, info, seq[k], have[k])])
            except OverloadedError:
                counts[1] += 1
                time.sleep(0.005)
                continue
            if reply.done or stop.is_set():
                break
            seq[k] += 1
            counts[0] += 1
            if mode == "async" and reply.version > have[k]:
                weights, _ = client.weights(info, have[k], 0.0)
                have[k], counts[2] = (weights.version if weights else have[k]), counts[2] + 1
        if mode == "sync":
            for k, info in enumerate(infos):
                weights, _ = client.weights(info, have[k], 5.0)
                if weights is not None:
                    have[k], counts[2] = weights.version, counts[2] + 1
    client.close()
    return 0


class Timers(dict[str, float]):
    """Wall seconds, CPU seconds (of the calling thread) and calls of functions of the
    learner, wrapped in place."""

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        for key in (name, f"{name}_cpu", f"{name}_calls"):
            self.setdefault(key, 0.0)

        def timed(*a: Any, **kw: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **kw)
            finally:
                self[name] += time.perf_counter() - t
                self[f"{name}_cpu"] += time.thread_time() - c
                self[f"{name}_calls"] += 1

        return timed


def instrument(core: Any, timers: Timers) -> Callable[[], None]:
    """Time decode, validation, accept, update and publish; the undo function."""
    from fleetmind.rpc import learner_service

    decode = learner_service.chunk_from_pb  # type: ignore[attr-defined]
    setattr(learner_service, "chunk_from_pb", timers.wrap("decode", decode))  # noqa: B010
    core.checks.verify = timers.wrap("validate", core.checks.verify)
    accept = timers.wrap("accept", core.accept)

    def counted(session: Any, chunk: Any) -> bool:
        taken = bool(accept(session, chunk))
        timers["accepted"] = timers.get("accepted", 0.0) + taken
        return taken

    core.accept = counted
    core.guard.update = timers.wrap("update", core.guard.update)
    core.publish = timers.wrap("publish", core.publish)

    def undo() -> None:
        setattr(learner_service, "chunk_from_pb", decode)  # noqa: B010

    return undo


def ingest_point(mode: str, sessions: int, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """What one learner takes from ``sessions`` sessions over ``args.seconds``."""
    from fleetmind.runtime.launch.forked import ForkedChild

    with tempfile.TemporaryDirectory() as tmp:
        served = ServedLearner(tmp, "CartPole-v1", sessions * args.envs, mode, normalize_obs=False)
        ctx = multiprocessing.get_context("fork")
        counts = [ctx.Array("d", len(COUNTERS), lock=False) for _ in range(args.pushers)]
        stop = ctx.Event()
        share = [sessions // args.pushers + (i < sessions % args.pushers)
                 for i in range(args.pushers)]  # fmt: skip
        procs = [
            ForkedChild(
                partial(pusher, served.address, n, args.envs, mode, rate / args.pushers, c, stop),
                Path(tmp) / f"pusher-{i}.log", served.socket,
            )
            for i, (n, c) in enumerate(zip(share, counts, strict=True)) if n
        ]  # fmt: skip
        served.start()
        core, timers = served.core, Timers()
        undo = instrument(core, timers)
        try:
            wait_for(
                lambda: len(core.sessions) >= sessions and core.version >= 3,
                args.warmup_s,
                f"{sessions} sessions did not register and train 3 versions",
            )
            sent0 = [sum(c[i] for c in counts) for i in range(len(COUNTERS))]
            t0, timers0 = time.monotonic(), dict(timers)
            s0, v0, l0 = core.env_steps, core.version, time.process_time()
            p0 = sum(cpu_seconds(p.pid) for p in procs)
            time.sleep(args.seconds)
            elapsed = time.monotonic() - t0
            sent = [sum(c[i] for c in counts) - sent0[i] for i in range(len(COUNTERS))]
            took = {k: v - timers0.get(k, 0.0) for k, v in timers.items()}
            steps, versions = core.env_steps - s0, core.version - v0
            learner_cpu = time.process_time() - l0
            pushers_cpu = sum(cpu_seconds(p.pid) for p in procs) - p0
            latest = core.store.latest() if core.store is not None else None
            weight_bytes = sum(len(m) for m in latest.wire or ()) if latest is not None else 0
        finally:
            stop.set()
            served.stop()
            undo()
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
    chunk_steps = 32 * args.envs
    accepted = took.get("accepted", 0.0)
    timed = sum(took[f"{k}_cpu"] for k in ("decode", "accept", "update", "publish"))
    return {
        "mode": mode,
        "sessions": sessions,
        "envs_per_chunk": args.envs,
        "offered_rate": rate if mode == "async" else float("nan"),
        "pushed_per_s": sent[0] / elapsed,
        "overloaded_per_s": sent[1] / elapsed,
        "accepted_per_s": accepted / elapsed,
        "trained_samples_per_s": steps / elapsed,
        "versions_per_s": versions / elapsed,
        "chunks_per_update": steps / chunk_steps / max(versions, 1),
        "weights_fetched_per_s": sent[2] / elapsed,
        "weight_bytes": weight_bytes,
        "learner_cpu": learner_cpu / elapsed,
        "pushers_cpu": pushers_cpu / elapsed,
        **{f"{k}_ms_per_chunk": per_call(took, k) for k in ("decode", "accept", "validate")},
        **{f"{k}_cpu_ms_per_chunk": per_call(took, f"{k}_cpu", k) for k in ("decode", "accept")},
        "update_ms": per_call(took, "update"),
        "update_cpu_ms": per_call(took, "update_cpu", "update"),
        "publish_ms": per_call(took, "publish"),
        "cpu_decode": took["decode_cpu"] / elapsed,
        "cpu_accept": took["accept_cpu"] / elapsed,
        "cpu_update": took["update_cpu"] / elapsed,
        "cpu_publish": took["publish_cpu"] / elapsed,
        "cpu_other": max(0.0, learner_cpu - timed) / elapsed,
    }


def per_call(took: dict[str, float], key: str, calls: str | None = None) -> float:
    """Milliseconds of ``key`` per call of ``calls`` (default: of ``key`` itself)."""
    return 1e3 * took[key] / max(took[f"{calls or key}_calls"], 1.0)


def ingest(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for mode in args.mode:
        points = (
            [(n, 0.0) for n in args.sessions]
            if mode == "sync"
            else [(args.async_sessions, r) for r in args.rates]
        )
        first: dict[str, Any] | None = None
        for sessions, rate in points:
            row = in_fresh_process("ingest", args, mode=mode, sessions=sessions, rate=rate)
            first = first or row
            scale = sessions / first["sessions"] if mode == "sync" else rate / first["offered_rate"]
            row["linear"] = row["accepted_per_s"] / (first["accepted_per_s"] * scale)
            rows.append(row)
            if not args.json:
                print_ingest(row)
    return rows


def print_ingest(row: dict[str, Any]) -> None:
    offered = (
        f"offered {row['offered_rate']:5.0f}/s, sent {row['pushed_per_s']:6.0f}/s"
        if row["mode"] == "async"
        else f"sessions={row['sessions']:>2}, sent {row['pushed_per_s']:6.0f}/s"
    )
    print(
        f"{row['mode']:5} {offered}  accepted chunks/s={row['accepted_per_s']:6.0f} "
        f"(fraction of linear {row['linear']:.2f}), samples/s={row['trained_samples_per_s']:7.0f} "
        f"trained, overloaded {row['overloaded_per_s']:.0f}/s  versions/s="
        f"{row['versions_per_s']:5.1f} ({row['chunks_per_update']:.1f} chunks each)  "
        f"CPU (cores): learner {row['learner_cpu']:.2f}, pushers {row['pushers_cpu']:.2f}  "
        f"learner per chunk: decode {row['decode_ms_per_chunk']:.3f} ms, accept "
        f"{row['accept_ms_per_chunk']:.3f} ms (validate {row['validate_ms_per_chunk']:.3f})  "
        f"per version: update {row['update_ms']:.1f} ms ({row['update_cpu_ms']:.1f} ms CPU), "
        f"publish {row['publish_ms']:.2f} ms ({row['weight_bytes'] / 1024:.0f} KiB, fetched "
        f"{row['weights_fetched_per_s']:.0f}/s)  learner CPU (cores): decode "
        f"{row['cpu_decode']:.2f}, accept {row['cpu_accept']:.2f}, update "
        f"{row['cpu_update']:.2f}, publish {row['cpu_publish']:.2f}, rest (gRPC, event loop) "
        f"{row['cpu_other']:.2f}",
        flush=True,
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "point":
        run_point(sys.argv[2], json.loads(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    la = sub.add_parser("latency", help="env steps/s of actors whose env step waits")
    la.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    la.add_argument("--step-ms", type=float, default=5.0, help="wait per env step (sleep)")
    la.add_argument("--mode", choices=["sync", "async"], default="async", help="PPO or IMPALA")
    la.add_argument("--seconds", type=float, default=10.0, help="measured window per point")
    la.add_argument("--envs", type=int, default=1,
                    help="env copies per actor, stepped in turn (their waits add up)")  # fmt: skip
    in_ = sub.add_parser("ingest", help="chunks/s one learner accepts")
    in_.add_argument("--mode", choices=["sync", "async"], nargs="+", default=["sync", "async"])
    in_.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 16, 64],
                     help="sync: sessions (each one chunk per version)")  # fmt: skip
    in_.add_argument("--rates", type=float, nargs="+", default=[100, 200, 400, 800, 1600],
                     help="async: chunks/s offered in all")  # fmt: skip
    in_.add_argument("--async-sessions", type=int, default=16,
                     help="async: sessions (an update takes at most this many chunks)")  # fmt: skip
    in_.add_argument("--envs", type=int, default=8, help="env copies per chunk (T = 32)")
    in_.add_argument("--pushers", type=int, default=2, help="pusher processes")
    in_.add_argument("--seconds", type=float, default=8.0, help="measured window per point")
    for p in (la, in_):
        p.add_argument("--warmup-s", type=float, default=120.0, help="longest start-up wait")
        p.add_argument("--json", action="store_true", help="JSON lines instead of the table")
    args = parser.parse_args()
    if args.what == "latency" and (min(args.actors) < 1 or args.step_ms <= 0 or args.envs < 1):
        parser.error("latency: every --actors value and --envs must be >= 1, --step-ms > 0")
    if args.what == "ingest" and (
        min(args.sessions) < 1 or min(args.rates) <= 0 or args.pushers < 1 or args.envs < 1
    ):
        parser.error("ingest: --sessions, --pushers and --envs must be >= 1, --rates > 0")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    rows = latency(args) if args.what == "latency" else ingest(args)
    if args.json:
        for row in rows:
            print(json.dumps(row))


if __name__ == "__main__":
    main()
