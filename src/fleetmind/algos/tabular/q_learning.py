"""``--algo q_learning``: tabular Q-learning (see fleetmind.algos.tabular.learner)."""

from fleetmind.algos.tabular.learner import make_spec

SPEC = make_spec("q_learning", sarsa=False)
