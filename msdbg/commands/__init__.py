"""The command language. Importing this package registers every command."""

from msdbg.commands import compare, display, help, inspect, overtime, scripts, stepping, watch  # noqa: F401  (registration)
from msdbg.commands.registry import COMMANDS, all_names, execute, lookup, split_line

__all__ = ["COMMANDS", "all_names", "execute", "lookup", "split_line"]
