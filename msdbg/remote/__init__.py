"""Attach to a running training: an agent in the training process, a client in ``msdbg attach``."""
