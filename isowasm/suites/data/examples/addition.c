/*
 * addition.c — add two arbitrarily long non-negative decimal numbers.
 *
 * Input:  two decimal numbers separated by spaces, e.g.
 *         "12345678901234567890 98765432109876543210"
 * Output: "A + B = SUM\n" with SUM exact (no 32-bit limit), leading zeros
 *         of the operands dropped.
 *
 * The numbers are added digit by digit from the right, schoolbook style,
 * with a carry of 0 or 1; a digit sum of 10..19 is reduced by one
 * subtraction, so no multiplication or division is needed.
 */

#define MAX_DIGITS 1024

/* Find the next run of digits at *p (skipping anything else before it);
   set *len to its length without leading zeros and return its start. */
static const char *next_number(const char **p, int *len) {
    const char *s = *p;
    while (*s && !is_digit(*s)) s++;
    while (*s == '0' && is_digit(s[1])) s++;       /* drop leading zeros */
    const char *start = s;
    while (is_digit(*s)) s++;
    *len = (int)(s - start);
    *p = s;
    return start;
}

static void print_digits(const char *s, int len) {
    if (len == 0) {
        out_byte('0');
        return;
    }
    for (int i = 0; i < len; i++) out_byte(s[i]);
}

void compute(const char *input) {
    const char *p = input;
    int la, lb;
    const char *a = next_number(&p, &la);
    const char *b = next_number(&p, &lb);
    if (la > MAX_DIGITS || lb > MAX_DIGITS) {
        out_str("error: operands longer than 1024 digits\n");
        return;
    }

    /* sum[] holds the result's digits, least significant first. */
    static char sum[MAX_DIGITS + 1];
    int n = la > lb ? la : lb;
    int carry = 0;
    for (int k = 0; k < n; k++) {
        int da = k < la ? a[la - 1 - k] - '0' : 0;   /* k-th digit from the right */
        int db = k < lb ? b[lb - 1 - k] - '0' : 0;
        int d = da + db + carry;
        carry = d >= 10;
        if (carry) d -= 10;
        sum[k] = (char)('0' + d);
    }
    if (carry) sum[n++] = '1';

    print_digits(a, la);
    out_str(" + ");
    print_digits(b, lb);
    out_str(" = ");
    if (n == 0) out_byte('0');
    for (int k = n - 1; k >= 0; k--) out_byte(sum[k]);
    out_nl();
}
