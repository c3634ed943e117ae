"""Proximal Policy Optimization: config, learner and its numpy gradient step."""
