(* The machine's limits (spec/machine.yaml `limits`, MACHINE.md §2-§3).
   `isowasm-ocaml table` prints them so the conformance test can hold this
   file to the YAML. *)

let max_instructions = 1048576
let locals_per_frame = 256
let globals = 256
let call_depth = 4096
let operand_stack = 65536
let memory_bytes = 10485760
let input_bytes = 1048576
let default_max_steps = 100000000
let default_checkpoint_interval = 16384

let all =
  [ "max_instructions", max_instructions;
    "locals_per_frame", locals_per_frame;
    "globals", globals;
    "call_depth", call_depth;
    "operand_stack", operand_stack;
    "memory_bytes", memory_bytes;
    "input_bytes", input_bytes;
    "default_max_steps", default_max_steps ]
