"""The SUMO back end: sumo-rl's multi-agent ``SumoEnvironment`` as a PettingZoo parallel env.

sumo-rl's own PettingZoo wrappers do not work with PettingZoo 1.27, so this
module wraps the plain multi-agent ``SumoEnvironment`` (one agent per traffic
light, sumo-rl's observation: phase one-hot, min-green flag, lane densities and
queues). It adds what the built-in simulator offers: checked actions, a global
``state()``, the same traffic metrics, a :class:`SignalView` for the baseline
controllers, and recovery when SUMO dies (the step raises
:class:`EnvironmentStepError`; ``reset()`` starts a fresh simulation).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from fleetmind.core.errors import (
    ConfigError,
    EnvironmentStepError,
    InvalidInputError,
    PreconditionError,
)
from fleetmind.envs.scenarios.traffic.config import RewardKind
from fleetmind.envs.scenarios.traffic.metrics import TrafficMetrics, metrics_from_totals
from fleetmind.envs.scenarios.traffic.sumo_network import SumoScenario, bundled_files, check_files
from fleetmind.envs.scenarios.traffic.sumo_setup import (
    SumoBackend,
    import_sumo_rl,
    prepare_sumo,
    stdout_to_stderr,
)
from fleetmind.envs.scenarios.traffic.sumo_signals import SignalLinks, lane_counts
from fleetmind.envs.team import ParallelStep

logger = logging.getLogger(__name__)

_REWARDS = {"wait": "diff-waiting-time", "queue": "queue", "pressure": "pressure"}

# With libsumo there is one SUMO per process: the env whose simulation is running.
_LIBSUMO_OWNER: dict[str, weakref.ref[SumoTrafficEnv]] = {}


@dataclass(frozen=True)
class SumoConfig:
    """A SUMO scenario and how the signals are driven."""

    scenario: SumoScenario = "grid2x2"
    """Bundled sumo-rl network: ``single``, ``grid2x2`` or ``grid4x4``."""
    net_file: Path | None = None
    """A SUMO ``.net.xml`` to use instead of the bundled scenario's network."""
    route_file: Path | None = None
    """A SUMO ``.rou.xml`` to use instead of the bundled scenario's routes."""
    episode_seconds: int = 3600
    """Simulated seconds per episode."""
    delta_time: int = 5
    """Simulated seconds between two decisions."""
    yellow_time: int = 2
    """Seconds of yellow between two green phases."""
    min_green: int = 5
    """Seconds a phase stays green before it may change."""
    reward: RewardKind = "wait"
    """``wait`` (sumo-rl diff-waiting-time), ``queue`` or ``pressure``."""
    backend: SumoBackend = "auto"
    """``libsumo`` (in-process, fast, one simulation per process), ``traci`` (child
    process, recoverable) or ``auto`` (libsumo when installed)."""


def _validate(config: SumoConfig) -> None:
    if config.episode_seconds <= 0 or config.delta_time <= 0:
        raise ConfigError("SUMO episode_seconds and delta_time must be positive")
    if not 0 <= config.yellow_time < config.delta_time:
        raise ConfigError(
            f"SUMO yellow_time={config.yellow_time} must be at least 0 and less than "
            f"delta_time={config.delta_time}"
        )


class SumoTrafficEnv(ParallelEnv[str, np.ndarray, int]):  # type: ignore[misc]  # untyped base
    """Traffic lights of a SUMO network; each is an agent."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "fleetmind_sumo_traffic_v0",
        "render_modes": [],
        "is_parallelizable": True,
    }

    def __init__(self, config: SumoConfig | None = None, env_id: str = "sumo") -> None:
        self.config = config or SumoConfig()
        _validate(self.config)
        self.env_id = env_id
        self.backend = prepare_sumo(self.config.backend)
        net, route = bundled_files(self.config.scenario)
        self.net_file = self.config.net_file or net
        self.route_file = self.config.route_file or route
        self._plans = check_files(self.net_file, self.route_file)
        env_module, self._traci = import_sumo_rl()
        self._errors = _sumo_errors(self._traci)
        self._sumo = self._create(env_module)
        signals = self._sumo.traffic_signals
        self.possible_agents = [str(ts) for ts in self._sumo.ts_ids]
        self.agents: list[str] = []
        self._obs_spaces = {a: _box(signals[a].observation_space) for a in self.possible_agents}
        self._act_spaces = {
            a: gymnasium.spaces.Discrete(signals[a].num_green_phases) for a in self.possible_agents
        }
        state_dim = sum(int(s.shape[0]) for s in self._obs_spaces.values()) + 1
        self.state_space = gymnasium.spaces.Box(0.0, 1.0, (state_dim,), np.float32)
        self._last_obs = {a: np.zeros(s.shape, np.float32) for a, s in self._obs_spaces.items()}
        self._links: dict[str, SignalLinks] = {}
        self._totals = _Totals()
        self.render_mode = None

    def _claim_libsumo(self) -> None:
        """Refuse to start a second in-process SUMO while another env's is running."""
        if self.backend != "libsumo":
            return
        holder = _LIBSUMO_OWNER.get("env")
        owner = holder() if holder is not None else None
        if owner is not None and owner is not self and owner.running:
            raise PreconditionError(
                "libsumo runs one SUMO simulation per process and another env's is running; "
                "close() that env first, or create both with backend='traci'"
            )
        _LIBSUMO_OWNER["env"] = weakref.ref(self)

    @property
    def running(self) -> bool:
        """True while this env holds a live SUMO simulation."""
        return getattr(getattr(self, "_sumo", None), "sumo", None) is not None

    def _create(self, env_module: Any) -> Any:
        cfg = self.config
        self._claim_libsumo()
        try:
            with stdout_to_stderr():
                return env_module.SumoEnvironment(
                    net_file=str(self.net_file),
                    route_file=str(self.route_file),
                    num_seconds=cfg.episode_seconds,
                    delta_time=cfg.delta_time,
                    yellow_time=cfg.yellow_time,
                    min_green=cfg.min_green,
                    reward_fn=_REWARDS[cfg.reward],
                    add_system_info=False,
                    add_per_agent_info=False,
                    sumo_warnings=False,
                    additional_sumo_cmd="--no-step-log",
                )
        except self._errors as exc:
            raise ConfigError(f"SUMO could not load network {str(self.net_file)!r}: {exc}") from exc

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        """sumo-rl's observation box of this signal."""
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Discrete:
        """The green phases of this signal."""
        return self._act_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start a fresh SUMO simulation (``seed`` is SUMO's random seed)."""
        self._abandon()
        self._claim_libsumo()
        try:
            with stdout_to_stderr():
                observations = self._sumo.reset(seed=seed)
            conn = self._sumo.sumo
            signals = self._sumo.traffic_signals
            self._links = {
                a: SignalLinks.read(conn, a, [p.state for p in signals[a].green_phases])
                for a in self.possible_agents
            }
        except self._errors as exc:
            self._abandon()
            raise EnvironmentStepError(f"SUMO failed to start ({exc}); check the network") from exc
        self._totals = _Totals(edges=list(conn.edge.getIDList()))
        self.agents = list(self.possible_agents)
        self._remember(observations)
        return self._observations(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]) -> ParallelStep:
        """Request one green phase per signal and advance ``delta_time`` seconds."""
        if not self.agents:
            raise InvalidInputError("SUMO env: step() after the episode ended; call reset()")
        checked = self._check_actions(actions)
        try:
            observations, rewards, dones, _ = self._sumo.step(checked)
            self._totals.sample(self._sumo.sumo, self.config.delta_time)
        except self._errors as exc:
            at = self._totals.seconds
            self._abandon()
            raise EnvironmentStepError(
                f"SUMO stopped during the episode after {at:.0f} simulated seconds ({exc}); "
                "call reset() to start a new simulation"
            ) from exc
        self._remember(observations)
        agents = self.agents
        done = bool(dones["__all__"])
        reward_dict = {a: float(rewards.get(a, 0.0)) for a in agents}
        infos: dict[str, dict[str, Any]] = {a: {} for a in agents}
        if done:
            summary = self.traffic_metrics().to_dict()
            for info in infos.values():
                info["traffic_metrics"] = summary
        out = (
            self._observations(),
            reward_dict,
            dict.fromkeys(agents, False),
            dict.fromkeys(agents, done),
            infos,
        )
        if done:
            self.agents = []
        return out

    def _check_actions(self, actions: dict[str, int]) -> dict[str, int]:
        checked: dict[str, int] = {}
        for agent, action in actions.items():
            space = self._act_spaces.get(agent)
            if space is None:
                raise InvalidInputError(f"SUMO env: unknown agent {agent!r}")
            try:
                phase = int(action)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"SUMO env: action {action!r} of agent {agent!r} is not a phase number"
                ) from exc
            if not 0 <= phase < int(space.n):
                raise InvalidInputError(
                    f"SUMO env: action {phase} of agent {agent!r} is outside its phase set "
                    f"0..{int(space.n) - 1}"
                )
            checked[agent] = phase
        return checked

    def _remember(self, observations: dict[str, Any]) -> None:
        for agent, obs in observations.items():
            self._last_obs[str(agent)] = np.clip(np.asarray(obs, np.float32), 0.0, 1.0)

    def _observations(self) -> dict[str, np.ndarray]:
        return {a: self._last_obs[a].copy() for a in self.agents}

    def _abandon(self) -> None:
        """Close the simulation, whatever state SUMO is in."""
        if not self.running:
            return
        try:
            self._sumo.close()
        except Exception as exc:  # SUMO may already be gone; nothing left to release
            logger.debug("closing a dead SUMO connection: %s", exc)
        self._sumo.sumo = None
        self.agents = []

    def state(self) -> np.ndarray:
        """Every signal's latest observation in agent order, then the elapsed fraction."""
        elapsed = min(self._totals.seconds / self.config.episode_seconds, 1.0)
        parts = [self._last_obs[a] for a in self.possible_agents]
        return np.append(np.concatenate(parts), np.float32(elapsed)).astype(np.float32)

    def traffic_metrics(self) -> TrafficMetrics:
        """Metrics of the episode so far (see :mod:`.metrics`)."""
        t = self._totals
        return metrics_from_totals(t.waiting_vehicle_s, t.travel_vehicle_s, len(t.seen), t.exited)

    # SignalView, read by the baseline controllers.

    def current_phases(self) -> dict[str, int]:
        """Green phase index of every live signal."""
        return {a: int(self._sumo.traffic_signals[a].green_phase) for a in self.agents}

    def times_in_phase(self) -> dict[str, float]:
        """Seconds since each signal last changed phase (yellow included)."""
        signals = self._sumo.traffic_signals
        return {a: float(signals[a].time_since_last_phase_change) for a in self.agents}

    def phase_queues(self) -> dict[str, np.ndarray]:
        """Halting vehicles on the incoming lanes each green phase serves."""
        halting = lane_counts(self._sumo.sumo, self._links.values(), halting=True)
        return {a: self._links[a].phase_queues(halting) for a in self.agents}

    def phase_pressures(self) -> dict[str, np.ndarray]:
        """Vehicles on incoming minus outgoing lanes of each green phase's links."""
        vehicles = lane_counts(self._sumo.sumo, self._links.values(), halting=False)
        return {a: self._links[a].phase_pressures(vehicles) for a in self.agents}

    def fixed_green_times(self) -> dict[str, list[float]]:
        """Green durations of each signal's program in the network file."""
        return {a: list(self._plans.get(a, [])) for a in self.possible_agents}

    def render(self) -> None:
        """No rendering (use SUMO's GUI directly for pictures)."""
        return None

    def close(self) -> None:
        """Stop SUMO."""
        self._abandon()


@dataclass
class _Totals:
    """Running sums sampled from SUMO after every env step."""

    edges: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    exited: int = 0
    waiting_vehicle_s: float = 0.0
    travel_vehicle_s: float = 0.0
    seconds: float = 0.0

    def sample(self, conn: Any, delta_time: int) -> None:
        """Add one ``delta_time`` of vehicle-seconds (pending insertions count as waiting)."""
        running = list(conn.vehicle.getIDList())
        pending = list(conn.simulation.getPendingVehicles())
        self.seen.update(running)
        self.seen.update(pending)
        halting = sum(int(conn.edge.getLastStepHaltingNumber(e)) for e in self.edges)
        in_system = len(running) + len(pending)
        self.exited = len(self.seen) - in_system
        self.waiting_vehicle_s += (halting + len(pending)) * delta_time
        self.travel_vehicle_s += in_system * delta_time
        self.seconds += delta_time


def _box(space: Any) -> gymnasium.spaces.Box:
    shape = tuple(int(s) for s in space.shape)
    return gymnasium.spaces.Box(0.0, 1.0, shape, np.float32)


def _sumo_errors(traci: Any) -> tuple[type[BaseException], ...]:
    """Exception classes that mean "SUMO failed", in either backend."""
    found: list[type[BaseException]] = [ConnectionError, OSError]
    for holder in (traci, getattr(traci, "exceptions", None)):
        for name in ("FatalTraCIError", "TraCIException"):
            cls = getattr(holder, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
    return tuple(dict.fromkeys(found))
