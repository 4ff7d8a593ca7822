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


def test_demo_lists_demos_with_their_summaries():
    done = run_msdbg("demo")
    assert done.returncode == 0
    assert "nan_log   " in done.stdout or "nan_log  " in done.stdout
    assert "a custom @ms.jit training loop whose loss turns NaN at step 3" in done.stdout


def test_unknown_demo():
    done = run_msdbg("demo", "nope")
    assert done.returncode == 2 and "unknown demo 'nope'; available:" in done.stderr and "nan_log" in done.stderr


def test_demo_runs_with_its_watch_file(tmp_path):
    out = tmp_path / "hits.json"
    done = run_msdbg("demo", "nan_log", "--batch", "--nx", "--json", str(out))
    assert done.returncode == 1
    import json
    document = json.loads(out.read_text())
    assert any(h["first_offending"] and h["op_type"] == "Log" for h in document["hits"])
    roots = [d["rule"] for d in document["diagnosis"] if d["consequence_of"] is None]
    assert roots == ["log_of_nonpositive"]
    assert {d["rule"]: d["consequence_of"] for d in document["diagnosis"]}.get("loss_nonfinite") == "log_of_nonpositive"
    assert document["unexplained"] == []
