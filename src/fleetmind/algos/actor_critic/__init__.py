"""The actor-critic network shared by PPO, IMPALA and the team algorithms, its
serving copy, and the gradient step several learners share."""
