/*
 * sudoku.c — solve a 9x9 sudoku by constraint propagation and search.
 *
 * Input:  81 cells row by row: '1'..'9' a given, '.' or '0' a blank;
 *         whitespace and other characters are skipped.
 * Output: the solved grid as 9 lines of 9 digits, then one line with the
 *         search statistics; or a line saying that there is no solution.
 *
 * Representation. Cells are numbered 0..80 row by row. Each cell has a
 * candidate bitmask: bit d-1 set = digit d still possible. A cell's 20
 * "peers" are the other cells of its row, its column and its 3x3 box.
 *
 * Propagation. Placing digit d in a cell removes d from the masks of its
 * peers. A peer left with no candidate is a contradiction; a peer left with
 * exactly one candidate (a "naked single") is queued and placed in turn,
 * which may cascade.
 *
 * Search. When propagation stalls, pick the open cell with the fewest
 * candidates, and try each candidate on a copy of the state (depth-first,
 * at most 81 levels deep). A contradiction abandons the copy: backtrack.
 *
 * Cost notes for the machine: it has no and/or/shift/mul/div; the toolchain
 * lowers them into bit-serial loops (an `and` of two run-time values costs
 * hundreds of steps). So this program never computes with the bits of a
 * mask at run time. Everything about a mask comes from 512-entry tables
 * built at start-up with additions only: whether digit d is in it
 * (has_digit), how many candidates it has (popcount), and which digit a
 * one-candidate mask holds (single_digit). Removing a digit known to be
 * present is a subtraction. Nothing divides either (clang turns x / 3 into
 * 64-bit arithmetic, see isowasm.h): positions come from small tables.
 */

typedef unsigned char u8;
typedef unsigned short u16;

#define CELLS 81
#define ALL_DIGITS 0x1ff           /* bits 0..8: digits 1..9 */

/* One search state: placed digits (0 = open) and candidate masks. */
typedef struct {
    u8 value[CELLS];
    u16 cand[CELLS];
} State;

static const u16 bit_of[10] = {0, 1, 2, 4, 8, 16, 32, 64, 128, 256};
static const u8 row_start[9] = {0, 9, 18, 27, 36, 45, 54, 63, 72};  /* 9 * r */
static const u8 box_first[9] = {0, 0, 0, 3, 3, 3, 6, 6, 6};        /* 3 * (r / 3) */

static u8 peers[CELLS][20];        /* the 20 peers of every cell */
static u8 has_digit[10][512];      /* 1 when digit d is a candidate in mask m */
static u8 popcount[512];           /* number of candidates in a mask */
static u8 single_digit[512];       /* d when the mask is exactly bit_of[d], else 0 */

static State stack[CELLS + 1];     /* stack[k]: the state at search depth k */
static u8 queue[CELLS];            /* cells found to have a single candidate */
static int queue_len;

static unsigned guesses, backtracks, placements;

/* ------------------------------------------------------------ tables */

static void build_tables(void) {
    /* popcount: the masks below 2^(k+1) are those below 2^k, plus bit k.
       (Kept as loops: unrolled, clang merges the byte stores into i64.store,
       which the toolchain rejects.) */
    popcount[0] = 0;
#pragma clang loop unroll(disable)
    for (int k = 0, size = 1; k < 9; k++, size += size)
#pragma clang loop unroll(disable)
        for (int m = 0; m < size; m++)
            popcount[m + size] = popcount[m] + 1;
    for (int d = 1; d <= 9; d++)
        single_digit[bit_of[d]] = (u8)d;

    /* has_digit[d]: masks 0..511 come in blocks of 2b (b = bit_of[d]);
       the upper b masks of each block have bit b set. */
    for (int d = 1; d <= 9; d++) {
        int b = bit_of[d];
        for (int block = 0; block < 512; block += b + b)
#pragma clang loop unroll(disable)
            for (int m = block + b; m < block + b + b; m++)
                has_digit[d][m] = 1;
    }

    /* peers: 8 in the row, 8 in the column, 4 more in the box. */
    int cell = 0;
    for (int r = 0; r < 9; r++) {
        for (int c = 0; c < 9; c++, cell++) {
            u8 *p = peers[cell];
            int k = 0;
            for (int x = 0; x < 9; x++)
                if (x != c) p[k++] = (u8)(row_start[r] + x);
            for (int y = 0; y < 9; y++)
                if (y != r) p[k++] = (u8)(row_start[y] + c);
            int br = box_first[r], bc = box_first[c];
            for (int y = br; y < br + 3; y++) {
                if (y == r) continue;
                for (int x = bc; x < bc + 3; x++)
                    if (x != c) p[k++] = (u8)(row_start[y] + x);
            }
        }
    }
}

/* ------------------------------------------------------- propagation */

/* Remove digit d from the candidates of `cell`. Returns 0 on a
   contradiction (no candidate left), 1 otherwise. */
static int eliminate(State *s, int cell, int d) {
    unsigned m = s->cand[cell];
    if (!has_digit[d][m]) return 1;  /* already gone */
    m -= bit_of[d];
    s->cand[cell] = (u16)m;
    if (m == 0) return 0;
    if (s->value[cell] == 0 && popcount[m] == 1)
        queue[queue_len++] = (u8)cell;   /* a naked single: place it later */
    return 1;
}

/* Place digit d in `cell` and remove d from all its peers. */
static int place(State *s, int cell, int d) {
    s->value[cell] = (u8)d;
    s->cand[cell] = bit_of[d];
    placements++;
    const u8 *p = peers[cell];
    for (int k = 0; k < 20; k++)
        if (!eliminate(s, p[k], d)) return 0;
    return 1;
}

/* Place the queued naked singles, and those they create, until none is
   left. Returns 0 on a contradiction. */
static int propagate(State *s) {
    while (queue_len > 0) {
        int cell = queue[--queue_len];
        if (s->value[cell]) continue;
        int d = single_digit[s->cand[cell]];
        if (d == 0 || !place(s, cell, d)) return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ search */

/* Solve from stack[depth]; on success stack[depth] holds the solution. */
static int solve(int depth) {
    State *s = &stack[depth];

    /* The open cell with the fewest candidates (each has at least 2). */
    int best = -1, best_count = 10;
    for (int cell = 0; cell < CELLS; cell++) {
        if (s->value[cell]) continue;
        int n = popcount[s->cand[cell]];
        if (n < best_count) {
            best_count = n;
            best = cell;
        }
    }
    if (best < 0) return 1;          /* every cell is placed: solved */

    State *next = &stack[depth + 1];
    unsigned mask = s->cand[best];
    for (int d = 1; d <= 9; d++) {
        if (!has_digit[d][mask]) continue;
        guesses++;
        *next = *s;                  /* try d on a copy */
        queue_len = 0;
        if (place(next, best, d) && propagate(next) && solve(depth + 1)) {
            *s = *next;
            return 1;
        }
        backtracks++;
    }
    return 0;
}

/* ------------------------------------------------------------- main */

void compute(const char *input) {
    build_tables();

    /* Read the 81 cells. */
    u8 given[CELLS];
    int n = 0;
    for (const char *p = input; *p && n < CELLS; p++) {
        if (*p >= '1' && *p <= '9') given[n++] = (u8)(*p - '0');
        else if (*p == '.' || *p == '0') given[n++] = 0;
    }
    if (n < CELLS) {
        out_str("error: the input has fewer than 81 cells\n");
        return;
    }

    /* Start with every digit possible everywhere, then place the givens. */
    State *s = &stack[0];
    for (int cell = 0; cell < CELLS; cell++) {
        s->value[cell] = 0;
        s->cand[cell] = ALL_DIGITS;
    }
    queue_len = 0;
    int ok = 1;
    for (int cell = 0; cell < CELLS && ok; cell++) {
        int d = given[cell];
        if (d == 0) continue;
        if (!has_digit[d][s->cand[cell]]) ok = 0;       /* clashes with a peer */
        else ok = place(s, cell, d);
    }
    ok = ok && propagate(s) && solve(0);

    if (!ok) {
        out_str("no solution\n");
        return;
    }
    for (int cell = 0, c = 0; cell < CELLS; cell++) {
        out_byte('0' + s->value[cell]);
        if (++c == 9) {
            out_nl();
            c = 0;
        }
    }
    out_str("placements: ");
    out_uint(placements);
    out_str(", guesses: ");
    out_uint(guesses);
    out_str(", backtracks: ");
    out_uint(backtracks);
    out_nl();
}
