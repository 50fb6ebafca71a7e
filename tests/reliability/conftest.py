"""Reliability tests: the ``--slow`` scale and the tally printed at the end of the run."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # tests import the tally as ``from tally import record``

import tally  # noqa: E402


def pytest_configure(config):
    tally.set_scale(10 if config.getoption("slow", default=False) else 1)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = tally.format_table()
    if not lines:
        return
    terminalreporter.section("reliability tally")
    for line in lines:
        terminalreporter.write_line(line)
