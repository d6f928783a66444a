  ;; ------------------------------------------------------------------
  ;; The i64 helpers (isowasm/toolchain/i64.py says which op goes where).
  ;; Module fields only: the toolchain splices them into runtime.wat's
  ;; module, so they share its imports, globals and i32 helpers and obey its
  ;; rule (native ops only). An i64 is a pair of words: (lo, hi) as two
  ;; parameters, two results (lo, then hi on top), as the lowered program
  ;; keeps it on the stack. Costs are machine steps, call and return
  ;; included, as measured by conformance/test_i64.py.

  ;; $divmod64 hands its remainder back in runtime.wat's two hand-back
  ;; globals: the low word in $rem, the high word in $lz (set last, after
  ;; its own calls of $div_u and $norm, and read at once by its callers).
  ;; No new global, so $wasm_max stays the last reserved one.

  ;; a * b mod 2^64 = umul(a.lo, b.lo) + ((a.lo * b.hi + a.hi * b.lo) mod 2^32) << 32.
  ;; The cross products are the i32 $mul (fast when a word is 0); ~2,600
  ;; steps at worst, ~500 for operands below 2^16.
  (func $mul64 (export "mul64") (param $alo i32) (param $ahi i32) (param $blo i32) (param $bhi i32)
    (result i32 i32)
    (local $c i32)
    (local.set $c (i32.add (call $mul (local.get $alo) (local.get $bhi))
                           (call $mul (local.get $ahi) (local.get $blo))))
    (call $umul (local.get $alo) (local.get $blo))
    (i32.add (local.get $c)))

  ;; a * b as a full 64-bit product (lo, hi): shift-and-add over the bits of
  ;; the smaller operand b, MSB first, with its leading zeros skipped
  ;; ($norm); the top bit starts the sum at a. ~30 steps per bit of b.
  (func $umul (param $a i32) (param $b i32) (result i32 i32)
    (local $lo i32) (local $hi i32) (local $n i32)
    (if (i32.lt_u (local.get $a) (local.get $b))
      (then (local.set $n (local.get $a)) (local.set $a (local.get $b)) (local.set $b (local.get $n))))
    (if (i32.eqz (local.get $b)) (then (return (i32.const 0) (i32.const 0))))
    (local.set $b (call $norm (local.get $b)))
    (local.set $n (i32.sub (i32.const 31) (global.get $lz)))
    (local.set $lo (local.get $a))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $b (i32.add (local.get $b) (local.get $b)))
        (local.set $hi (i32.add (i32.add (local.get $hi) (local.get $hi))
                                (i32.lt_s (local.get $lo) (i32.const 0))))
        (local.set $lo (i32.add (local.get $lo) (local.get $lo)))
        (if (i32.lt_s (local.get $b) (i32.const 0))
          (then
            (local.set $lo (i32.add (local.get $lo) (local.get $a)))
            (local.set $hi (i32.add (local.get $hi) (i32.lt_u (local.get $lo) (local.get $a))))))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $lo) (local.get $hi))

  ;; a /u b, the remainder into ($rem, $lz); b = 0 traps div_zero.
  ;; * a and b below 2^32: the i32 $div_u.
  ;; * b below 2^31: long division in two words: a.hi / b by $div_u, then
  ;;   (remainder, a.lo) / b by 32 restoring steps, unrolled (r < b < 2^31,
  ;;   so 2r + 1 fits in a word). ~1,500 steps at worst.
  ;; * b at least 2^63: the quotient is 0 or 1.
  ;; * otherwise restoring division on pairs, MSB first: a's leading zeros
  ;;   skipped, and when b >= 2^32 the first 32 bits of a go into r at once
  ;;   (r < 2^32 <= b: no quotient bit yet); quotient bits enter a from the
  ;;   right as a's bits leave at the top. r < b < 2^63 keeps 2r + 1 in 64
  ;;   bits. ~55 steps per quotient bit; ~4,000 at worst (b in [2^31, 2^32)).
  (func $divmod64 (export "div_u64") (param $alo i32) (param $ahi i32) (param $blo i32) (param $bhi i32)
    (result i32 i32)
    (local $rlo i32) (local $rhi i32) (local $n i32) (local $q i32)
    (if (i32.eqz (local.get $bhi))
      (then
        (if (i32.eqz (local.get $blo)) (then (call $trap_div_zero)))
        (if (i32.eqz (local.get $ahi))
          (then
            (local.set $q (call $div_u (local.get $alo) (local.get $blo)))
            (global.set $lz (i32.const 0))      ;; $rem is the remainder already
            (return (local.get $q) (i32.const 0))))
        (if (i32.ge_s (local.get $blo) (i32.const 0))
          (then
            (local.set $q (call $div_u (local.get $ahi) (local.get $blo)))
            (local.set $rlo (global.get $rem))
            ;; 32 restoring steps, unrolled (15 steps each, 8 more per quotient bit)
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            local.get $rlo local.get $rlo i32.add local.get $alo i32.const 0 i32.lt_s i32.add
            local.get $alo local.get $alo i32.add local.set $alo
            local.tee $rlo local.get $blo i32.ge_u
            if local.get $rlo local.get $blo i32.sub local.set $rlo local.get $alo i32.const 1 i32.add local.set $alo end
            (global.set $rem (local.get $rlo))
            (global.set $lz (i32.const 0))
            (return (local.get $alo) (local.get $q))))))
    (if (i32.lt_s (local.get $bhi) (i32.const 0))
      (then
        (local.set $q (select (i32.ge_u (local.get $alo) (local.get $blo))
                              (i32.gt_u (local.get $ahi) (local.get $bhi))
                              (i32.eq (local.get $ahi) (local.get $bhi))))
        (if (local.get $q)
          (then
            (local.set $ahi (i32.sub (i32.sub (local.get $ahi) (local.get $bhi))
                                     (i32.lt_u (local.get $alo) (local.get $blo))))
            (local.set $alo (i32.sub (local.get $alo) (local.get $blo)))))
        (global.set $rem (local.get $alo))
        (global.set $lz (local.get $ahi))
        (return (local.get $q) (i32.const 0))))
    (if (select (i32.lt_u (local.get $alo) (local.get $blo))
                (i32.lt_u (local.get $ahi) (local.get $bhi))
                (i32.eq (local.get $ahi) (local.get $bhi)))
      (then
        (global.set $rem (local.get $alo))
        (global.set $lz (local.get $ahi))
        (return (i32.const 0) (i32.const 0))))
    (local.set $n (i32.const 64))
    (if (i32.eqz (local.get $ahi))
      (then (local.set $ahi (local.get $alo)) (local.set $alo (i32.const 0)) (local.set $n (i32.const 32))))
    (block $top
      (loop $skip
        (br_if $top (i32.lt_s (local.get $ahi) (i32.const 0)))
        (local.set $ahi (i32.add (i32.add (local.get $ahi) (local.get $ahi))
                                 (i32.lt_s (local.get $alo) (i32.const 0))))
        (local.set $alo (i32.add (local.get $alo) (local.get $alo)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $skip)))
    (if (local.get $bhi)
      (then
        (local.set $rlo (local.get $ahi))
        (local.set $ahi (local.get $alo))
        (local.set $alo (i32.const 0))
        (local.set $n (i32.sub (local.get $n) (i32.const 32)))))
    (loop $next
      (local.set $rhi (i32.add (i32.add (local.get $rhi) (local.get $rhi))
                               (i32.lt_s (local.get $rlo) (i32.const 0))))
      (local.set $rlo (i32.add (i32.add (local.get $rlo) (local.get $rlo))
                               (i32.lt_s (local.get $ahi) (i32.const 0))))
      (local.set $ahi (i32.add (i32.add (local.get $ahi) (local.get $ahi))
                               (i32.lt_s (local.get $alo) (i32.const 0))))
      (local.set $alo (i32.add (local.get $alo) (local.get $alo)))
      (if (select (i32.ge_u (local.get $rlo) (local.get $blo))
                  (i32.gt_u (local.get $rhi) (local.get $bhi))
                  (i32.eq (local.get $rhi) (local.get $bhi)))
        (then
          (local.set $rhi (i32.sub (i32.sub (local.get $rhi) (local.get $bhi))
                                   (i32.lt_u (local.get $rlo) (local.get $blo))))
          (local.set $rlo (i32.sub (local.get $rlo) (local.get $blo)))
          (local.set $alo (i32.add (local.get $alo) (i32.const 1)))))
      (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (global.set $rem (local.get $rlo))
    (global.set $lz (local.get $rhi))
    (local.get $alo) (local.get $ahi))

  (func $rem_u64 (export "rem_u64") (param $alo i32) (param $ahi i32) (param $blo i32) (param $bhi i32)
    (result i32 i32)
    (call $divmod64 (local.get $alo) (local.get $ahi) (local.get $blo) (local.get $bhi))
    drop drop
    (global.get $rem) (global.get $lz))

  ;; Signed division on magnitudes (|INT64_MIN| = 2^63 is fine unsigned);
  ;; the quotient is negated when the signs differ. Traps as wasm: b = 0
  ;; first, then INT64_MIN / -1.
  (func $div_s64 (export "div_s64") (param $alo i32) (param $ahi i32) (param $blo i32) (param $bhi i32)
    (result i32 i32)
    (local $neg i32) (local $lo i32) (local $hi i32)
    (if (i32.eqz (local.get $blo)) (then (if (i32.eqz (local.get $bhi)) (then (call $trap_div_zero)))))
    (if (i32.eq (local.get $ahi) (i32.const 0x80000000))
      (then (if (i32.eqz (local.get $alo))
        (then (if (i32.eq (local.get $blo) (i32.const -1))
          (then (if (i32.eq (local.get $bhi) (i32.const -1)) (then (call $trap_int_overflow)))))))))
    (local.set $neg (i32.ne (i32.lt_s (local.get $ahi) (i32.const 0)) (i32.lt_s (local.get $bhi) (i32.const 0))))
    (call $abs64 (local.get $alo) (local.get $ahi))
    (call $abs64 (local.get $blo) (local.get $bhi))
    (call $divmod64)
    local.set $hi local.set $lo
    (if (local.get $neg)
      (then (return (call $neg64 (local.get $lo) (local.get $hi)))))
    (local.get $lo) (local.get $hi))

  ;; The remainder has the sign of a; INT64_MIN % -1 = 0 (no trap, as wasm).
  (func $rem_s64 (export "rem_s64") (param $alo i32) (param $ahi i32) (param $blo i32) (param $bhi i32)
    (result i32 i32)
    (call $abs64 (local.get $alo) (local.get $ahi))
    (call $abs64 (local.get $blo) (local.get $bhi))
    (call $divmod64)
    drop drop
    (if (i32.lt_s (local.get $ahi) (i32.const 0))
      (then (return (call $neg64 (global.get $rem) (global.get $lz)))))
    (global.get $rem) (global.get $lz))

  ;; 0 - a: the low word negated, the high word minus its borrow.
  (func $neg64 (param $lo i32) (param $hi i32) (result i32 i32)
    (i32.sub (i32.const 0) (local.get $lo))
    (i32.sub (i32.sub (i32.const 0) (local.get $hi)) (i32.ne (local.get $lo) (i32.const 0))))

  (func $abs64 (param $lo i32) (param $hi i32) (result i32 i32)
    (if (i32.lt_s (local.get $hi) (i32.const 0))
      (then (return (call $neg64 (local.get $lo) (local.get $hi)))))
    (local.get $lo) (local.get $hi))

  ;; (k mod 32, bit 5 of k): k << 26 by 26 doublings (unrolled), then its
  ;; top bit (bit 5) and the next five read MSB first. ~110 steps.
  (func $split6 (param $k i32) (result i32 i32)
    (local $t i32) (local $b5 i32) (local $r i32)
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
    local.tee $t local.get $t i32.add  local.tee $t local.get $t i32.add  ;; 26 doublings
    local.set $k
    (local.set $b5 (i32.lt_s (local.get $k) (i32.const 0)))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (local.set $r (select (i32.const 16) (i32.const 0) (i32.lt_s (local.get $k) (i32.const 0))))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (local.set $r (i32.add (local.get $r) (select (i32.const 8) (i32.const 0) (i32.lt_s (local.get $k) (i32.const 0)))))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (local.set $r (i32.add (local.get $r) (select (i32.const 4) (i32.const 0) (i32.lt_s (local.get $k) (i32.const 0)))))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (local.set $r (i32.add (local.get $r) (select (i32.const 2) (i32.const 0) (i32.lt_s (local.get $k) (i32.const 0)))))
    (local.set $k (i32.add (local.get $k) (local.get $k)))
    (i32.add (local.get $r) (i32.lt_s (local.get $k) (i32.const 0)))
    (local.get $b5))

  ;; a << (k mod 64): with bit 5 of k the low word moves up; then k mod 32
  ;; doublings of the pair. ~17 steps per bit of k mod 32, ~700 at worst.
  (func $shl64 (export "shl64") (param $lo i32) (param $hi i32) (param $k i32) (result i32 i32)
    (local $n i32) (local $b5 i32)
    (call $split6 (local.get $k))
    local.set $b5 local.set $n
    (if (local.get $b5) (then (local.set $hi (local.get $lo)) (local.set $lo (i32.const 0))))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $hi (i32.add (i32.add (local.get $hi) (local.get $hi))
                                (i32.lt_s (local.get $lo) (i32.const 0))))
        (local.set $lo (i32.add (local.get $lo) (local.get $lo)))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $lo) (local.get $hi))

  ;; a >> (k mod 64), the vacated bits from $fill (0, or -1 for an arithmetic
  ;; shift of a negative a): with bit 5 of k the high word moves down and
  ;; the fill in; then a right shift by j = k mod 32 > 0 is a left shift of
  ;; the three words (fill, hi, lo) by 32 - j, keeping the top two. ~25 steps
  ;; per bit of 32 - j, ~960 at worst (j = 1).
  (func $shr64 (param $lo i32) (param $hi i32) (param $k i32) (param $fill i32) (result i32 i32)
    (local $n i32) (local $b5 i32)
    (call $split6 (local.get $k))
    local.set $b5 local.set $n
    (if (local.get $b5) (then (local.set $lo (local.get $hi)) (local.set $hi (local.get $fill))))
    (if (i32.eqz (local.get $n)) (then (return (local.get $lo) (local.get $hi))))
    (local.set $n (i32.sub (i32.const 32) (local.get $n)))
    (loop $next
      (local.set $fill (i32.add (i32.add (local.get $fill) (local.get $fill))
                                (i32.lt_s (local.get $hi) (i32.const 0))))
      (local.set $hi (i32.add (i32.add (local.get $hi) (local.get $hi))
                              (i32.lt_s (local.get $lo) (i32.const 0))))
      (local.set $lo (i32.add (local.get $lo) (local.get $lo)))
      (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $hi) (local.get $fill))

  (func $shr_u64 (export "shr_u64") (param $lo i32) (param $hi i32) (param $k i32) (result i32 i32)
    (call $shr64 (local.get $lo) (local.get $hi) (local.get $k) (i32.const 0)))

  (func $shr_s64 (export "shr_s64") (param $lo i32) (param $hi i32) (param $k i32) (result i32 i32)
    (call $shr64 (local.get $lo) (local.get $hi) (local.get $k)
                 (i32.sub (i32.const 0) (i32.lt_s (local.get $hi) (i32.const 0)))))

  ;; rotl(a, k mod 64): with bit 5 of k the words swap; then k mod 32
  ;; single-bit rotations of the pair. ~20 steps per bit, ~890 at worst.
  (func $rotl64 (export "rotl64") (param $lo i32) (param $hi i32) (param $k i32) (result i32 i32)
    (local $n i32) (local $b5 i32) (local $c i32)
    (call $split6 (local.get $k))
    local.set $b5 local.set $n
    (if (local.get $b5)
      (then (local.set $c (local.get $lo)) (local.set $lo (local.get $hi)) (local.set $hi (local.get $c))))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (local.set $c (i32.lt_s (local.get $hi) (i32.const 0)))
        (local.set $hi (i32.add (i32.add (local.get $hi) (local.get $hi))
                                (i32.lt_s (local.get $lo) (i32.const 0))))
        (local.set $lo (i32.add (i32.add (local.get $lo) (local.get $lo)) (local.get $c)))
        (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
    (local.get $lo) (local.get $hi))

  ;; rotr(a, k) = rotl(a, -k): (64 - k mod 64) mod 64 = -k mod 64.
  (func $rotr64 (export "rotr64") (param $lo i32) (param $hi i32) (param $k i32) (result i32 i32)
    (call $rotl64 (local.get $lo) (local.get $hi) (i32.sub (i32.const 0) (local.get $k))))

  ;; clz, ctz, popcnt: the i32 helpers on the word that decides.
  (func $clz64 (export "clz64") (param $lo i32) (param $hi i32) (result i32 i32)
    (if (result i32) (i32.eqz (local.get $hi))
      (then (i32.add (call $clz (local.get $lo)) (i32.const 32)))
      (else (call $clz (local.get $hi))))
    (i32.const 0))

  (func $ctz64 (export "ctz64") (param $lo i32) (param $hi i32) (result i32 i32)
    (if (result i32) (i32.eqz (local.get $lo))
      (then (i32.add (call $ctz (local.get $hi)) (i32.const 32)))
      (else (call $ctz (local.get $lo))))
    (i32.const 0))

  (func $popcnt64 (export "popcnt64") (param $lo i32) (param $hi i32) (result i32 i32)
    (i32.add (call $popcnt (local.get $lo)) (call $popcnt (local.get $hi)))
    (i32.const 0))
