"""Tabular methods: planning on a known model (value and policy iteration), Q-learning and SARSA."""
