"""Kernels generated at run time: written to a cache directory, compiled by numba.

IPFilter's specialised matchers and the fused push paths are Python source
made for one configuration.  They are written to a file named by a hash of
their text (so numba's ``cache=True`` can store their machine code next to it,
and the next process loads it in milliseconds) and imported from there.

Compiling takes numba a second or more.  :class:`BackgroundCompile` does it
in a child process, which fills the on-disk cache while the router keeps
forwarding with its ordinary kernels; the router then loads the result from
the cache without stalling.  ``CLICKOS_COMPILE_CHILD=0`` forbids the child:
only kernels compiled before are loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from types import ModuleType
from typing import Any

import numpy as np


def cache_dir(kind: str) -> str:
    """A writable directory for generated ``kind`` modules (``$CLICKOS_CACHE_DIR``,
    else ``~/.cache/clickos``, else the temporary directory)."""
    base = os.environ.get("CLICKOS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "clickos")
    path = os.path.join(base, kind)
    try:
        os.makedirs(path, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    path = os.path.join(tempfile.gettempdir(), f"clickos-{kind}-{os.getuid()}")
    os.makedirs(path, exist_ok=True)
    return path


def write_source(kind: str, prefix: str, source: str) -> tuple[str, str]:
    """Write ``source`` (once) to the cache; returns (file path, module name)."""
    digest = hashlib.sha1(source.encode()).hexdigest()[:20]
    path = os.path.join(cache_dir(kind), f"{prefix}_{digest}.py")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    return path, f"clickos_{prefix}_{digest}"


def import_file(path: str, name: str) -> ModuleType:
    """Import the generated module at ``path`` as ``name`` (once per process)."""
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(path)
        module = importlib.util.module_from_spec(spec)
        # numba's cache finds the module again by name when it loads compiled code
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


# -- compiling in a child process ------------------------------------------------------------------

def describe_args(args: tuple[Any, ...]) -> list[Any]:
    """A JSON description of sample arguments: enough to build ones of the same
    numba types in another process."""
    out: list[Any] = []
    for a in args:
        if isinstance(a, np.ndarray):
            out.append({"dtype": a.dtype.str, "ndim": a.ndim})
        elif isinstance(a, (bool, np.bool_)):
            out.append({"bool": bool(a)})
        elif isinstance(a, (int, np.integer)):
            out.append({"int": int(a)})
        else:
            raise TypeError(f"cannot describe argument {type(a).__name__}")
    return out


def _sample(desc: list[Any]) -> list[Any]:
    args: list[Any] = []
    for d in desc:
        if "dtype" in d:
            shape = (1,) * d["ndim"]
            args.append(np.zeros(shape, np.dtype(d["dtype"])))
        elif "bool" in d:
            args.append(d["bool"])
        else:
            args.append(d["int"])
    return args


def _marker(path: str, func: str, desc: list[Any]) -> str:
    """The file saying ``func`` of ``path`` was compiled for these argument types."""
    key = hashlib.sha1(json.dumps([func, desc, sys.version, _numba_version()]).encode()).hexdigest()[:16]
    return f"{path}.{key}.ok"


def _numba_version() -> str:
    import numba as nb

    return str(nb.__version__)


def compile_in_child(path: str, name: str, func: str, desc: list[Any]) -> None:
    """Entry point of the child: import the module and compile ``func`` for the
    described argument types, which stores the machine code in numba's cache;
    then leave a marker so later processes load it at once."""
    module = import_file(path, name)
    fn = getattr(module, func)
    args = _sample(desc)
    fn.compile(tuple(_numba_type(a) for a in args))
    with open(_marker(path, func, desc), "w") as f:
        f.write("compiled\n")


def _numba_type(a: Any) -> Any:
    import numba as nb

    return nb.typeof(a)


class BackgroundCompile:
    """Compile ``func`` of a generated module for the types of ``sample_args``
    in a child process; :meth:`result` is None until it is done, then the
    compiled function (loaded from numba's cache), or False if it failed."""

    def __init__(self, path: str, name: str, func: str, sample_args: tuple[Any, ...]) -> None:
        self.path, self.name, self.func = path, name, func
        self.sample_args = sample_args
        self._result: Any = None
        self.proc: subprocess.Popen[bytes] | None = None
        desc = describe_args(sample_args)
        if os.path.exists(_marker(path, func, desc)):
            # compiled before (by an earlier child): loading takes milliseconds
            self._load()
            return
        if os.environ.get("CLICKOS_COMPILE_CHILD", "1") == "0":
            # (sandboxed instances: a compiler process would count against their
            # memory and process limits) only kernels compiled before are used
            self._result = False
            return
        code = ("import json, sys; from clickos.packet.codegen import compile_in_child; "
                "compile_in_child(sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, path, name, func, json.dumps(desc)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def _load(self) -> None:
        try:
            fn = getattr(import_file(self.path, self.name), self.func)
            fn(*self.sample_args)   # loads the compiled machine code from the cache
            self._result = fn
        except Exception:  # noqa: BLE001 - a generated kernel that fails is simply not used
            self._result = False

    def result(self) -> Any:
        if self._result is not None or self.proc is None:
            return self._result
        if self.proc.poll() is None:
            return None
        ok = self.proc.returncode == 0
        self.proc = None
        if not ok:
            self._result = False
            return False
        self._load()
        return self._result

    def cancel(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
