"""``msdbg demo``: the bundled trainings in ``demos/``, each with one planted cause and its watchpoint file."""

from __future__ import annotations

import ast
from pathlib import Path

from msdbg.errors import UsageError

DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "demos"


def demo_dir() -> Path:
    if not DEMO_DIR.is_dir():
        raise UsageError(f"demos: {DEMO_DIR} not found; the demos ship with the source checkout "
                         "(install it with 'pip install -e .')")
    return DEMO_DIR


def available() -> dict[str, str]:
    """Demo name -> the first line of its docstring."""
    demos = {}
    for script in sorted(demo_dir().glob("*.py")):
        docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
        demos[script.stem] = docstring.strip().splitlines()[0] if docstring.strip() else ""
    return demos


def listing() -> str:
    demos = available()
    width = max(map(len, demos), default=0)
    lines = [f"  {name:<{width}}  {summary}" for name, summary in demos.items()]
    return "Demos (msdbg demo NAME [--batch]):\n" + "\n".join(lines)


def demo_files(name: str) -> tuple[str, str | None]:
    """The demo's script and its watchpoint file (if it has one)."""
    demos = available()
    if name not in demos:
        raise UsageError(f"unknown demo {name!r}; available: {', '.join(demos)}")
    script = demo_dir() / f"{name}.py"
    watch_file = script.with_suffix(".msdbg")
    return str(script), str(watch_file) if watch_file.is_file() else None
