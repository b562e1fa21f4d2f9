"""The element registry, built from the element classes themselves.

Every module under ``clickos.elements`` is imported once; every concrete
Element subclass found there is registered under its Click name.  There is no
hand-kept list to fall out of date.
"""

from __future__ import annotations

import importlib
import pkgutil

from clickos.core.element import Element

_registry: dict[str, type[Element]] | None = None
# Modules that failed to import, with the reason; the test suite asserts this stays
# empty, while a running router simply lacks those classes.
import_errors: dict[str, str] = {}


def _walk(cls: type[Element]) -> list[type[Element]]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_walk(sub))
    return out


def load_all() -> dict[str, type[Element]]:
    """Import every element module and return {Click name: class}."""
    global _registry
    if _registry is not None:
        return _registry
    import clickos.elements as pkg

    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".", onerror=lambda name: None):
        try:
            importlib.import_module(info.name)
        except Exception as e:  # noqa: BLE001 - one broken module must not take down the rest
            import_errors[info.name] = f"{type(e).__name__}: {e}"
    reg: dict[str, type[Element]] = {}
    for cls in _walk(Element):
        if cls.__dict__.get("register", True) is False:
            continue
        if not cls.__module__.startswith("clickos."):
            continue
        reg[cls.class_name()] = cls
    _registry = dict(sorted(reg.items()))
    return _registry


def lookup(name: str) -> type[Element] | None:
    return load_all().get(name)


def class_names() -> list[str]:
    return list(load_all())
