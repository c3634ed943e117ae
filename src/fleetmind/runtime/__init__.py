"""Training: one process or many, the same parts.

- ``parts``, ``collector``, ``chunk_format``: a run's env, learner and statistics,
  the one collector, and how its chunks are built and read.
- ``local``: training in this process (the learner loop and one actor, joined by
  the in-process client of ``learner/in_process``).
- ``state``, ``run_dir``, ``evaluate``: checkpoints, run directories, evaluation.
- ``actor/``: an actor (its loop, its source of experience, its push pipeline).
- ``learner/``: the learner: its core (sessions, batches, updates), the endpoint
  transports serve, the run loop, weights, learner groups, the in-process client.
- ``launch/``: starting a learner and its actors on this machine.
"""
