"""Multi-armed bandits: epsilon-greedy, UCB1, Thompson sampling, and their comparison."""
