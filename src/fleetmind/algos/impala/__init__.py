"""IMPALA: config, learner and the V-trace targets."""
