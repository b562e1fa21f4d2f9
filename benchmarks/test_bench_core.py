"""pytest-benchmark versions of the core benchmark (not part of `make test`).

Run: .venv/bin/python -m pytest benchmarks -q
Each round pushes 200,000 packets of the 60-byte frame through
InfiniteSource -> Counter -> AverageCounter -> Discard in-process; the rate is
printed by `clickos bench core`, which also measures Click's C++ driver.
"""

from __future__ import annotations

import pytest

from clickos.bench.cli import core_config
from clickos.core.errors import ErrorHandler
from clickos.core.master import Master
from clickos.core.router import Router

N = 200_000


def _run(burst: int) -> int:
    errh = ErrorHandler()
    r = Router.from_text(core_config(burst, N), "bench", errh, master=Master())
    assert r is not None
    r.activate(errh)
    r.master.driver()
    r.master.close()
    return int(r.call_read("c.count", errh) or 0)


@pytest.mark.parametrize("burst", [256, 1])
def test_core_chain(benchmark, burst):
    assert benchmark(_run, burst) == N
