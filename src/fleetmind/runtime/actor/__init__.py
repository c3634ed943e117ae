"""The actor: env copies, a CPU policy copy, and its conversation with a learner."""
