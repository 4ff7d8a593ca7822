"""Terminal charts, layout and small parsers: pure functions, no MindSpore."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msdbg.commands.ranges import OPEN_END, numbers_in, parse_range
from msdbg.errors import UsageError
from msdbg.repl.chart import columns, line_chart, sparkline
from msdbg.repl.layout import hanging, table, wrap
from msdbg.suggest import unknown


def _points(values, bad=()):
    return [(i, None if i in bad else v, i in bad) for i, v in enumerate(values)]


def test_columns_keep_each_columns_range_so_a_spike_shows():
    values = [1.0] * 1000
    values[637] = 50.0
    cols = columns(_points(values), 40)
    assert len(cols) == 40 and cols[0].first == 0 and cols[-1].last == 999
    assert sum(c.last - c.first + 1 for c in cols) == 1000, "every step in exactly one column"
    assert max(c.high for c in cols) == 50.0 and min(c.low for c in cols) == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.none()), min_size=1, max_size=500), st.integers(40, 200))
def test_line_chart_fits_the_width_and_spans_the_finite_values(values, width):
    points = [(i, v, v is None) for i, v in enumerate(values)]
    chart = line_chart(points, width=width, title="t").splitlines()
    assert all(len(line) <= width for line in chart[1:])
    finite = [v for v in values if v is not None]
    rows = [line for line in chart if "┤" in line]
    if finite:
        assert float(rows[0].split("┤")[0]) == pytest.approx(max(finite), rel=1e-5, abs=1e-6)
        assert float(rows[-1].split("┤")[0]) == pytest.approx(min(finite), rel=1e-5, abs=1e-6)
    assert ("x: NaN/Inf at" in chart[-1]) == (len(finite) < len(values))


def test_nonfinite_steps_are_marked_under_their_column():
    chart = line_chart(_points([float(i) for i in range(100)], bad={30, 31}), width=60, title="loss").splitlines()
    assert chart[-1] == "x: NaN/Inf at 2 steps: 30, 31"
    marks = chart[-2]
    axis = next(line for line in chart if "└" in line)
    column = marks.index("x") - axis.index("└") - 1
    plotted = len(axis) - axis.index("└") - 1
    assert abs(column / plotted - 30 / 100) < 0.05


def test_sparkline_width_and_marks():
    assert sparkline(_points([0.0, 7.0]), 10) == "▁█"
    line = sparkline(_points([float(i % 7) for i in range(300)], bad={150}), 30)
    assert len(line) == 30 and line.count("!") == 1


def test_wrap_breaks_at_spaces_then_slashes_and_keeps_table_spacing():
    text = "  evidence: Sub Default/network-WithLossCell/_backbone-Net/fc1-Dense/Sub-op0 feeds the loss"
    lines = wrap(text, 40).splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert " ".join(line.strip() for line in lines).replace("/ ", "/") == text.strip()
    row = "  name      op     " + "x" * 70
    assert wrap(row, 60).splitlines()[0].startswith("  name      op"), "runs of spaces survive"
    assert hanging("ab  ", "one two three four", 12) == "ab  one two\n    three\n    four"


def test_table_aligns_and_shortens_the_name_column_from_the_left():
    rows = [["Default/network/a-very-long-scope/MatMul-op0", "MatMul", "12"], ["x", "Parameter", "4"]]
    text = table(["name", "op", "size"], rows, 40, right=(2,)).splitlines()
    assert all(len(line) <= 40 for line in text)
    assert text[1].startswith("…") and "MatMul-op0" in text[1]
    assert text[1].rindex("12") + 2 == len(text[1]) and text[2].endswith(" 4")


def test_ranges_and_numbers():
    assert parse_range("5") == (5, 5) and parse_range("2-4") == (2, 4)
    assert parse_range("3-") == (3, OPEN_END) and parse_range("-3") == (0, 3)
    for bad in ("4-2", "a", "1-2-3", "²", "-", ""):
        with pytest.raises(UsageError):
            parse_range(bad)
    assert numbers_in(["1-2", "5"], [1, 2, 3, 5], "watchpoint") == [1, 2, 5]
    with pytest.raises(UsageError, match="no watchpoint 7; existing: 1, 2"):
        numbers_in(["7"], [1, 2], "watchpoint")


def test_did_you_mean():
    message = unknown("condition", "tensor_overfow", ["tensor_overflow", "weight_overflow", "tensor_range"])
    assert message == ("unknown condition 'tensor_overfow'; did you mean tensor_overflow or weight_overflow? "
                       "accepted: tensor_overflow, tensor_range, weight_overflow")
    assert unknown("command", "zzz", ["step", "stats"], label="known") == "unknown command 'zzz'; known: stats, step"
    assert "did you mean continue? known: c, continue" in unknown(
        "command", "contnue", ["continue", "c"], label="known", canonical={"c": "continue"})
