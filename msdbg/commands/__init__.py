"""The command language. Importing this package registers every command."""

from msdbg.commands import compare, display, help, inspect, overtime, scripts, stepping, watch  # noqa: F401  (registration)
from msdbg.commands.registry import COMMANDS, Options, all_names, execute, lookup, run_line, split_line

__all__ = ["COMMANDS", "Options", "all_names", "execute", "lookup", "run_line", "split_line"]
