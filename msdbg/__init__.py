"""msdbg: an interactive debugger with watchpoints for MindSpore training."""

__version__ = "0.1.0"
