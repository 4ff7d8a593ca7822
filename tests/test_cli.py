"""The CLI shell: --help without MindSpore, --version, python -m."""

import subprocess
import sys

from conftest import ROOT, run_msdbg


def test_help_does_not_import_mindspore():
    code = ("import sys\nfrom msdbg.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "for sub in ('run', 'check'):\n    try:\n        main([sub, '--help'])\n    except SystemExit:\n        pass\n"
            "print('mindspore' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_version_and_module_entry():
    done = run_msdbg("--version")
    assert done.returncode == 0 and done.stdout.startswith("msdbg ")


def test_no_subcommand_prints_help_and_exits_2():
    done = run_msdbg()
    assert done.returncode == 2 and "run" in done.stdout and "check" in done.stdout
