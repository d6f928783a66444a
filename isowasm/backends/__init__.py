"""The backend registry: built-in implementations plus plug-ins declared
through the `isowasm.backends` entry-point group.

A backend is named by `module:Class`; it is imported only when used, and a
backend that cannot run here raises BackendUnavailable when constructed.
"""

from __future__ import annotations

import os
from importlib import import_module, metadata

from isowasm.backends.base import Backend, BackendUnavailable, Case

BUILTIN = {
    "reference": "isowasm.backends.reference:ReferenceBackend",
    "wasmtime": "isowasm.backends.wasmtime_backend:WasmtimeBackend",
    # a second, independent oracle (pip install ./ports/fuzz-native)
    "wasmi": "isowasm.backends.wasmi:WasmiBackend",
    "rust": "isowasm.backends.rust:RustBackend",
    "ocaml": "isowasm.backends.ocaml:OcamlBackend",
    "transformer": "isowasm.transformer.engine_backend:EngineBackend",
    "transformer-graph": "isowasm.transformer.backends:GraphBackend",
    "transformer-torch": "isowasm.transformer.backends:TorchBackend",
    # the same weights in onnxruntime, a runtime isowasm did not write
    "transformer-onnx": "isowasm.transformer.onnx_backend:OnnxBackend",
}


def _entry_points() -> dict[str, str]:
    try:
        eps = metadata.entry_points(group="isowasm.backends")
    except Exception:  # pragma: no cover - broken metadata must not hide builtins
        return {}
    return {ep.name: ep.value for ep in eps}


def _env_plugins() -> dict[str, str]:
    """ISOWASM_PLUGINS="name=module:Class,name2=module:Class": backends
    registered for one run without installing anything (tests use it to
    inject deliberately broken implementations)."""
    out = {}
    for item in os.environ.get("ISOWASM_PLUGINS", "").split(","):
        name, _, target = item.strip().partition("=")
        if name and target:
            out[name] = target
    return out


def known_backends() -> dict[str, str]:
    return {**BUILTIN, **_entry_points(), **_env_plugins()}


def get_backend(name: str) -> Backend:
    from isowasm.backends import external

    decl = external.declared().get(name)
    if decl is not None:
        return external.CommandBackend(name, decl)
    spec = known_backends().get(name)
    if spec is None:
        raise BackendUnavailable(f"unknown backend {name!r} (known: {', '.join(known_backends())})")
    mod, _, cls = spec.partition(":")
    try:
        module = import_module(mod)
    except ImportError as e:
        raise BackendUnavailable(f"backend {name!r}: cannot import {mod}: {e}") from None
    return getattr(module, cls)()


def available_backends() -> dict[str, Backend | str]:
    """name -> a ready backend, or the reason it is unavailable."""
    from isowasm.backends import external

    out: dict[str, Backend | str] = {}
    for name in [*known_backends(), *external.declared()]:
        try:
            out[name] = get_backend(name)
        except BackendUnavailable as e:
            out[name] = str(e)
    return out


def default_budget(backends) -> int:
    """The step budget for a run that names none: the least of the backends'
    own defaults (Backend.default_max_steps), else the machine table's."""
    from isowasm.spec import table

    own = [b.default_max_steps for b in backends if getattr(b, "default_max_steps", None)]
    return min(own, default=table.limits()["default_max_steps"])


def required_backends() -> set[str]:
    """Backends that must be available (ISOWASM_REQUIRE_BACKENDS, comma-separated):
    CI sets it so a port that failed to build fails the run instead of being
    skipped."""
    raw = os.environ.get("ISOWASM_REQUIRE_BACKENDS", "")
    return {b.strip() for b in raw.split(",") if b.strip()}


__all__ = ["Backend", "BackendUnavailable", "Case", "get_backend", "available_backends",
           "default_budget", "known_backends", "required_backends"]
