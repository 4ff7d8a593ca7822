"""The command language. Importing this package registers every command."""

from msdbg.commands import compare, help, inspect, scripts, stepping, watch  # noqa: F401  (registration side effect)
from msdbg.commands.registry import COMMANDS, all_names, execute, lookup, split_line

__all__ = ["COMMANDS", "all_names", "execute", "lookup", "split_line"]
