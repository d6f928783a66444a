/*
 * matching.c — minimum-cost perfect matching of an n x n cost matrix
 * (the assignment problem) by the Hungarian algorithm, O(n^3).
 *
 * Input:  n, then the n*n costs row by row, all decimal integers separated
 *         by whitespace, e.g. "3  4 1 3  2 0 5  3 2 2". 1 <= n <= MAXN.
 * Output: the matrix, a step log, the assignment and its cost.
 *
 * The algorithm keeps a feasible dual solution: potentials u[i] for rows and
 * v[j] for columns with u[i] + v[j] <= cost[i][j]. An edge is "tight" when
 * equality holds. Rows are added one at a time. For the new row we grow a
 * tree of alternating paths over tight edges (Dijkstra-like, with minv[j]
 * the smallest reduced cost from the tree to column j). When no tight edge
 * leaves the tree, the potentials are shifted by delta = min minv[j]: this
 * keeps every tight edge in the tree tight and makes at least one new edge
 * tight. When the tree reaches a free column, the path back to the new row
 * is flipped (augmentation) and the matching grows by one.
 *
 * The log prints, for every row, each dual update (delta and the column it
 * makes reachable) and the matching after each augmentation. At the end the
 * total cost of the matching equals the dual bound sum(u) + sum(v): the
 * certificate that the matching is optimal.
 *
 * Arrays are 1-based as in the textbook formulation; index 0 of the column
 * arrays is a virtual column that holds the row being inserted.
 */

#define MAXN 8
#define INF 0x3fffffff

static int cost[MAXN + 1][MAXN + 1];  /* cost[i][j], 1-based */
static int u[MAXN + 1], v[MAXN + 1];  /* row and column potentials */
static int match_row[MAXN + 1];       /* match_row[j]: row matched to column j, 0 = free */
static int way[MAXN + 1];             /* way[j]: previous column on the path to j */
static int minv[MAXN + 1];            /* smallest reduced cost from the tree to j */
static char used[MAXN + 1];           /* column j is in the tree */

static void print_matching(int n) {
    out_str("  matching:");
    for (int j = 1; j <= n; j++) {
        if (match_row[j]) {
            out_str(" r");
            out_int(match_row[j]);
            out_str("-c");
            out_int(j);
        }
    }
    out_nl();
}

/* Insert row i into the matching (rows 1..i-1 are already matched). */
static void add_row(int i, int n) {
    match_row[0] = i;                  /* the new row sits on virtual column 0 */
    int j0 = 0;                        /* the column whose row we expand next */
    /* (Not unrolled: clang would merge two adjacent INF stores into one
       i64.store, and the toolchain accepts only i32; see isowasm.h.) */
#pragma clang loop unroll(disable)
    for (int j = 0; j <= n; j++) {
        minv[j] = INF;
        used[j] = 0;
    }
    out_str("row ");
    out_int(i);
    out_str(":\n");

    /* Grow the tree until it reaches a free column. */
    do {
        used[j0] = 1;
        int i0 = match_row[j0];
        int delta = INF, j1 = 0;
        for (int j = 1; j <= n; j++) {
            if (used[j]) continue;
            int reduced = cost[i0][j] - u[i0] - v[j];
            if (reduced < minv[j]) {
                minv[j] = reduced;
                way[j] = j0;
            }
            if (minv[j] < delta) {
                delta = minv[j];
                j1 = j;
            }
        }
        /* Shift the potentials: tree rows up, tree columns down. */
        for (int j = 0; j <= n; j++) {
            if (used[j]) {
                u[match_row[j]] += delta;
                v[j] -= delta;
            } else {
                minv[j] -= delta;
            }
        }
        out_str("  dual update ");
        out_int(delta);
        out_str(", column ");
        out_int(j1);
        if (match_row[j1]) {
            out_str(" tight, matched to row ");
            out_int(match_row[j1]);
            out_str(": extend tree\n");
        } else {
            out_str(" tight and free: augment\n");
        }
        j0 = j1;
    } while (match_row[j0] != 0);

    /* Flip the alternating path from the free column back to column 0. */
    out_str("  path: c");
    out_int(j0);
    do {
        int j1 = way[j0];
        match_row[j0] = match_row[j1];
        j0 = j1;
        if (j0) {
            out_str(" <- c");
            out_int(j0);
        }
    } while (j0);
    out_nl();
    print_matching(n);
}

void compute(const char *input) {
    const char *p = input;
    int n = parse_int(&p);
    if (n < 1 || n > MAXN) {
        out_str("error: n must be between 1 and 8\n");
        return;
    }
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= n; j++)
            cost[i][j] = parse_int(&p);

    out_str("cost matrix (");
    out_int(n);
    out_str("x");
    out_int(n);
    out_str("):\n");
    for (int i = 1; i <= n; i++) {
        for (int j = 1; j <= n; j++) {
            out_byte(' ');
            out_int(cost[i][j]);
        }
        out_nl();
    }

    for (int i = 1; i <= n; i++) add_row(i, n);

    out_str("assignment:\n");
    int total = 0;
    for (int j = 1; j <= n; j++) {
        int i = match_row[j];
        total += cost[i][j];
    }
    for (int i = 1; i <= n; i++) {
        for (int j = 1; j <= n; j++) {
            if (match_row[j] == i) {
                out_str("  row ");
                out_int(i);
                out_str(" -> column ");
                out_int(j);
                out_str(" (cost ");
                out_int(cost[i][j]);
                out_str(")\n");
            }
        }
    }
    int bound = 0;
    for (int k = 1; k <= n; k++) bound += u[k] + v[k];
    out_str("total cost: ");
    out_int(total);
    out_nl();
    out_str("dual bound: ");
    out_int(bound);
    out_nl();
}
