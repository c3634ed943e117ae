"""One update of a group of learners: exchange counts and statistics, then averaged steps.

Every learner of a :class:`~fleetmind.runtime.learner.collective.LearnerGroup` calls
this with its own batch; the learners exchange their step counts, finished episodes
and normaliser deltas (merged rank by rank, so all hold identical statistics), then
update with gradients averaged across the group. A learner without data takes part
with an empty batch. An update that diverges is not rolled back here: the group stops
together (the run raises ``DivergedError``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.runtime.learner.collective import LearnerGroup
from fleetmind.runtime.learner.session import Batch

if TYPE_CHECKING:
    from fleetmind.runtime.learner.core import LearnerCore

IDLE_PAUSE_S = 0.5
"""Group mode: pause after an update in which no learner had data."""


async def train_shared(
    core: LearnerCore, batch: Batch, group: LearnerGroup, stop: bool
) -> dict[str, float]:
    """One update of the group: exchange counts and statistics, then averaged steps."""
    joined = core.chunks.join()
    delta = RunningMeanStd(joined.shape) if joined is not None else None
    episodes: list[tuple[float, int]] = []
    for chunk in batch.chunks:
        if delta is not None and chunk.obs_stats is not None:
            delta.merge(chunk.obs_stats)
        episodes.extend((e.team_return, e.length) for e in chunk.episodes)
    steps = sum(c.env_steps for c in batch.chunks)
    t0 = time.monotonic()
    shared, deltas = await asyncio.to_thread(group.share, steps, stop, delta, episodes)
    core.timings["exchange"] += time.monotonic() - t0
    for part in deltas:  # rank by rank: the same floating-point result everywhere
        core.merge_stats(part)
    for ret, length in shared.episodes:
        core.stats.add(ret, length)
    core.group_stop = shared.stop
    if shared.env_steps == 0:  # no learner had data: no update anywhere
        if not shared.stop:
            await asyncio.sleep(IDLE_PAUSE_S)  # do not spin while every actor is gone
        return {}
    trajectories = core.chunks.per_agent(batch.chunks) if batch.chunks else core.chunks.empty()
    t0 = time.monotonic()
    metrics = await asyncio.to_thread(core.update_shared, trajectories)
    core.timings["learn"] += time.monotonic() - t0
    core.env_steps += shared.env_steps
    return core.finish_update(metrics, batch)
