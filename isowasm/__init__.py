"""isowasm: differential verification of transformer-executable WebAssembly
machines. The machine itself is specified in the `spec` package."""

__version__ = "0.1.0"
