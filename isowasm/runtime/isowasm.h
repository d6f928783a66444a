/*
 * isowasm.h — the freestanding runtime of isowasm C programs.
 *
 * There is no libc. Every C program is compiled as ONE translation unit with
 * this header force-included:
 *
 *   clang --target=wasm32 -nostdlib -O2 -fno-builtin \
 *         -Wl,--no-entry -Wl,--export=compute -Wl,--export=__heap_base \
 *         -Wl,-z,stack-size=65536 \
 *         -Wl,--initial-memory=10485760 -Wl,--max-memory=10485760 \
 *         -I isowasm/runtime -include isowasm.h -o prog.wasm prog.c
 *
 * Entry convention (spec/MACHINE.md §8):
 *   the program defines          void compute(const char *input);
 *   `input` is the NUL-terminated input, placed by the machine at
 *   (__heap_base + 15) & ~15. The function's return halts the machine.
 *   Output goes byte by byte through the single import env.output_byte.
 *
 * What the machine can and cannot do, and what that means for C code:
 *   - Integers only: 32-bit natively; 64-bit (`long long`, int64_t) is
 *     lowered to pairs of 32-bit words (MACHINE.md §8) and costs several
 *     times the 32-bit op (a 64-bit add ~13 steps, a run-time 64-bit mul
 *     ~60-2,000, div ~30-3,450; ci/bench_lowering.py measures every op).
 *     No floats, no function pointers
 *     (indirect calls), no SIMD.
 *   - The machine has no native mul/div/rem/and/or/xor/shift: the toolchain
 *     lowers each into a bit-serial loop of up to 32 iterations. With a
 *     constant right operand (x << 2, x * 10, x & 255) the loop is unrolled
 *     over the constant's bits and costs a few to a few dozen steps; with
 *     two run-time operands it is a helper call of up to hundreds of steps
 *     (mul ~15-430, div ~20-840). Keep the latter out of hot loops: a table lookup or
 *     an add usually does the job. Watch for clang making them up: `a || b`
 *     on flags can become i32.or, and `c == ' ' || c == '\n' || ...` a
 *     run-time shift into a bit mask.
 *   - Division and remainder (x / 10, x % 3, ...) stay i32.div/rem on
 *     wasm32 and are lowered into loops of at most 32 iterations (up to
 *     ~840 steps each): fine, but in hot loops a table, a shift
 *     (x >> 1 for unsigned x / 2) or repeated subtraction is far cheaper.
 *   - Cost pitfall: clang merges adjacent stores of constants (a fully or
 *     partly unrolled initialisation loop, a run of byte stores) into one
 *     i64.store, correct but dearer. Put `#pragma clang loop unroll(disable)` on such loops
 *     (the examples do); the toolchain also passes
 *     -mllvm -combiner-store-merging=0.
 *     The mem* functions below are noinline for the same reason: inlined
 *     with a constant length they unroll and merge.
 *   - Check the assembly (clang ... -S) for unexpected "i64" ops in hot code.
 *   - Stack: 64 KiB (keep recursion shallow); memory: 10 MiB.
 *
 * Every routine here takes a bounded number of steps: printing a 32-bit
 * number is at most 10 digits x at most 9 subtractions, with no mul or div.
 */
#ifndef ISOWASM_H
#define ISOWASM_H

typedef unsigned int iso_size_t;

/* ---------------------------------------------------------------- import */

/* Write one byte (the low 8 bits of c) to the output. The only import. */
__attribute__((import_module("env"), import_name("output_byte")))
void output_byte(int c);

/* ----------------------------------------------------- memory and strings */
/*
 * clang emits calls to memset/memcpy/memmove for array initialisation and
 * struct copies even with -fno-builtin, and with -nostdlib they must exist.
 * Each program is a single translation unit, so plain definitions here are
 * fine; `used` keeps them until the linker has resolved those calls. They
 * move one byte per iteration: simple, and correct for any alignment.
 */
__attribute__((used, noinline)) void *memset(void *dst, int c, iso_size_t n) {
    unsigned char *d = (unsigned char *)dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

__attribute__((used, noinline)) void *memcpy(void *dst, const void *src, iso_size_t n) {
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    while (n--) *d++ = *s++;
    return dst;
}

__attribute__((used, noinline)) void *memmove(void *dst, const void *src, iso_size_t n) {
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else if (d > s) {               /* overlap from below: copy backwards */
        d += n;
        s += n;
        while (n--) *--d = *--s;
    }
    return dst;
}

__attribute__((used, noinline)) iso_size_t strlen(const char *s) {
    const char *p = s;
    while (*p) p++;
    return (iso_size_t)(p - s);
}

/* ------------------------------------------------------- division helpers */
/*
 * Unsigned division and remainder whose divisor is an ordinary run-time
 * value: the functions have external linkage and are never inlined, so
 * one lowered division loop serves every call site. The toolchain lowers the i32.div_u
 * / i32.rem_u inside into a loop of at most 32 iterations. Division by zero
 * traps (div_zero), as in WebAssembly.
 */
__attribute__((noinline, used)) unsigned iso_udiv(unsigned n, unsigned d) {
    return n / d;
}

__attribute__((noinline, used)) unsigned iso_umod(unsigned n, unsigned d) {
    return n % d;
}

/* ---------------------------------------------------------------- output */

static inline void out_byte(int c) { output_byte(c); }

static inline void out_nl(void) { output_byte('\n'); }

/* Print a NUL-terminated string. */
static inline void out_str(const char *s) {
    while (*s) output_byte(*s++);
}

/*
 * Powers of ten, largest first. A digit is found by subtracting its power
 * at most 9 times, so a number costs at most 90 subtractions and needs no
 * division at all (10 subtractions are cheaper than one lowered division).
 */
static const unsigned iso_pow10[10] = {
    1000000000u, 100000000u, 10000000u, 1000000u, 100000u,
    10000u, 1000u, 100u, 10u, 1u,
};

/* Print an unsigned 32-bit number in decimal, without leading zeros.
   (No flags combined with | or ||: clang turns those into i32.or, which
   the machine only has as a 32-iteration helper.) */
static __attribute__((noinline)) void out_uint(unsigned v) {
    int i = 0;
    while (i < 9 && v < iso_pow10[i]) i++;   /* skip leading zeros */
    for (; i < 10; i++) {
        unsigned p = iso_pow10[i];
        int digit = 0;
        while (v >= p) {              /* at most 9 times: v < 10 * p here */
            v -= p;
            digit++;
        }
        output_byte('0' + digit);
    }
}

/* Print a signed 32-bit number in decimal; INT_MIN prints correctly. */
static inline void out_int(int v) {
    unsigned u = (unsigned)v;
    if (v < 0) {
        output_byte('-');
        u = 0u - u;                   /* magnitude, exact even for INT_MIN */
    }
    out_uint(u);
}

/* Print v as exactly 8 lowercase hex digits. */
static inline void out_hex(unsigned v) {
    static const char hexdig[16] = "0123456789abcdef";
    for (int shift = 28; shift >= 0; shift -= 4)
        output_byte(hexdig[(v >> shift) & 15u]);
}

/* ----------------------------------------------------------------- input */

static inline int is_digit(int c) { return c >= '0' && c <= '9'; }

/* Space, or one of \t \n \v \f \r (a range test: listing the four
   characters separately lets clang build a run-time bit mask, i.e. a
   lowered shift, out of them). */
static inline int iso_is_space(int c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * Parse an unsigned decimal number at *p: skip whitespace, then read digits
 * (none read gives 0). Advances *p past what was read. Wraps modulo 2^32.
 */
static inline unsigned parse_uint(const char **p) {
    const char *s = *p;
    unsigned v = 0;
    while (iso_is_space(*s)) s++;
    while (is_digit(*s)) {
        v = v * 10u + (unsigned)(*s - '0');
        s++;
    }
    *p = s;
    return v;
}

/* Parse a signed decimal number: whitespace, optional '-', digits. */
static inline int parse_int(const char **p) {
    const char *s = *p;
    int neg = 0;
    while (iso_is_space(*s)) s++;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    unsigned v = parse_uint(&s);
    *p = s;
    return neg ? (int)(0u - v) : (int)v;
}

#endif /* ISOWASM_H */
