"""Loads spec/machine.yaml: the opcode table, limits and traps that every
implementation is held to. Opcode numbers are the table's order."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

MACHINE_YAML = Path(__file__).with_name("machine.yaml")


@lru_cache(maxsize=1)
def machine() -> dict:
    with open(MACHINE_YAML, encoding="utf-8") as f:
        return yaml.safe_load(f)


def limits() -> dict:
    return machine()["limits"]


def ops() -> list[dict]:
    return machine()["ops"]


def op_names() -> list[str]:
    return [o["name"] for o in ops()]


def traps() -> list[dict]:
    return machine()["traps"]


def trap_names() -> list[str]:
    return [t["name"] for t in traps()]


def trap_by_code() -> dict[int, str]:
    return {t["code"]: t["name"] for t in traps() if t["code"] is not None}


def resource_traps() -> set[str]:
    return {t["name"] for t in traps() if t["resource"]}
