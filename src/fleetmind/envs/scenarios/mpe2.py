"""PettingZoo's MPE2 games (the ``mpe2`` package, ``pip install fleetmind[marl]``).

Registered by entry point, so that nothing of mpe2 is imported until a team is
built; ``fleetmind envs`` lists them only when mpe2 is installed. All use
discrete actions and 25 steps per episode.
"""

from __future__ import annotations

from fleetmind.envs.env_entry import EnvEntry, team_entry

_DISCRETE = {"max_cycles": 25, "continuous_actions": False}

ENTRIES: tuple[EnvEntry, ...] = (
    team_entry(
        "mpe2/simple_reference_v3",
        "mpe2.simple_reference_v3:parallel_env",
        family="mpe2 (cooperative)",
        kwargs=_DISCRETE,
        package="mpe2",
    ),
    team_entry(
        "mpe2/simple_speaker_listener_v4",
        "mpe2.simple_speaker_listener_v4:parallel_env",
        family="mpe2 (cooperative, heterogeneous)",
        kwargs=_DISCRETE,
        package="mpe2",
    ),
    team_entry(
        "mpe2/simple_spread_v3",
        "mpe2.simple_spread_v3:parallel_env",
        family="mpe2 (cooperative)",
        kwargs={"N": 3, "local_ratio": 0.5, **_DISCRETE},
        package="mpe2",
    ),
)
"""The mpe2 ids, as teams."""
