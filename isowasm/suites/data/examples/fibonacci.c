/*
 * fibonacci.c — print the first N Fibonacci numbers, F(0) = 0, F(1) = 1,
 * F(k) = F(k-1) + F(k-2), as unsigned 32-bit numbers.
 *
 * Input:  N in decimal, e.g. "50".
 * Output: one line "F(k) = value" per number. F(47) = 2971215073 is the
 *         largest that fits in 32 bits; when N asks for more, the program
 *         stops before the first overflow and says so (it never prints a
 *         value reduced mod 2^32).
 *
 * Overflow is detected without 64-bit arithmetic: an unsigned sum a + b
 * wrapped exactly when the result is smaller than b.
 */
void compute(const char *input) {
    const char *p = input;
    unsigned n = parse_uint(&p);
    unsigned a = 0, b = 1;     /* a = F(k), b = F(k+1) */
    int b_fits = 1;            /* whether F(k+1) fits in 32 bits */

    for (unsigned k = 0; k < n; k++) {
        out_str("F(");
        out_uint(k);
        out_str(") = ");
        out_uint(a);
        out_nl();
        if (k + 1 == n) break;
        if (!b_fits) {
            out_str("stop: F(");
            out_uint(k + 1);
            out_str(") does not fit in 32 bits\n");
            return;
        }
        unsigned next = a + b; /* F(k+2), modulo 2^32 */
        b_fits = next >= b;
        a = b;
        b = next;
    }
}
