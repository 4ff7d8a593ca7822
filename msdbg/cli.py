"""Command-line entry point. Imports nothing heavy until a subcommand runs (``msdbg --help`` stays fast)."""

from __future__ import annotations

import argparse
import os
import sys

from msdbg import __version__

EXIT_BAD_INPUT = 2
LISTEN = "--listen"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="msdbg", description="Debugger with watchpoints for MindSpore training (graph mode, CPU/GPU/Ascend).")
    parser.add_argument("--version", action="version", version=f"msdbg {__version__}")
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")

    run = sub.add_parser("run", help="run a training script under the debugger",
                         description="Run SCRIPT as __main__ with capture on; evaluate watchpoints at each step end.")
    _add_command_options(run)
    run.add_argument("--batch", action="store_true", help="no prompt: run commands, train to the end, report")
    run.add_argument("--dump-dir", metavar="DIR", help="where MindSpore dumps (default: a private temp dir, removed at exit)")
    run.add_argument(LISTEN, nargs="?", const="unix", metavar="ADDRESS",
                     help="run at full speed with an agent waiting for 'msdbg attach' (a Unix socket by PID, or "
                          "--listen=tcp:127.0.0.1:PORT with a printed token; the address only after '=')")
    run.add_argument("--keep-steps", metavar="K", type=_positive_int, default=2,
                     help="keep only the last K step folders of each graph (default 2)")
    _add_record_options(run)
    run.add_argument("--graph-mode", action="store_true",
                     help="run the script in graph mode (MindSpore's default is PyNative), so its steps are captured "
                          "as graphs; a set_context(mode=PYNATIVE_MODE) in the script is ignored")
    run.add_argument("--no-pynative", dest="pynative", action="store_false",
                     help="do not record PyNative calls (graph capture only; a PyNative training is then not checked)")
    run.add_argument("script", metavar="SCRIPT", help="the training script")
    run.add_argument("script_args", metavar="ARGS", nargs=argparse.REMAINDER, help="arguments for the script")

    check = sub.add_parser("check", help="evaluate watchpoints on an existing MindSpore dump directory",
                           description="Check every rank, graph and iteration of a dump written by MindSpore.")
    attach = sub.add_parser("attach", help="attach to a training started with --listen or msdbg.enable()",
                            description="Open the debugger on a running training, as gdb -p does.")
    attach.add_argument("target", metavar="TARGET", help="the training's PID, or tcp:HOST:PORT")
    attach.add_argument("--token", help=argparse.SUPPRESS)  # refused: see _dispatch
    attach.add_argument("--token-file", metavar="FILE",
                        help="the token of a tcp listener, in a file only you can read (default: MSDBG_TOKEN, "
                             "else the token file the training wrote, for the same user)")
    attach.add_argument("--batch", action="store_true", help="run the commands, print the hits so far, detach")
    _add_command_options(attach)

    demo = sub.add_parser("demo", help="list the bundled demos, or run one under the debugger",
                          description="Run a bundled training with one planted cause, its watchpoints loaded.")
    demo.add_argument("name", metavar="NAME", nargs="?", help="the demo to run (none: list them)")
    _add_command_options(demo)
    demo.add_argument("--batch", action="store_true", help="no prompt: train to the end and report")
    _add_record_options(demo)

    compare = sub.add_parser("compare", help="compare two dumps node by node and find where they first part ways",
                             description="Pair the tensors of two dump trees (A is the reference) and report, per "
                                         "step, the first nodes out of tolerance and why. Exit 1 when they diverge.")
    compare.add_argument("run_a", metavar="A", help="dump tree of the reference run")
    compare.add_argument("run_b", metavar="B", help="dump tree of the run compared with it")
    compare.add_argument("--steps", metavar="SPEC", default="all",
                         help="A's iterations to compare: 'all' or e.g. '0|5-8|100-120'")
    compare.add_argument("--rank", metavar="R", type=_non_negative_int, help="compare rank R only")
    compare.add_argument("--rtol", metavar="X", type=float, help="relative tolerance (default 1e-5)")
    compare.add_argument("--atol", metavar="Y", type=float, help="absolute tolerance (default 1e-8)")
    compare.add_argument("--cosine-lt", metavar="C", type=float,
                         help="out of tolerance when cosine similarity < C (instead of --rtol/--atol)")
    compare.add_argument("--json", metavar="OUT", help="write pairs, first divergences and unpaired nodes to OUT")

    check.add_argument("dump_dir", metavar="DUMP_DIR")
    _add_command_options(check)
    check.add_argument("--rank", metavar="R", type=_non_negative_int, help="check rank R only")
    check.add_argument("--steps", metavar="SPEC", default="all",
                       help="iterations to check, MindSpore's syntax: 'all' or e.g. '0|5-8|100-120'")
    _add_record_options(check)

    open_ = sub.add_parser("open", help="open the prompt on a finished run's flight recording (post-mortem)",
                           description="Open a recording written by 'msdbg run' or 'msdbg check': history, plot, "
                                       "info hits and diagnose over every step of the run.")
    open_.add_argument("recording", metavar="PATH", nargs="?",
                       help="the recording (default: the newest in ./.msdbg/runs or $MSDBG_RUNS_DIR)")
    _add_command_options(open_)
    open_.add_argument("--batch", action="store_true", help="no prompt: run the commands, print the report")
    return parser


def _add_record_options(parser: argparse.ArgumentParser) -> None:
    record = parser.add_mutually_exclusive_group()
    record.add_argument("--record", metavar="PATH",
                        help="write the flight recording (every step's statistics, loss and hits) to PATH "
                             "(default: a new file in ./.msdbg/runs named by date, time and script)")
    record.add_argument("--no-record", action="store_true", help="write no flight recording")


def _add_command_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-x", dest="files", metavar="FILE", action="append", default=[],
                        help="read commands from FILE (repeatable)")
    parser.add_argument("-c", dest="commands", metavar="CMD", action="append", default=[],
                        help="run command CMD, e.g. -c 'watch tensor_overflow' (repeatable)")
    parser.add_argument("--json", metavar="OUT", help="write hits as JSON to OUT")
    parser.add_argument("--nx", action="store_true", help="do not read ~/.msdbgrc and ./.msdbgrc")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an internal error in a command (msdbg's own bugs)")


def _non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _whole_number(text: str, low: int) -> int:
    from msdbg.errors import UsageError
    from msdbg.numeric import Range, parse_int

    try:
        return parse_int(text, "value", Range(low=low, integer=True))
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).partition(": ")[2]) from None


def _bare_listen(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``run --listen SCRIPT``: a bare ``--listen`` before the script means the default address, so the script
    is not taken for one (the address is given only as ``--listen=ADDRESS``)."""
    if "run" not in argv:
        return argv
    at = argv.index("run")
    run_parser = next(a for a in parser._subparsers._group_actions if a.dest == "subcommand").choices["run"]
    takes_value = {s for a in run_parser._actions if a.nargs is None and a.option_strings for s in a.option_strings}
    words = list(argv)
    index = at + 1
    while index < len(words) and words[index].startswith("-") and words[index] != "--":
        if words[index] == LISTEN:
            words[index] = f"{LISTEN}=unix"
        elif words[index] in takes_value:
            index += 1
        index += 1
    return words


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and dispatch; every MsdbgError becomes one line on stderr and exit 2."""
    parser = build_parser()
    args = parser.parse_args(_bare_listen(parser, sys.argv[1:] if argv is None else argv))
    if args.subcommand is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    from msdbg.errors import MsdbgError

    if _pauses_on_ctrl_c(args):
        from msdbg.threads import block_interrupts

        block_interrupts()  # before NumPy or MindSpore start a thread: every thread inherits the mask
    try:
        return _dispatch(args)
    except MsdbgError as exc:
        for line in str(exc).splitlines():
            print(f"msdbg: error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _pauses_on_ctrl_c(args: argparse.Namespace) -> bool:
    """A live training with a prompt or an agent: Ctrl-C is taken at step boundaries instead of killing it."""
    return args.subcommand in ("run", "demo") and (not args.batch or bool(getattr(args, "listen", None)))


def _dispatch(args: argparse.Namespace) -> int:
    if args.subcommand == "compare":
        return _compare(args)
    from msdbg.commands import Options
    from msdbg.commands.scripts import CommandSource, read_command_file, startup_files
    from msdbg.frontends import batch
    from msdbg.frontends.capture_run import RunOptions

    Options.debug = args.debug
    commands = []
    for path in [*startup_files(args.nx), *args.files]:
        commands.extend(read_command_file(path))
    commands.extend(CommandSource(text) for text in args.commands)
    if args.subcommand == "check":
        return batch.check_dump(args.dump_dir, commands, args.json, rank=args.rank, steps=args.steps,
                                record=_record_path(args, args.dump_dir))
    if args.subcommand == "open":
        from msdbg.frontends.postmortem import open_recording

        return open_recording(args.recording, commands, args.batch, args.json)
    if args.subcommand == "attach":
        from msdbg.errors import UsageError
        from msdbg.remote.client import attach

        if args.token is not None:
            raise UsageError("--token: refused, a token on the command line is visible to every user of this "
                             "machine (ps, /proc/PID/cmdline); give it with MSDBG_TOKEN=... or --token-file FILE")
        return attach(args.target, args.token_file, commands, args.batch, args.json)
    if args.subcommand == "demo":
        from msdbg.frontends import demos

        if args.name is None:
            print(demos.listing())
            return 0
        script, watch_file = demos.demo_files(args.name)
        demo_commands = read_command_file(watch_file) if watch_file else []
        options = RunOptions(script, [], demo_commands + commands, args.json, record=_record_path(args, script))
    else:
        options = RunOptions(args.script, args.script_args, commands, args.json, args.dump_dir, args.keep_steps,
                             record=_record_path(args, args.script), graph_mode=args.graph_mode,
                             pynative=args.pynative)
        if os.environ.get("MS_ROLE") == "MS_SCHED":
            # msrun starts its scheduler with the same command; it trains nothing, so it runs without capture
            # (and writes no report that could replace rank 0's)
            from msdbg.capture.runner import run_script

            return run_script(options.script, options.script_args)
    if getattr(args, "listen", None):
        from msdbg.frontends.listen import run_listening

        return run_listening(options, None if args.listen == "unix" else args.listen)
    if args.batch:
        return batch.run_batch(options)
    from msdbg.frontends.live import run_interactive

    return run_interactive(options)


def _record_path(args: argparse.Namespace, source: str) -> str | None:
    """Where this run's flight recording goes: --record, else a new file in the runs folder; None: --no-record."""
    if getattr(args, "no_record", False):
        return None
    if getattr(args, "record", None):
        return args.record
    from msdbg.numeric import is_ascii_int
    from msdbg.store.recorder import default_path

    rank = os.environ.get("RANK_ID", "")  # ranks under a launcher start together: one recording each
    return default_path(source.rstrip("/"), suffix=f"-rank{rank}" if is_ascii_int(rank) else "")


def _compare(args: argparse.Namespace) -> int:
    from msdbg.engine.pairmetrics import Tolerance
    from msdbg.frontends.compare import compare_command

    tolerance = Tolerance.from_options(args.rtol, args.atol, args.cosine_lt)
    return compare_command(args.run_a, args.run_b, steps=args.steps, rank=args.rank, tolerance=tolerance,
                           json_out=args.json)


if __name__ == "__main__":
    sys.exit(main())
