"""Team algorithms (MAPPO, IPPO, team IMPALA): config, networks and input layout, the
shared team learner with its PPO and V-trace units, loading a trained team."""
