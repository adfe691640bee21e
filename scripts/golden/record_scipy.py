#!/usr/bin/env python3
"""Record the Newton and Cholesky reference files under test/golden, or check stored ones.

    python3 scripts/golden/record_scipy.py --out DIR [ids...]     write DIR/<id>.json
    python3 scripts/golden/record_scipy.py --check DIR [ids...]   record in memory, compare
                                                                  with DIR/<id>.json
    python3 scripts/golden/record_scipy.py --list                 the ids this script knows

ids: newton_diag, newton_diag_damped_lambda1, cholesky_solve. Needs numpy and scipy (see
scripts/golden/README.md); the tests never run this script.

The stored files (test/golden/torch-1.13) were made with scipy 1.10.1 on OpenBLAS 0.3.21. The
correctly rounded and the plain-textbook values depend on nothing but IEEE arithmetic and must
match bit for bit on any machine; the LAPACK values (scipy.linalg.cho_factor / cho_solve) may
differ in the last bits with another LAPACK.
"""

import math
import platform
import sys
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np
import scipy
import scipy.linalg

from golden_common import (
    DIAG_A,
    DIAG_W0,
    SCHEMA,
    diag_grad,
    diag_loss,
    diag_problem,
    distance,
    run_cli,
)

GENERATOR = "scripts/golden/record_scipy.py"
NEWTON = {"newton_diag": 0.0, "newton_diag_damped_lambda1": 1.0}
NEWTON_ITERATIONS = 5
DECIMAL_DIGITS = 80


# ---------------------------------------------------------------------------------------------
# Three ways to factor and solve: LAPACK, exact (then rounded once), and the plain textbook loops.


def lapack_factor_solve(M, b):
    c, lower = scipy.linalg.cho_factor(np.array(M, dtype=np.float64), lower=True)
    x = scipy.linalg.cho_solve((c, lower), np.array(b, dtype=np.float64))
    return np.tril(c).tolist(), x.tolist()


def correctly_rounded_cholesky(M):
    """Cholesky-Banachiewicz in 80-digit decimal on the exact doubles of M, rounded once."""
    getcontext().prec = DECIMAL_DIGITS
    n = len(M)
    L = [[Decimal(0)] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = Decimal(M[i][j]) - sum((L[i][k] * L[j][k] for k in range(j)), Decimal(0))
            L[i][j] = s.sqrt() if i == j else s / L[j][j]
    return [[float(v) for v in row] for row in L]


def exact_solve(M, b):
    """x = M^{-1} b in exact rational arithmetic on the exact doubles (Gauss, partial pivoting)."""
    n = len(M)
    A = [[Fraction(M[i][j]) for j in range(n)] + [Fraction(b[i])] for i in range(n)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(A[r][col]))
        A[col], A[piv] = A[piv], A[col]
        for r in range(col + 1, n):
            f = A[r][col] / A[col][col]
            if f:
                A[r] = [A[r][k] - f * A[col][k] for k in range(n + 1)]
    x = [Fraction(0)] * n
    for i in reversed(range(n)):
        x[i] = (A[i][n] - sum((A[i][k] * x[k] for k in range(i + 1, n)), Fraction(0))) / A[i][i]
    return x


def textbook_cholesky(M):
    """Cholesky-Banachiewicz in double, no FMA: s = m_ij; s -= l_ik*l_jk (k ascending)."""
    n = len(M)
    L = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = M[i][j]
            for k in range(j):
                s -= L[i][k] * L[j][k]
            L[i][j] = math.sqrt(s) if i == j else s / L[j][j]
    return L


def textbook_solve(L, b):
    """L y = b forward, then L^T x = y backward, in double, same accumulation order."""
    n = len(L)
    y = [0.0] * n
    for i in range(n):
        s = b[i]
        for j in range(i):
            s -= L[i][j] * y[j]
        y[i] = s / L[i][i]
    for i in reversed(range(n)):
        s = y[i]
        for j in range(i + 1, n):
            s -= L[j][i] * y[j]
        y[i] = s / L[i][i]
    return y


def normwise_rel(a, ref):
    """max_ij |a - ref| / max_ij |ref| (the elementwise max norm), in double."""
    a, ref = np.array(a, dtype=np.float64), np.array(ref, dtype=np.float64)
    return float(np.max(np.abs(a - ref)) / np.max(np.abs(ref)))


def ulps(a, ref):
    return distance(a, ref)["max_ulp"]


# ---------------------------------------------------------------------------------------------
# Environment.


def lapack_name():
    try:
        deps = scipy.show_config(mode="dicts")["Build Dependencies"]["lapack"]
        return f"{deps.get('name', '?')} {deps.get('version', '?')} via scipy.linalg.cho_factor(lower=True)/cho_solve"
    except Exception:  # older scipy: no dict mode
        return "unknown LAPACK via scipy.linalg.cho_factor(lower=True)/cho_solve"


def environment():
    return {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "lapack": lapack_name(),
        "generator": GENERATOR,
    }


# ---------------------------------------------------------------------------------------------
# Newton on the diag problem.


def diag_hessian(w):
    n = len(w)
    return [[(DIAG_A[i] - 0.1 * math.sin(w[i])) if i == j else 0.0 for j in range(n)] for i in range(n)]


def norm2(v):
    return math.sqrt(sum(x * x for x in v))


def newton_loop(lam, factor_solve):
    """w_{k+1} = w_k - (H(w_k) + lam*I)^{-1} g(w_k); returns the iterate records."""
    w = list(DIAG_W0)
    g = diag_grad(w, "float64")
    out = [{"k": 0, "w": w, "f": diag_loss(w), "grad": g, "grad_norm2": norm2(g)}]
    for k in range(1, NEWTON_ITERATIONS + 1):
        H = diag_hessian(w)
        M = (np.array(H) + lam * np.eye(len(w))).tolist()
        L, d = factor_solve(M, g)
        w = (np.array(w) - np.array(d)).tolist()
        rec = {"k": k, "H": H, "M_factored": M, "L": L, "step_d": d}
        g_prev = g
        g = diag_grad(w, "float64")
        rec.update({"w": w, "f": diag_loss(w), "grad": g, "grad_norm2": norm2(g), "_M": M, "_g": g_prev})
        out.append(rec)
    return out


def textbook_factor_solve(M, b):
    L = textbook_cholesky(M)
    return L, textbook_solve(L, b)


def record_newton(ident):
    lam = NEWTON[ident]
    iterates = newton_loop(lam, lapack_factor_solve)
    plain = newton_loop(lam, textbook_factor_solve)
    for rec in iterates[1:]:
        M, g = rec.pop("_M"), rec.pop("_g")
        exact = exact_solve(M, g)
        exact_rounded = [float(v) for v in exact]
        extra = {
            "L_vs_hiprec_max_ulp": ulps(rec["L"], correctly_rounded_cholesky(M)),
            "d_vs_exact_solve_max_ulp": ulps(rec["step_d"], exact_rounded),
            "d_vs_exact_solve_normwise_rel": normwise_rel(rec["step_d"], exact_rounded),
        }
        tail = {k: rec.pop(k) for k in ("w", "f", "grad", "grad_norm2")}
        rec.update(extra)
        rec.update(tail)
    for rec in plain[1:]:
        rec.pop("_M")
        rec.pop("_g")
    problem = diag_problem("float64")
    problem["hessian"] = "H = diag(a_i - 0.1*sin(w_i)) (stored dense 7x7)"
    return {
        "schema": SCHEMA,
        "id": ident,
        "kind": "newton",
        "dtype": "float64",
        "method": (
            "w_{k+1} = w_k - (H(w_k) + lambda*I)^{-1} g(w_k); solved by Cholesky "
            "(scipy.linalg.cho_factor(M, lower=True), cho_solve); unit step, no line search"
        ),
        "lambda": lam,
        "iterations": NEWTON_ITERATIONS,
        "problem": problem,
        "checkpoints": {str(r["k"]): r["w"] for r in iterates},
        "iterates": iterates,
        "checks": {
            "plain_textbook_cholesky_closed_loop_max_abs_dev": distance(
                [r["w"] for r in plain], [r["w"] for r in iterates]
            )["max_abs"]
        },
        "env": environment(),
    }


# ---------------------------------------------------------------------------------------------
# Dense Cholesky factor and solve.

A6 = [
    [10.0, 2.0, -1.0, 0.0, 1.0, 0.5],
    [2.0, 8.0, 1.0, -2.0, 0.0, 1.0],
    [-1.0, 1.0, 6.0, 1.0, -1.0, 0.0],
    [0.0, -2.0, 1.0, 7.0, 2.0, -1.0],
    [1.0, 0.0, -1.0, 2.0, 9.0, 3.0],
    [0.5, 1.0, 0.0, -1.0, 3.0, 6.0],
]
A6_B = [1.0, -2.0, 3.0, 0.5, -1.0, 2.0]
HILBERT6 = [[1.0 / (i + j + 1) for j in range(6)] for i in range(6)]  # the doubles nearest 1/(i+j+1)
HILBERT6_B = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
LINALG_CASES = [("A6", A6, A6_B), ("hilbert6_rounded", HILBERT6, HILBERT6_B)]


def linalg_case(name, M, b):
    L_lapack, x_lapack = lapack_factor_solve(M, b)
    L_cr = correctly_rounded_cholesky(M)
    x_cr = [float(v) for v in exact_solve(M, b)]
    L_plain = textbook_cholesky(M)
    x_plain = textbook_solve(L_plain, b)
    return {
        "name": name,
        "M": M,
        "b": b,
        "cond2": float(np.linalg.cond(np.array(M), 2)),
        "L_lapack": L_lapack,
        "x_lapack": x_lapack,
        "L_correctly_rounded": L_cr,
        "x_correctly_rounded": x_cr,
        "L_plain_textbook": L_plain,
        "x_plain_textbook": x_plain,
        "max_ulp": {
            "L_lapack_vs_cr": ulps(L_lapack, L_cr),
            "x_lapack_vs_cr": ulps(x_lapack, x_cr),
            "L_plain_vs_cr": ulps(L_plain, L_cr),
            "x_plain_vs_cr": ulps(x_plain, x_cr),
        },
        "normwise_rel": {
            "L_lapack_vs_cr": normwise_rel(L_lapack, L_cr),
            "x_lapack_vs_cr": normwise_rel(x_lapack, x_cr),
            "L_plain_vs_cr": normwise_rel(L_plain, L_cr),
            "x_plain_vs_cr": normwise_rel(x_plain, x_cr),
        },
    }


def record_cholesky(ident):
    return {
        "schema": SCHEMA,
        "id": ident,
        "kind": "linalg",
        "dtype": "float64",
        "what": (
            "lower Cholesky L (M = L L^T) and x = M^{-1} b. *_correctly_rounded: L from "
            f"{DECIMAL_DIGITS}-digit decimal arithmetic, x from exact rational elimination, each "
            "rounded once to double (the matrix entries are the exact doubles written here). "
            "*_lapack: scipy cho_factor/cho_solve. *_plain_textbook: Cholesky-Banachiewicz + "
            "forward/back substitution in double, no FMA, each sum started from the matrix or "
            "right-hand-side entry and reduced in ascending index order."
        ),
        "cases": [linalg_case(*c) for c in LINALG_CASES],
        "env": environment(),
    }


RECORDERS = {k: record_newton for k in NEWTON}
RECORDERS["cholesky_solve"] = record_cholesky


def check(fresh, stored):
    if stored.get("kind") == "newton":
        out = {"checkpoints": distance(
            [fresh["checkpoints"][k] for k in sorted(stored["checkpoints"])],
            [stored["checkpoints"][k] for k in sorted(stored["checkpoints"])],
        )["max_abs"]}
        for field in ("f", "grad", "L", "step_d"):
            have = [r.get(field, []) for r in fresh["iterates"]]
            want = [r.get(field, []) for r in stored["iterates"]]
            out[field] = distance(have, want)["max_abs"]
        return out
    exact = lapack = 0.0
    cond = 0.0
    by_name = {c["name"]: c for c in fresh["cases"]}
    for want in stored["cases"]:
        have = by_name.get(want["name"])
        if have is None:
            return {"exact_and_textbook": math.inf}
        for f in ("L_correctly_rounded", "x_correctly_rounded", "L_plain_textbook", "x_plain_textbook"):
            exact = max(exact, distance(have[f], want[f])["max_abs"])
        for f in ("L_lapack", "x_lapack"):
            lapack = max(lapack, distance(have[f], want[f])["max_abs"])
        cond = max(cond, abs(have["cond2"] - want["cond2"]) / want["cond2"])
    return {"exact_and_textbook": exact, "lapack": lapack, "cond2_rel": cond}


def main(argv=None):
    return run_cli(
        argv,
        __doc__,
        RECORDERS,
        check,
        main_field=lambda stored: "checkpoints" if stored.get("kind") == "newton" else "exact_and_textbook",
        banner=f"scipy {scipy.__version__}, numpy {np.__version__}",
    )


if __name__ == "__main__":
    sys.exit(main())
