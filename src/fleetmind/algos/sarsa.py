"""``--algo sarsa``: tabular SARSA (see fleetmind.algos.tabular_learner)."""

from fleetmind.algos.tabular_learner import make_spec

SPEC = make_spec("sarsa", sarsa=True)
