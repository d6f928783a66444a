"""Hypothesis profiles for the conformance suite.

Importing this module registers the profiles and loads the one named by
ISOWASM_HYPOTHESIS_PROFILE (default `ci`):

  ci        fast, for every push: CI_EXAMPLES programs per backend
  nightly   NIGHTLY_EXAMPLES programs per backend, longer shrinking
  dev       a handful, for editing the generator

Failing examples are kept in a directory database, ISOWASM_HYPOTHESIS_DB
(default `.hypothesis/` at the repository root), and replayed first on the
next run; pytest-xdist workers share it safely. For a fixed sequence of
examples pass `--hypothesis-seed=N` to pytest.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parent.parent
PROFILE = os.environ.get("ISOWASM_HYPOTHESIS_PROFILE", "ci")
DB_PATH = os.environ.get("ISOWASM_HYPOTHESIS_DB") or str(ROOT / ".hypothesis")

CI_EXAMPLES = 100
NIGHTLY_EXAMPLES = 5000
DEV_EXAMPLES = 10

_common = dict(
    deadline=None,
    database=DirectoryBasedExampleDatabase(DB_PATH),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example],
    print_blob=True,
)

settings.register_profile("ci", max_examples=CI_EXAMPLES, **_common)
settings.register_profile("nightly", max_examples=NIGHTLY_EXAMPLES, **_common)
settings.register_profile("dev", max_examples=DEV_EXAMPLES, **_common)

if PROFILE not in ("ci", "nightly", "dev"):
    raise RuntimeError(f"ISOWASM_HYPOTHESIS_PROFILE={PROFILE!r}: expected ci, nightly or dev")
settings.load_profile(PROFILE)


def examples_budget() -> int:
    """max_examples of the loaded profile."""
    return settings.default.max_examples
