"""The learner service: sessions, batches, updates, weight versions, learner groups."""
