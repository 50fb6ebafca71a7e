"""The tally itself: counts accumulate per category and print as one table with totals."""
import tally


def test_counts_accumulate_and_print_with_totals(monkeypatch):
    monkeypatch.setattr(tally, "_counts", {})
    tally.record("feeds", tried=10, clean=4)
    tally.record("feeds", tried=5, clean=1, escapes=0)
    tally.record("graphs", tried=3, clean=0, garbage=0)
    assert tally.rows() == [("feeds", {"tried": 15, "clean": 5, "escapes": 0, "garbage": 0, "markers": 0}),
                            ("graphs", {"tried": 3, "clean": 0, "escapes": 0, "garbage": 0, "markers": 0})]
    lines = tally.format_table()
    assert lines[0].split() == ["category", "tried", "clean", "escapes", "garbage", "markers"]
    assert lines[-1].split() == ["total", "18", "5", "0", "0", "0"]


def test_scaled_follows_the_slow_option(pytestconfig):
    factor = 10 if pytestconfig.getoption("slow") else 1
    assert tally.scaled(7) == 7 * factor
