"""``python -m clickos.launch PROG ARGS...``: the launcher's slow path (no zygote)."""

import sys

from clickos.launch import dispatch

if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: python -m clickos.launch click|click-flatten|click-buildtool ARGS...", file=sys.stderr)
        raise SystemExit(2)
    sys.argv = [sys.argv[1]] + sys.argv[2:]
    raise SystemExit(dispatch(sys.argv[0], sys.argv[1:]))
