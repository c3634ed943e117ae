"""Team algorithms (MAPPO, IPPO): config, networks and input layout, the team PPO
learner, loading a trained team."""
