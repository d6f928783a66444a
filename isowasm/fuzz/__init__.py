"""Differential fuzzing, in the shape of wasmtime's fuzz crate:

- `generators`: the program generator (Hypothesis strategies and a seeded
  direct path over the same AST);
- `oracles`: compilation and the signature of a failed comparison;
- `shrinking`: AST edits and the greedy shrinking loop;
- `regressions`: a finding written as a compliance-format regression case;
- `campaign`: workers, resumable campaign state, the `isowasm fuzz` command.
"""

from isowasm.fuzz.campaign import Campaign, Worker, cli_fuzz, parse_duration, parse_shard
from isowasm.fuzz.oracles import compile_wat, signature_of

__all__ = ["Campaign", "Worker", "cli_fuzz", "compile_wat", "parse_duration", "parse_shard",
           "signature_of"]
