/*
 * hash64.c — 64-bit hashing and pseudo-random numbers (uint64_t arithmetic).
 *
 * Input:  any text, e.g. "isowasm: differential verification".
 * Output: the FNV-1a 64 hash of the input, then five outputs of splitmix64
 *         seeded with that hash and five of xorshift64* seeded with the
 *         first splitmix64 output, each as 16 hex digits; then the sum of
 *         the ten outputs mod 2^64 and their xor.
 *
 * Every operation is on unsigned 64-bit integers (`unsigned long long`):
 * clang emits i64.xor, i64.mul by a constant, i64.shr_u/shl by constants
 * and i64.add, which the toolchain lowers onto pairs of 32-bit words.
 * The hex printer takes the top nibble with a constant shift (x >> 60) and
 * moves the next one up with x << 4, so it needs no run-time shift.
 */

typedef unsigned long long u64;

static void out_hex64(u64 x) {
    static const char hexdig[16] = "0123456789abcdef";
#pragma clang loop unroll(disable)
    for (int i = 0; i < 16; i++) {
        output_byte(hexdig[x >> 60]);
        x <<= 4;
    }
}

static u64 fnv1a64(const char *s) {
    u64 h = 0xcbf29ce484222325ULL;           /* FNV offset basis */
    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 0x100000001b3ULL;                /* FNV prime */
    }
    return h;
}

static u64 splitmix_state;

static u64 splitmix64(void) {
    u64 z = (splitmix_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static u64 xorshift_state;

static u64 xorshift64star(void) {
    u64 x = xorshift_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    xorshift_state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

void compute(const char *input) {
    u64 h = fnv1a64(input);
    out_str("fnv1a64: ");
    out_hex64(h);
    out_nl();

    u64 sum = 0, all = 0;
    splitmix_state = h;
#pragma clang loop unroll(disable)
    for (int i = 0; i < 5; i++) {
        u64 r = splitmix64();
        if (i == 0)
            xorshift_state = r;
        sum += r;
        all ^= r;
        out_str("splitmix64: ");
        out_hex64(r);
        out_nl();
    }
#pragma clang loop unroll(disable)
    for (int i = 0; i < 5; i++) {
        u64 r = xorshift64star();
        sum += r;
        all ^= r;
        out_str("xorshift64*: ");
        out_hex64(r);
        out_nl();
    }
    out_str("sum: ");
    out_hex64(sum);
    out_str("\nxor: ");
    out_hex64(all);
    out_nl();
}
