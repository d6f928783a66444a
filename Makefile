# One entry point for a fresh machine. `make verify` installs everything and
# runs the examples on every backend; `make test` installs everything and
# runs the test suite. Both are idempotent: steps already done are skipped.
SHELL := /bin/bash
PYTHON ?= python3
PIP := $(PYTHON) -m pip
JOBS ?= 2
# CI sets these so a port that failed to build fails the run, not a skip.
REQUIRE ?= reference,wasmtime,wasmi,rust,ocaml,transformer

.PHONY: setup system-deps python-deps rust fuzz-native ocaml engine verify unit-tests test test-slow mutation findings clean

setup: system-deps python-deps rust fuzz-native ocaml engine

# Debian packages: clang/lld build C to wasm32; OCaml and dune build the OCaml port.
system-deps:
	@if command -v clang >/dev/null && command -v wasm-ld >/dev/null && command -v dune >/dev/null && command -v ocamlfind >/dev/null; then \
	  echo "system packages present"; \
	else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q ocaml-nox dune ocaml-findlib clang lld; \
	fi

python-deps:
	$(PIP) install -q -e .

rust: python-deps
	$(PIP) install -q ./ports/rust

# wasm-smith (the second fuzz generator), wasm-shrink and the wasmi oracle
# (backend `wasmi`): the Python module isowasm_fuzz_native. Measured from
# nothing on 2 shared cores: see ports/fuzz-native/README.md.
fuzz-native: python-deps
	$(PIP) install -q ./ports/fuzz-native

# The transformer's Rust engine, and its weights (built once here rather
# than by the first test that needs them).
engine: python-deps
	$(PIP) install -q ./transformer/engine
	$(PYTHON) -m isowasm.transformer.build

ocaml: system-deps
	cd ports/ocaml && dune build 2>&1

verify: setup
	ISOWASM_REQUIRE_BACKENDS=$(REQUIRE) $(PYTHON) -m isowasm.cli verify

# The ports' own unit tests, before the conformance suite: cargo test of the
# Rust port (its lib, parser and machine tests and the CLI binary's) and of
# the engine, and dune test of the OCaml port. A debug build: the `python`
# feature (pyo3) is off by default, so the tests link without libpython and
# share nothing with the release build pip makes; rebuilt only when the
# sources change (measured: 19 s from nothing on 2 cores, 1.4 s after).
unit-tests: system-deps
	cd ports/rust && cargo test -q -j $(JOBS)
	cd transformer/engine && cargo test -q -j $(JOBS)
	cd ports/fuzz-native && cargo test -q -j $(JOBS)
	cd ports/ocaml && dune test --force -j $(JOBS) 2>&1

test: setup unit-tests
	ISOWASM_REQUIRE_BACKENDS=$(REQUIRE) $(PYTHON) -m pytest conformance/ -n $(JOBS) -q

test-slow: setup
	ISOWASM_REQUIRE_BACKENDS=$(REQUIRE) $(PYTHON) -m pytest conformance/ -n $(JOBS) -q -m "slow and not heavy"

# Mutation testing (ci/mutation.py): each component's mutants against its
# fast tests, results/mutation/*.json for `isowasm report`. cargo-mutants
# (crates.io) lists the Rust mutants. MUTATION_ARGS, e.g.
# `--component reference,ocaml-port --max-mutants 100 --time-box 20m`.
MUTATION_ARGS ?= --max-mutants 100 --time-box 20m
mutation: setup
	@command -v cargo-mutants >/dev/null || cargo install -q cargo-mutants --locked
	$(PYTHON) ci/mutation.py $(MUTATION_ARGS)

# The repository's recorded figures (findings/results/*.json, written there by
# a measuring command given --json findings/results/NAME.json) rendered into
# the tracked FINDINGS.md and findings/*.png. The only target that writes
# tracked files: `verify` and `test` write to results/ (ignored).
findings: python-deps
	$(PYTHON) -m isowasm.cli report --results findings/results --out FINDINGS.md

clean:
	rm -rf ports/rust/target ports/fuzz-native/target ports/ocaml/_build transformer/engine/target .hypothesis
