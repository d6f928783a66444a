/*
 * int64.c — 64-bit multiply and divide, and int64_t in decimal.
 *
 * Input:  n (at most 20), e.g. "20".
 * Output: n! by 64-bit multiplication, then divided back down by n, n-1,
 *         ..., 1 (it must come back to 1); the binomial coefficient
 *         C(3n+2, k) for k = 0, n, 3n/2+1, computed as C(m, k) =
 *         C(m, k-1) * (m-k+1) / k (exact at every step); and signed
 *         64-bit arithmetic with negative operands: INT64_MIN and
 *         INT64_MAX, a product, quotients and remainders rounded toward
 *         zero, and INT64_MIN % -1 = 0.
 *
 * Numbers are printed by out_i64: the magnitude as unsigned 64-bit, split
 * by division by 10^9 into 32-bit chunks that out_uint prints (so each
 * number costs two or three 64-bit divisions, not one per digit).
 */

typedef long long i64;
typedef unsigned long long u64;

#define E9 1000000000ULL

static void out_u64(u64 u) {
    if (u < E9) {
        out_uint((unsigned)u);
        return;
    }
    u64 hi = u / E9;
    unsigned lo = (unsigned)(u % E9);
    out_u64(hi);
    /* the low chunk with its leading zeros: nine digits */
    unsigned p = 100000000u;
#pragma clang loop unroll(disable)
    while (p > lo && p > 1) {
        output_byte('0');
        p = p == 100000000u ? 10000000u : p == 10000000u ? 1000000u : p == 1000000u ? 100000u
          : p == 100000u ? 10000u : p == 10000u ? 1000u : p == 1000u ? 100u : p == 100u ? 10u : 1u;
    }
    out_uint(lo);
}

static void out_i64(i64 v) {
    if (v < 0) {
        output_byte('-');
        out_u64(0 - (u64)v);
    } else {
        out_u64((u64)v);
    }
}

static void line(const char *label, i64 v) {
    out_str(label);
    out_i64(v);
    out_nl();
}

/* Opaque to the optimiser, so the divisions below happen at run time. */
static volatile i64 opaque[4] = {-9223372036854775807LL - 1, -1234567890123LL, 1000003, -1};

void compute(const char *input) {
    unsigned n = parse_uint(&input);
    if (n > 20) {
        out_str("error: n! needs more than 63 bits for n > 20\n");
        return;
    }
    u64 f = 1;
#pragma clang loop unroll(disable)
    for (unsigned i = 2; i <= n; i++)
        f *= i;
    out_uint(n);
    out_str("! = ");
    out_u64(f);
    out_nl();
    u64 g = f;
#pragma clang loop unroll(disable)
    for (unsigned i = n; i >= 2; i--)
        g /= i;
    out_str("divided back: ");
    out_u64(g);
    out_nl();

    unsigned m = 3 * n + 2, top = m / 2;
    u64 c = 1;
#pragma clang loop unroll(disable)
    for (unsigned k = 0; k <= top; k++) {
        if (k)
            c = c * (m - k + 1) / k;
        if (k == 0 || k == n || k == top) {
            out_str("C(");
            out_uint(m);
            out_str(", ");
            out_uint(k);
            out_str(") = ");
            out_u64(c);
            out_nl();
        }
    }

    i64 min = opaque[0], a = opaque[1], b = opaque[2], m1 = opaque[3];
    line("INT64_MIN = ", min);
    line("INT64_MAX = ", (i64)((u64)min - 1));
    line("a * b = ", a * b);
    line("a * b / -7 = ", a * b / -7);
    line("a * b % -7 = ", a * b % -7);
    line("INT64_MIN / b = ", min / b);
    line("INT64_MIN % b = ", min % b);
    line("INT64_MIN % -1 = ", min % m1);
    line("(a << 20) >> 7 = ", (a << 20) >> 7);
}
