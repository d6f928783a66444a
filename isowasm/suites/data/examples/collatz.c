/*
 * collatz.c — the Collatz sequence of a start value n:
 *   n -> n / 2 when n is even, n -> 3n + 1 when n is odd, until n = 1.
 *
 * Input:  the start value in decimal, e.g. "27".
 * Output: the terms, ten per line, then "steps: S" (S = number of moves
 *         to reach 1) and "peak: P" (the largest term).
 *
 * Everything is unsigned 32-bit. Halving is a shift (never a division,
 * see isowasm.h), 3n + 1 is n + n + n + 1. If 3n + 1 would not fit in 32
 * bits, or the sequence runs longer than MAX_STEPS, the program says so and
 * stops, so every run ends within a bounded number of steps.
 */

#define MAX_STEPS 10000
#define MAX_ODD 1431655764u    /* largest n with 3n + 1 <= 2^32 - 1 */

void compute(const char *input) {
    const char *p = input;
    unsigned n = parse_uint(&p);
    if (n == 0) {
        out_str("error: the start value must be at least 1\n");
        return;
    }

    unsigned steps = 0, peak = n;
    int on_line = 0;           /* terms printed on the current line */
    for (;;) {
        out_uint(n);
        if (++on_line == 10) {
            out_nl();
            on_line = 0;
        } else if (n != 1) {
            out_byte(' ');
        }
        if (n == 1) break;
        if (steps == MAX_STEPS) {
            out_str("\nstopped: more than 10000 steps\n");
            return;
        }
        if (n & 1u) {
            if (n > MAX_ODD) {
                out_str("\nstopped: 3n+1 overflows 32 bits\n");
                return;
            }
            n = n + n + n + 1;
        } else {
            n >>= 1;
        }
        steps++;
        if (n > peak) peak = n;
    }
    if (on_line) out_nl();
    out_str("steps: ");
    out_uint(steps);
    out_nl();
    out_str("peak: ");
    out_uint(peak);
    out_nl();
}
