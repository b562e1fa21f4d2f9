"""Fast start for the Click-compatible programs: a C launcher and a warm zygote.

See launcher.c for the launcher and zygote.py for the server that forks one
child per `click` run.
"""

from __future__ import annotations

from collections.abc import Callable


def programs() -> dict[str, Callable[[list[str]], int]]:
    from clickos.cli import click_buildtool_main, click_flatten_main, click_main

    return {"click": click_main, "click-flatten": click_flatten_main, "click-buildtool": click_buildtool_main}


def dispatch(prog: str, argv: list[str]) -> int:
    """Run one of the Click-compatible programs in this process."""
    fn = programs().get(prog)
    if fn is None:
        import sys

        print(f"clickos.launch: unknown program '{prog}'", file=sys.stderr)
        return 1
    return fn(argv)
