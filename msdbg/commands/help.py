"""help: generated from the registry."""

from __future__ import annotations

from msdbg.commands.registry import COMMANDS, command, lookup
from msdbg.session import Session


@command("help", "help [COMMAND]", "List commands, or show one command's usage.")
def help_(session: Session, args: list[str]) -> str:
    if args:
        entry = lookup(args[0])
        aliases = f"  (aliases: {', '.join(entry.aliases)})" if entry.aliases else ""
        return f"{entry.usage}{aliases}\n  {entry.summary}"
    width = max(len(name) for name in COMMANDS)
    return "\n".join(f"{name:<{width}}  {COMMANDS[name].summary}" for name in sorted(COMMANDS))
