"""Deep Q-learning: config, learner, Q-network, replay buffers and the numpy gradient step."""
