"""Capture: make MindSpore dump every step and tell msdbg when a step ended."""
