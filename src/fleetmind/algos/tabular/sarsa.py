"""``--algo sarsa``: tabular SARSA (see fleetmind.algos.tabular.learner)."""

from fleetmind.algos.tabular.learner import make_spec

SPEC = make_spec("sarsa", sarsa=True)
