;; The isowasm runtime: helper functions for the i32 operations the machine
;; lacks (see lowering.py for which op goes where). The toolchain appends the
;; helpers a program calls to its machine code; a lowered op becomes
;; `call <helper>` with the operands on the stack, the result left there.
;;
;; Restricted to the machine's native ops (add, sub, comparisons, select,
;; eqz, locals, globals) plus structured control, so this module compiles
;; without lowering (the toolchain refuses anything else here).
;;
;; Every algorithm is bit-serial with at most 32 iterations: a bit is read
;; at the top with `x <s 0` and the value shifted left with `x + x`.
;; Costs are machine steps of the lowered op (call and return included) on
;; its worst operands; conformance/test_lowering.py holds them to a bound.
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

  ;; a * b: shift-and-add over b's bits, MSB first: r = 2r + (bit ? a : 0).
  ;; b is the smaller operand, and its leading zero bits are skipped ($norm)
  ;; while r is still 0. ~700 steps at worst, ~230 for b < 1000.
  (func $mul (export "mul") (param $a i32) (param $b i32) (result i32)
    (local $r i32) (local $n i32)
    (if (i32.lt_u (local.get $a) (local.get $b))
      (then (local.set $r (local.get $a)) (local.set $a (local.get $b)) (local.set $b (local.get $r))
            (local.set $r (i32.const 0))))
    (if (i32.eqz (local.get $b)) (then (return (i32.const 0))))
    (local.set $b (call $norm (local.get $b)))
    (local.set $n (i32.sub (i32.const 32) (global.get $lz)))
    (loop $next
      (local.set $r (i32.add (i32.add (local.get $r) (local.get $r))
                             (select (local.get $a) (i32.const 0) (i32.lt_s (local.get $b) (i32.const 0)))))
      (local.set $b (i32.add (local.get $b) (local.get $b)))
      (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $r))

  ;; a /u b, remainder into $rem. Restoring division, MSB first: r = 2r + bit
  ;; of a; if r >= b then r -= b and the quotient bit is 1. Quotient bits are
  ;; shifted into a from the right as a's own bits leave at the top, so after
  ;; 32 doublings a is the quotient. Leading zero bits of a are skipped
  ;; ($norm: r stays 0, quotient bits 0). b >= 2^31 is done apart (quotient
  ;; 0 or 1), which keeps 2r + 1 < 2^32 in the loop. ~1050 steps at worst,
  ;; ~400 for a < 1000.
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
    (local.set $n (i32.sub (i32.const 32) (global.get $lz)))
    (loop $next
      (local.set $r (i32.add (i32.add (local.get $r) (local.get $r))
                             (i32.lt_s (local.get $a) (i32.const 0))))
      (local.set $a (i32.add (local.get $a) (local.get $a)))
      (if (i32.ge_u (local.get $r) (local.get $b))
        (then
          (local.set $r (i32.sub (local.get $r) (local.get $b)))
          (local.set $a (i32.add (local.get $a) (i32.const 1)))))
      (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
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

  ;; a & b: r = 2r + (top bit of a and top bit of b), 32 iterations. a is
  ;; the smaller operand and its leading zero bits are skipped (r stays 0).
  ;; ~870 steps at worst, ~540 for a < 1000.
  (func $and (export "and") (param $a i32) (param $b i32) (result i32)
    (local $r i32) (local $n i32)
    (if (i32.lt_u (local.get $b) (local.get $a))
      (then (local.set $r (local.get $a)) (local.set $a (local.get $b)) (local.set $b (local.get $r))
            (local.set $r (i32.const 0))))
    (if (i32.eqz (local.get $a)) (then (return (i32.const 0))))
    (local.set $n (i32.const 32))
    (if (i32.ge_s (local.get $a) (i32.const 0))
      (then
        (loop $skip
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (local.set $b (i32.add (local.get $b) (local.get $b)))
          (br_if $skip (i32.ge_s (local.tee $a (i32.add (local.get $a) (local.get $a))) (i32.const 0))))))
    (loop $next
      (local.set $r (i32.add (i32.add (local.get $r) (local.get $r))
                             (select (i32.lt_s (local.get $b) (i32.const 0)) (i32.const 0)
                                     (i32.lt_s (local.get $a) (i32.const 0)))))
      (local.set $a (i32.add (local.get $a) (local.get $a)))
      (local.set $b (i32.add (local.get $b) (local.get $b)))
      (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $r))

  ;; a | b = a + b - (a & b)
  (func $or (export "or") (param $a i32) (param $b i32) (result i32)
    (i32.sub (i32.add (local.get $a) (local.get $b)) (call $and (local.get $a) (local.get $b))))

  ;; a ^ b = a + b - 2 (a & b)
  (func $xor (export "xor") (param $a i32) (param $b i32) (result i32)
    (local $c i32)
    (local.set $c (call $and (local.get $a) (local.get $b)))
    (i32.sub (i32.add (local.get $a) (local.get $b)) (i32.add (local.get $c) (local.get $c))))

  ;; k << 27: k's low 5 bits (k mod 32) moved to the top, by 27 doublings
  ;; (unrolled). ~90 steps.
  (func $top5 (param $k i32) (result i32)
    (local $t i32)
    local.get $k
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
    local.tee $t local.get $t i32.add
  )

  ;; k mod 32: the top 5 bits of k << 27 read MSB first as 16, 8, 4, 2, 1.
  ;; ~150 steps.
  (func $low5 (param $k i32) (result i32)
    (local $r i32)
    (local.set $k (call $top5 (local.get $k)))
    (local.set $r (select (i32.const 16) (i32.const 0) (i32.lt_s (local.get $k) (i32.const 0))))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (local.set $r (i32.add (local.get $r) (select (i32.const 8) (i32.const 0) (i32.lt_s (local.get $k) (i32.const 0)))))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (local.set $r (i32.add (local.get $r) (select (i32.const 4) (i32.const 0) (i32.lt_s (local.get $k) (i32.const 0)))))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (local.set $r (i32.add (local.get $r) (select (i32.const 2) (i32.const 0) (i32.lt_s (local.get $k) (i32.const 0)))))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (i32.add (local.get $r) (i32.lt_s (local.get $k) (i32.const 0))))

  ;; a << (k mod 32): for each of k's low 5 bits, MSB first (16, 8, 4, 2, 1),
  ;; double a that many times when the bit is set (unrolled). ~240 steps.
  (func $shl (export "shl") (param $a i32) (param $k i32) (result i32)
    (local $t i32)
    (local.set $k (call $top5 (local.get $k)))
    (if (i32.lt_s (local.get $k) (i32.const 0))
      (then
        local.get $a
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.set $a))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (if (i32.lt_s (local.get $k) (i32.const 0))
      (then
        local.get $a
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.set $a))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (if (i32.lt_s (local.get $k) (i32.const 0))
      (then
        local.get $a
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.set $a))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (if (i32.lt_s (local.get $k) (i32.const 0))
      (then
        local.get $a
        local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add
        local.set $a))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (select (i32.add (local.get $a) (local.get $a)) (local.get $a) (i32.lt_s (local.get $k) (i32.const 0))))

  ;; a >> (k mod 32) with the vacated bits filled from $r's start value
  ;; (0: logical; -1 for negative a: arithmetic): read the top 32 - k bits of
  ;; a into r, MSB first, r = 2r + bit. With k = 0 the 32 doublings shift the
  ;; fill out entirely. ~700 steps.
  (func $shr (param $a i32) (param $k i32) (param $r i32) (result i32)
    (local.set $k (i32.sub (i32.const 32) (call $low5 (local.get $k))))
    (loop $next
      (local.set $r (i32.add (i32.add (local.get $r) (local.get $r))
                             (i32.lt_s (local.get $a) (i32.const 0))))
      (local.set $a (i32.add (local.get $a) (local.get $a)))
      (br_if $next (local.tee $k (i32.sub (local.get $k) (i32.const 1)))))
    (local.get $r))

  (func $shr_u (export "shr_u") (param $a i32) (param $k i32) (result i32)
    (call $shr (local.get $a) (local.get $k) (i32.const 0)))

  (func $shr_s (export "shr_s") (param $a i32) (param $k i32) (result i32)
    (call $shr (local.get $a) (local.get $k)
               (i32.sub (i32.const 0) (i32.lt_s (local.get $a) (i32.const 0)))))

  ;; rotl(a, k): k mod 32 single-bit rotations a = 2a + top bit. ~600 steps.
  (func $rotl (export "rotl") (param $a i32) (param $k i32) (result i32)
    (local.set $k (call $low5 (local.get $k)))
    (block $done
      (br_if $done (i32.eqz (local.get $k)))
      (loop $next
        (local.set $a (i32.add (i32.add (local.get $a) (local.get $a))
                               (i32.lt_s (local.get $a) (i32.const 0))))
        (br_if $next (local.tee $k (i32.sub (local.get $k) (i32.const 1))))))
    (local.get $a))

  ;; rotr(a, k) = rotl(a, -k): (32 - k mod 32) mod 32 = -k mod 32.
  (func $rotr (export "rotr") (param $a i32) (param $k i32) (result i32)
    (call $rotl (local.get $a) (i32.sub (i32.const 0) (local.get $k))))

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

  ;; popcnt(a): add up the top bit while doubling a, until a is 0. ~360 steps.
  (func $popcnt (export "popcnt") (param $a i32) (result i32)
    (local $n i32)
    (block $done
      (br_if $done (i32.eqz (local.get $a)))
      (loop $next
        (local.set $n (i32.add (local.get $n) (i32.lt_s (local.get $a) (i32.const 0))))
        (br_if $next (local.tee $a (i32.add (local.get $a) (local.get $a))))))
    (local.get $n))

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
