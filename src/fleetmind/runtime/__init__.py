"""Training: one process or many, the same parts.

- ``parts``, ``collector``, ``trainer``, ``local``: a run's env, learner and
  statistics, the one collector, the one run loop, and training in this process.
- ``state``, ``run_dir``, ``evaluate``: checkpoints, run directories, evaluation.
- ``actor/``: an actor process (its source of experience, its learner client).
- ``learner/``: the learner service (sessions, batches, weights, learner groups).
- ``launch/``: starting a learner and its actors on this machine.
"""
