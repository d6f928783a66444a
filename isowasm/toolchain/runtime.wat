;; The isowasm runtime: helper functions for the i32 operations the machine
;; lacks (see lowering.py for which op goes where). The toolchain appends the
;; helpers a program calls to its machine code; a lowered op becomes
;; `call <helper>` with the operands on the stack, the result left there.
;;
;; Restricted to the machine's native ops (add, sub, comparisons, select,
;; eqz, locals, globals) plus structured control, so this module compiles
;; without lowering (the toolchain refuses anything else here).
;;
;; Every algorithm is bit-serial over at most 32 bits: a bit is read at the
;; top with `x <s 0` and the value shifted left with `x + x`. The hot ones
;; (mul, div_u, and) are unrolled, each doubling folded into the test that
;; reads its bit (local.tee), and entered past the leading zero bits of the
;; operand that decides the length (a dispatch on its magnitude, or $norm
;; and a br_table). Costs are machine steps of the lowered op (call and
;; return included) on its worst operands; conformance/test_lowering.py
;; holds them to a bound, ci/bench_lowering.py records them.
;;
;; Globals are the toolchain's reserved globals, placed after the program's
;; own: the memory size for bounds checks and memory.size/memory.grow, two
;; values helpers hand back besides their result, and (last, so the others
;; keep their indices) the size WebAssembly itself lets memory.grow reach.
;; Imports from "isowasm" are traps: each call becomes `halt <code>`, the
;; code of the trap named after "trap_" in spec/machine.yaml.
(module
  (import "isowasm" "trap_div_zero" (func $trap_div_zero))
  (import "isowasm" "trap_int_overflow" (func $trap_int_overflow))
  (import "isowasm" "trap_memory_limit" (func $trap_memory_limit))
  (global $mem_bytes (mut i32) (i32.const 0))   ;; current memory size in bytes
  (global $mem_pages (mut i32) (i32.const 0))   ;; current memory size in pages
  (global $mem_max (mut i32) (i32.const 0))     ;; pages the machine's memory.grow may reach
  (global $rem (mut i32) (i32.const 0))         ;; remainder left by $div_u
  (global $lz (mut i32) (i32.const 0))          ;; leading zeros found by $norm
  (global $wasm_max (mut i32) (i32.const 0))    ;; pages WebAssembly's memory.grow may reach

  ;; a * b: shift-and-add over b's bits, MSB first, unrolled: r = 2r + (the
  ;; top bit of b shifted left by 31 - p ? a : 0), the doubling of b folded
  ;; into its test. b is the smaller operand: below 2^16 (2^8) it is shifted
  ;; left by 15 (23) first and the walk enters at bit 15 (7). 13 steps per
  ;; bit: ~440 at worst, ~300 for b < 2^16, ~210 for b < 2^8.
  (func $mul (export "mul") (param $a i32) (param $b i32) (result i32)
    (local $r i32)
    (if (i32.lt_u (local.get $a) (local.get $b))
      (then (local.set $r (local.get $a)) (local.set $a (local.get $b)) (local.set $b (local.get $r))
            (local.set $r (i32.const 0))))
    (block $b7
      (block $b15
        (block $b31
          (br_if $b31 (i32.ge_u (local.get $b) (i32.const 0x10000)))
          (if (i32.eqz (local.get $b)) (then (return (i32.const 0))))
          local.get $b
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.set $b
          (br_if $b15 (i32.ge_u (local.get $b) (i32.const 0x800000)))
          local.get $b
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.set $b
          (br $b7))
        ;; bit 31, then 30..16
        local.get $a i32.const 0 local.get $b i32.const 0 i32.lt_s select
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
        local.set $r)
      local.get $r
      local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
      local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
      local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
      local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
      local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
      local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
      local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
      local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
      local.set $r)
    local.get $r
    local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
    local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
    local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
    local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
    local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
    local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
    local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add
    local.tee $r local.get $r i32.add local.get $a i32.const 0 local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.lt_s select i32.add)

  ;; a /u b, remainder into $rem. Restoring division, MSB first: r = 2r + bit
  ;; of a; if r >= b then r -= b and the quotient bit is 1. Quotient bits are
  ;; shifted into a from the right as a's own bits leave at the top, so after
  ;; 32 doublings a is the quotient. a's leading zero bits are skipped
  ;; ($norm, then a br_table into the unrolled steps: r stays 0 and the
  ;; quotient bits 0 while they pass). b >= 2^31 is done apart (quotient 0
  ;; or 1), which keeps 2r + 1 < 2^32 in the steps. 15 steps per bit plus 8
  ;; per quotient bit set: ~790 at worst, ~330 for a < 1000.
  (func $div_u (export "div_u") (param $a i32) (param $b i32) (result i32)
    (local $r i32) (local $n i32)
    (if (i32.eqz (local.get $b)) (then (call $trap_div_zero)))
    (if (i32.lt_s (local.get $b) (i32.const 0))
      (then
        (local.set $n (i32.ge_u (local.get $a) (local.get $b)))
        (global.set $rem (i32.sub (local.get $a) (select (local.get $b) (i32.const 0) (local.get $n))))
        (return (local.get $n))))
    (if (i32.lt_u (local.get $a) (local.get $b))    ;; also catches a = 0
      (then (global.set $rem (local.get $a)) (return (i32.const 0))))
    (local.set $a (call $norm (local.get $a)))
    (block $e31 (block $e30 (block $e29 (block $e28 (block $e27 (block $e26 (block $e25 (block $e24
    (block $e23 (block $e22 (block $e21 (block $e20 (block $e19 (block $e18 (block $e17 (block $e16
    (block $e15 (block $e14 (block $e13 (block $e12 (block $e11 (block $e10 (block $e9 (block $e8
    (block $e7 (block $e6 (block $e5 (block $e4 (block $e3 (block $e2 (block $e1 (block $e0
    (br_table $e0 $e1 $e2 $e3 $e4 $e5 $e6 $e7 $e8 $e9 $e10 $e11 $e12 $e13 $e14 $e15 $e16 $e17 $e18 $e19 $e20 $e21 $e22 $e23 $e24 $e25 $e26 $e27 $e28 $e29 $e30 $e31
      (global.get $lz)))
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end)
    local.get $r local.get $r i32.add local.get $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.set $a
    local.tee $r local.get $b i32.ge_u
    if local.get $r local.get $b i32.sub local.set $r local.get $a i32.const 1 i32.add local.set $a end
    (global.set $rem (local.get $r))
    (local.get $a))

  ;; x << clz(x) for x != 0, with clz(x) left in $lz: a binary search over
  ;; 16, 8, 4, 2, 1 leading zero bits, doubling (unrolled) when they are all
  ;; zero. Lets a loop skip x's leading zero bits in ~150 steps at worst
  ;; instead of ~11 per bit.
  (func $norm (param $x i32) (result i32)
    (local $t i32) (local $z i32)
    (if (i32.lt_u (local.get $x) (i32.const 0x10000))
      (then
        local.get $x
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.set $x
        (local.set $z (i32.add (local.get $z) (i32.const 16)))))
    (if (i32.lt_u (local.get $x) (i32.const 0x1000000))
      (then
        local.get $x
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.set $x
        (local.set $z (i32.add (local.get $z) (i32.const 8)))))
    (if (i32.lt_u (local.get $x) (i32.const 0x10000000))
      (then
        local.get $x
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.set $x
        (local.set $z (i32.add (local.get $z) (i32.const 4)))))
    (if (i32.lt_u (local.get $x) (i32.const 0x40000000))
      (then
        local.get $x
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.set $x
        (local.set $z (i32.add (local.get $z) (i32.const 2)))))
    (if (i32.lt_u (local.get $x) (i32.const 0x80000000))
      (then
        local.get $x
        local.tee $t local.get $t i32.add
        local.set $x
        (local.set $z (i32.add (local.get $z) (i32.const 1)))))
    (global.set $lz (local.get $z))
    (local.get $x))

  (func $rem_u (export "rem_u") (param $a i32) (param $b i32) (result i32)
    (drop (call $div_u (local.get $a) (local.get $b)))
    (global.get $rem))

  ;; Signed division on magnitudes (|INT_MIN| = 2^31 is fine unsigned);
  ;; the quotient is negated when the signs differ. Traps as wasm: b = 0
  ;; first, then INT_MIN / -1.
  (func $div_s (export "div_s") (param $a i32) (param $b i32) (result i32)
    (local $q i32)
    (if (i32.eqz (local.get $b)) (then (call $trap_div_zero)))
    (if (i32.eq (local.get $a) (i32.const 0x80000000))
      (then (if (i32.eq (local.get $b) (i32.const -1)) (then (call $trap_int_overflow)))))
    (local.set $q (call $div_u (call $abs (local.get $a)) (call $abs (local.get $b))))
    (select (i32.sub (i32.const 0) (local.get $q)) (local.get $q)
            (i32.ne (i32.lt_s (local.get $a) (i32.const 0)) (i32.lt_s (local.get $b) (i32.const 0)))))

  ;; The remainder has the sign of a; INT_MIN % -1 = 0 (no trap, as wasm).
  (func $rem_s (export "rem_s") (param $a i32) (param $b i32) (result i32)
    (drop (call $div_u (call $abs (local.get $a)) (call $abs (local.get $b))))
    (select (i32.sub (i32.const 0) (global.get $rem)) (global.get $rem)
            (i32.lt_s (local.get $a) (i32.const 0))))

  (func $abs (param $a i32) (result i32)
    (select (i32.sub (i32.const 0) (local.get $a)) (local.get $a)
            (i32.lt_s (local.get $a) (i32.const 0))))

  ;; a & b, unrolled: bit p of the result is set when bit p of both is,
  ;; read at the top of a and b shifted left by 31 - p: (a <s 0) >u (b >=s 0),
  ;; each doubling folded into its test (local.tee). a is the smaller
  ;; operand: below 2^16 (2^8) its top 16 (24) bits are zero, so both are
  ;; shifted left by 15 (23) first and the walk enters at bit 15 (7).
  ;; 17 steps per bit: ~580 at worst, ~400 for a < 2^16, ~310 for a < 2^8.
  (func $and (export "and") (param $a i32) (param $b i32) (result i32)
    (local $r i32)
    (if (i32.lt_u (local.get $b) (local.get $a))
      (then (local.set $r (local.get $a)) (local.set $a (local.get $b)) (local.set $b (local.get $r))
            (local.set $r (i32.const 0))))
    (block $b7
      (block $b15
        (block $b31
          (br_if $b31 (i32.ge_u (local.get $a) (i32.const 0x10000)))
          (if (i32.eqz (local.get $a)) (then (return (i32.const 0))))
          local.get $a
          local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add
          local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add
          local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add
          local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add
          local.set $a
          local.get $b
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.set $b
          (br_if $b15 (i32.ge_u (local.get $a) (i32.const 0x800000)))
          local.get $a
          local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add
          local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add  local.tee $a local.get $a i32.add
          local.set $a
          local.get $b
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add  local.tee $b local.get $b i32.add
          local.set $b
          (br $b7))
        ;; bit 31, then 30..16
        i32.const 0x80000000 i32.const 0
        local.get $a i32.const 0 i32.lt_s local.get $b i32.const 0 i32.ge_s i32.gt_u select
        i32.const 0x40000000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x20000000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x10000000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x8000000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x4000000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x2000000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x1000000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x800000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x400000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x200000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x100000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x80000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x40000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x20000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        i32.const 0x10000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
        local.set $r)
      local.get $r
      i32.const 0x8000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
      i32.const 0x4000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
      i32.const 0x2000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
      i32.const 0x1000 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
      i32.const 0x800 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
      i32.const 0x400 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
      i32.const 0x200 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
      i32.const 0x100 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
      local.set $r)
    local.get $r
    i32.const 0x80 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
    i32.const 0x40 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
    i32.const 0x20 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
    i32.const 0x10 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
    i32.const 0x8 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
    i32.const 0x4 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
    i32.const 0x2 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add
    i32.const 0x1 i32.const 0 local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s local.get $b local.get $b i32.add local.tee $b i32.const 0 i32.ge_s i32.gt_u select i32.add)

  ;; a | b = a + b - (a & b)
  (func $or (export "or") (param $a i32) (param $b i32) (result i32)
    (i32.sub (i32.add (local.get $a) (local.get $b)) (call $and (local.get $a) (local.get $b))))

  ;; a ^ b = a + b - 2 (a & b)
  (func $xor (export "xor") (param $a i32) (param $b i32) (result i32)
    (local $c i32)
    (local.set $c (call $and (local.get $a) (local.get $b)))
    (i32.sub (i32.add (local.get $a) (local.get $b)) (i32.add (local.get $c) (local.get $c))))

  ;; Shifts and rotates by a run-time count are not here: compile.py
  ;; generates them per program (GENERATED), a dispatch on the count into
  ;; lowering.py's constant expansions.

  ;; clz(a) = the number of p in 0..31 with a <u 2^p (a has fewer than p+1
  ;; significant bits), summed unrolled. ~135 steps.
  (func $clz (export "clz") (param $a i32) (result i32)
    (i32.lt_u (local.get $a) (i32.const 0x1))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x2)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x4)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x8)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x10)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x20)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x40)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x80)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x100)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x200)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x400)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x800)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x1000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x2000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x4000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x8000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x10000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x20000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x40000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x80000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x100000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x200000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x400000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x800000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x1000000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x2000000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x4000000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x8000000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x10000000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x20000000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x40000000)))
    (i32.add (i32.lt_u (local.get $a) (i32.const 0x80000000))))

  ;; ctz(a): double a until it is 0; that takes 32 - ctz(a) doublings (the
  ;; lowest set bit must travel past bit 31). ~300 steps.
  (func $ctz (export "ctz") (param $a i32) (result i32)
    (local $n i32)
    (local.set $n (i32.const 32))
    (block $done
      (br_if $done (i32.eqz (local.get $a)))
      (loop $next
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br_if $next (local.tee $a (i32.add (local.get $a) (local.get $a))))))
    (local.get $n))

  ;; popcnt(a): the top bit, then 31 times: double a and add its new top
  ;; bit (the doubling folded into the test), unrolled. ~225 steps.
  (func $popcnt (export "popcnt") (param $a i32) (result i32)
    (if (i32.eqz (local.get $a)) (then (return (i32.const 0))))
    local.get $a i32.const 0 i32.lt_s
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add
    local.get $a local.get $a i32.add local.tee $a i32.const 0 i32.lt_s i32.add)

  ;; memory.grow(n): the old size in pages; -1 when the size would pass
  ;; $wasm_max (the module's maximum, else 65536 pages: WebAssembly fails the
  ;; grow too); the trap memory_limit when it stays within $wasm_max but
  ;; would pass $mem_max (the machine's 160 pages, limits.memory_bytes),
  ;; where wasm would succeed. $old <= $mem_max <= $wasm_max, so neither
  ;; difference wraps. The new pages are already zero: the bounds checks
  ;; kept every access below the old size. Bytes = pages * 65536 by 16
  ;; doublings.
  (func $mem_grow (export "mem_grow") (param $n i32) (result i32)
    (local $old i32)
    (local.set $old (global.get $mem_pages))
    (if (i32.gt_u (local.get $n) (i32.sub (global.get $wasm_max) (local.get $old)))
      (then (return (i32.const -1))))
    (if (i32.gt_u (local.get $n) (i32.sub (global.get $mem_max) (local.get $old)))
      (then (call $trap_memory_limit)))
    (global.set $mem_pages (i32.add (local.get $old) (local.get $n)))
    global.get $mem_pages
    local.tee $n local.get $n i32.add  local.tee $n local.get $n i32.add
    local.tee $n local.get $n i32.add  local.tee $n local.get $n i32.add
    local.tee $n local.get $n i32.add  local.tee $n local.get $n i32.add
    local.tee $n local.get $n i32.add  local.tee $n local.get $n i32.add
    local.tee $n local.get $n i32.add  local.tee $n local.get $n i32.add
    local.tee $n local.get $n i32.add  local.tee $n local.get $n i32.add
    local.tee $n local.get $n i32.add  local.tee $n local.get $n i32.add
    local.tee $n local.get $n i32.add  local.tee $n local.get $n i32.add  ;; 16 doublings
    global.set $mem_bytes
    (local.get $old))
)
