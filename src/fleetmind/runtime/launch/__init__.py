"""Starting a run's processes on this machine: the learner, actors, learner groups."""
