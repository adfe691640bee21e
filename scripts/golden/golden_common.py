"""Shared pieces of the golden-data recorders (scripts/golden/record_*.py).

The diag problem both recorders use, the number formatting of the JSON files, the distance
measures printed by --check, and the command line (--out DIR / --check DIR / --list, ids).
Needs numpy only.
"""

import argparse
import json
import math
import os

import numpy as np

SCHEMA = "optim-golden/1"

# ---------------------------------------------------------------------------------------------
# The diag problem: f(w) = 1/2 sum a_i (w_i - c_i)^2 + 0.1 sum sin(w_i).

DIAG_A = [1.0, 3.0, 10.0, 0.5, 100.0, 2.0, 7.0]
DIAG_C = [1.0, -2.0, 0.5, 3.0, -1.0, 0.0, 2.0]
DIAG_W0 = [0.5, 0.5, -0.5, 1.0, 0.0, 2.0, -1.0]


def diag_problem(dtype):
    if dtype == "float32":
        how = (
            "float32: the parameter is float32; each g_i is the float64 expression "
            "a[i]*(w[i]-c[i]) + 0.1*cos(w[i]) evaluated on the float32 value of w[i] and rounded "
            "once to float32 (Math.fround in JS); the recorded 'grads' are exactly what was fed"
        )
    else:
        how = (
            "float64: g_i = a[i]*(w[i]-c[i]) + 0.1*cos(w[i]) in IEEE double, evaluated left to "
            "right without FMA (Python floats, libm cos); the recorded 'grads' are exactly what "
            "was fed"
        )
    return {
        "name": "diag_quadratic_plus_sin",
        "n": len(DIAG_A),
        "a": list(DIAG_A),
        "c": list(DIAG_C),
        "w0": list(DIAG_W0),
        "f": "f(w) = 0.5 * sum_i a_i*(w_i - c_i)^2 + 0.1 * sum_i sin(w_i)",
        "grad": "g_i = a_i*(w_i - c_i) + 0.1*cos(w_i)",
        "grad_evaluation": how,
        "loss_evaluation": (
            "loss = q + 0.1*s in double, where q accumulates 0.5*a_i*d_i*d_i (d_i = w_i - c_i, "
            "multiplied left to right) over ascending i and s accumulates sin(w_i) over ascending i"
        ),
    }


def diag_grad(w, dtype):
    """The gradient as plain Python floats (float32: rounded once to float32)."""
    g = [DIAG_A[i] * (w[i] - DIAG_C[i]) + 0.1 * math.cos(w[i]) for i in range(len(w))]
    if dtype == "float32":
        g = [float(np.float32(x)) for x in g]
    return g


def diag_loss(w):
    q = 0.0
    s = 0.0
    for i in range(len(w)):
        d = w[i] - DIAG_C[i]
        q += 0.5 * DIAG_A[i] * d * d
        s += math.sin(w[i])
    return q + 0.1 * s


def nudge(values, dtype, direction):
    """Every value moved by one ulp of the working dtype toward +inf (1) or -inf (-1)."""
    if direction == 0:
        return values
    np_dtype = np.float32 if dtype == "float32" else np.float64
    target = np_dtype(np.inf if direction > 0 else -np.inf)
    return [float(np.nextafter(np_dtype(x), target)) for x in values]


# ---------------------------------------------------------------------------------------------
# Comparisons.


def _flat(x):
    out = []

    def walk(v):
        if isinstance(v, (list, tuple)):
            for e in v:
                walk(e)
        else:
            out.append(float(v))

    walk(x)
    return out


def _ordinal(x, dtype):
    """Monotone integer image of a float, so that ulp distance is a difference of ordinals."""
    if dtype == "float32":
        i = int(np.array([x], dtype=np.float32).view(np.int32)[0])
        return i if i >= 0 else -(i & 0x7FFFFFFF)
    i = int(np.array([x], dtype=np.float64).view(np.int64)[0])
    return i if i >= 0 else -(i & 0x7FFFFFFFFFFFFFFF)


def distance(a, ref, dtype="float64"):
    """max abs, max rel (relative to ref, over nonzero ref) and max ulp between two nestings."""
    fa, fr = _flat(a), _flat(ref)
    if len(fa) != len(fr):
        return {"max_abs": math.inf, "max_rel": math.inf, "max_ulp": math.inf, "shape_mismatch": True}
    max_abs = max_rel = max_ulp = 0.0
    for x, y in zip(fa, fr):
        if math.isnan(x) or math.isnan(y):
            if not (math.isnan(x) and math.isnan(y)):
                return {"max_abs": math.nan, "max_rel": math.nan, "max_ulp": math.nan}
            continue
        d = abs(x - y)
        max_abs = max(max_abs, d)
        if y != 0:
            max_rel = max(max_rel, d / abs(y))
        elif d != 0:
            max_rel = math.inf
        max_ulp = max(max_ulp, float(abs(_ordinal(x, dtype) - _ordinal(y, dtype))))
    return {"max_abs": max_abs, "max_rel": max_rel, "max_ulp": max_ulp}


# ---------------------------------------------------------------------------------------------
# Output.


def to_json(value, indent=0):
    """Indented JSON, with lists of scalars on one line; floats in shortest round-trip form."""
    pad = " " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{json.dumps(str(k))}: {to_json(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return "[" + ", ".join(to_json(v) for v in value) + "]"
        return "[\n" + ",\n".join(pad + to_json(v, indent + 1) for v in value) + "\n" + " " * indent + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(str(value))  # JSON has no Infinity/NaN
    return json.dumps(value, allow_nan=False)


def fmt(x):
    return "n/a" if x is None else f"{x:.3g}"


def run_cli(argv, description, recorders, check, main_field, setup=None, banner=None):
    """--out DIR / --check DIR / --list over `recorders` (id -> function(id) -> document).

    `check(fresh, stored)` returns {field: max abs (or a bool)}; `main_field(stored)` names the
    field whose max abs is the file's headline number.
    """
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", metavar="DIR", help="write DIR/<id>.json for each id")
    mode.add_argument("--check", metavar="DIR", help="compare fresh records with DIR/<id>.json")
    mode.add_argument("--list", action="store_true", help="print the known ids")
    ap.add_argument("ids", nargs="*", help="ids to record or check (default: all / all present in DIR)")
    args = ap.parse_args(argv)

    if args.list:
        for k in recorders:
            print(k)
        return 0
    unknown = [i for i in args.ids if i not in recorders]
    if unknown:
        ap.error(f"unknown ids: {' '.join(unknown)} (see --list)")
    if setup:
        setup()

    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for ident in args.ids or list(recorders):
            doc = recorders[ident](ident)
            path = os.path.join(args.out, f"{ident}.json")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(to_json(doc) + "\n")
            print(f"wrote {path}")
        return 0

    ids = args.ids or [k for k in recorders if os.path.exists(os.path.join(args.check, f"{k}.json"))]
    if not ids:
        print(f"no known ids in {args.check}")
        return 1
    if banner:
        print(f"{banner} vs {args.check}")
    worst = 0.0
    for ident in ids:
        path = os.path.join(args.check, f"{ident}.json")
        if not os.path.exists(path):
            print(f"{ident:28s} missing: {path}")
            continue
        with open(path, encoding="utf-8") as fh:
            stored = json.load(fh)
        diffs = check(recorders[ident](ident), stored)
        field = main_field(stored)
        worst = max(worst, diffs[field])
        env = stored.get("env") or {}
        made_with = ", ".join(f"{k} {env[k]}" for k in ("torch", "scipy") if k in env) or "?"
        rest = "  ".join(f"{k}={v if isinstance(v, bool) else fmt(v)}" for k, v in diffs.items() if k != field)
        print(f"{ident:28s} {field} max abs {fmt(diffs[field]):>8s}  {rest}  (file: {made_with})")
    print(f"largest headline max abs over these files: {fmt(worst)}")
    return 0
