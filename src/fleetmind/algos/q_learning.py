"""``--algo q_learning``: tabular Q-learning (see fleetmind.algos.tabular_learner)."""

from fleetmind.algos.tabular_learner import make_spec

SPEC = make_spec("q_learning", sarsa=False)
