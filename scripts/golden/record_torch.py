#!/usr/bin/env python3
"""Record the torch reference trajectories under test/golden, or check stored ones.

    python3 scripts/golden/record_torch.py --out DIR [ids...]     write DIR/<id>.json
    python3 scripts/golden/record_torch.py --check DIR [ids...]   record in memory, compare
                                                                  with DIR/<id>.json
    python3 scripts/golden/record_torch.py --list                 the ids this script knows

Without ids, --out records every known id and --check every known id that has a file in DIR.
Needs torch and numpy (see scripts/golden/README.md); the tests never run this script.

The schema is the one test/golden/README.md describes ("optim-golden/1"). Every run uses the
single-tensor for-loop path (foreach=False, fused unset) on one thread. The files in
test/golden/torch-2.13 were made with torch 2.13.0+cpu, the ones in test/golden/torch-1.13 with
torch 1.13.1: --check against a folder recorded with another torch version than the installed one
reports that version's known last-bit differences (see test/golden/README.md), not a bug.
"""

import hashlib
import importlib
import inspect
import math
import os
import platform
import sys

import numpy as np
import torch

from golden_common import (
    DIAG_W0,
    SCHEMA,
    diag_grad,
    diag_loss,
    diag_problem,
    distance,
    nudge,
    run_cli,
)

GENERATOR = "scripts/golden/record_torch.py"

# ---------------------------------------------------------------------------------------------
# Environment and sources.


def torch_blas():
    for line in torch.__config__.show().splitlines():
        for part in line.replace(",", " ").split():
            if part.startswith("BLAS_INFO="):
                return part.split("=", 1)[1].upper() + " (torch.__config__)"
    return "unknown"


def sqrt_rounding():
    """How often torch.sqrt differs from the correctly rounded sqrt on this build."""
    x = np.random.default_rng(0).uniform(0, 1000, 100000)
    out = {}
    for name, np_dtype, t_dtype in (("float64", np.float64, torch.float64), ("float32", np.float32, torch.float32)):
        xs = x.astype(np_dtype)
        mine = torch.sqrt(torch.from_numpy(xs)).numpy()
        out[name] = float(np.mean(mine != np.sqrt(xs)))
    out["inputs"] = "1e5 numpy default_rng(0).uniform(0, 1000)"
    out["meaning"] = (
        "fraction of inputs where torch.sqrt (CPU) differs from the correctly rounded IEEE sqrt "
        "(numpy / Math.sqrt)"
    )
    return out


_ENV = None


def environment():
    global _ENV
    if _ENV is None:
        _ENV = {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "machine": platform.machine(),
            "generator": GENERATOR,
            "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_num_threads": torch.get_num_threads(),
            "torch_default_dtype": str(torch.get_default_dtype()),
            "torch_blas": torch_blas(),
            "library": "torch",
            "torch_sqrt_not_correctly_rounded": sqrt_rounding(),
        }
    return _ENV


def source_of(candidates):
    """The first (module, attribute) that exists, with the sha256 of its inspect.getsource."""
    for module_name, attr in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        obj = getattr(module, attr, None)
        if obj is None:
            continue
        src = inspect.getsource(obj)
        path = inspect.getsourcefile(obj) or ""
        rel = path[path.rfind("torch" + os.sep):] if ("torch" + os.sep) in path else path
        return {
            "function": f"{module_name}.{attr}",
            "file": rel.replace(os.sep, "/"),
            "sha256_of_inspect_getsource": hashlib.sha256(src.encode("utf-8")).hexdigest(),
        }
    return None


# ---------------------------------------------------------------------------------------------
# First-order optimizers on the diag problem.

# id: (optimizer class name, constructor kwargs in call order, dtype). The kwargs are those of the
# stored files (their `constructor_kwargs`); foreach=False is added to every call.
FIRST_ORDER = {
    "sgd": ("SGD", {"lr": 0.01}, "float64"),
    "sgd_momentum": ("SGD", {"lr": 0.01, "momentum": 0.9}, "float64"),
    "sgd_nesterov": ("SGD", {"lr": 0.01, "momentum": 0.9, "nesterov": True}, "float64"),
    "sgd_momentum_dampening": ("SGD", {"lr": 0.01, "momentum": 0.9, "dampening": 0.1}, "float64"),
    "sgd_momentum_wd": ("SGD", {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01}, "float64"),
    "sgd_momentum_f32": ("SGD", {"lr": 0.01, "momentum": 0.9}, "float32"),
    "adagrad": ("Adagrad", {"lr": 0.1}, "float64"),
    "adagrad_lrdecay_wd_init": (
        "Adagrad",
        {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1},
        "float64",
    ),
    "rmsprop": ("RMSprop", {"lr": 0.01}, "float64"),
    "rmsprop_centered_momentum": (
        "RMSprop",
        {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True},
        "float64",
    ),
    "adam": ("Adam", {"lr": 0.01}, "float64"),
    "adam_betas_eps_wd": ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-06, "weight_decay": 0.01}, "float64"),
    "adam_amsgrad": ("Adam", {"lr": 0.01, "amsgrad": True}, "float64"),
    "adam_f32": ("Adam", {"lr": 0.01}, "float32"),
    "adamw": ("AdamW", {"lr": 0.01, "weight_decay": 0.1}, "float64"),
    "nadam": ("NAdam", {"lr": 0.01}, "float64"),
    "radam": ("RAdam", {"lr": 0.01}, "float64"),
    "adamax": ("Adamax", {"lr": 0.01}, "float64"),
    "adamax_f32": ("Adamax", {"lr": 0.01}, "float32"),
    "adamax_betas_eps_wd": ("Adamax", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-06, "weight_decay": 0.05}, "float64"),
    "adamax_maximize_f32": ("Adamax", {"lr": 0.005, "betas": (0.95, 0.9), "weight_decay": 0.01, "maximize": True}, "float32"),
    "adadelta": ("Adadelta", {"lr": 1.0}, "float64"),
    "asgd": ("ASGD", {"lr": 0.01}, "float64"),
    "rprop": ("Rprop", {"lr": 0.01}, "float64"),
    "rprop_f32": ("Rprop", {"lr": 0.01}, "float32"),
    "rprop_etas_steps_maximize": ("Rprop", {"lr": 0.02, "etas": (0.3, 1.5), "step_sizes": (1e-4, 0.05), "maximize": True}, "float64"),
    "adadelta_f32": ("Adadelta", {"lr": 1.0}, "float32"),
    "asgd_f32": ("ASGD", {"lr": 0.01}, "float32"),
    "asgd_averaging_wd": ("ASGD", {"lr": 0.02, "lambd": 0.01, "alpha": 0.5, "t0": 10, "weight_decay": 0.05}, "float64"),
    "asgd_averaging_maximize_f32": ("ASGD", {"lr": 0.0001, "t0": 20, "maximize": True}, "float32"),
    "adadelta_rho_eps_wd": ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.05}, "float64"),
}

FIRST_ORDER_STEPS = 100
STATE_CHECKPOINTS = (1, 2, 3, 10)  # and the last step

# Where each class's single-tensor update lives (the first existing candidate is used: AdamW
# shares Adam's function in recent torch, had its own before).
SOURCES = {
    "SGD": [("torch.optim.sgd", "_single_tensor_sgd")],
    "Adagrad": [("torch.optim.adagrad", "_single_tensor_adagrad")],
    "RMSprop": [("torch.optim.rmsprop", "_single_tensor_rmsprop")],
    "Adam": [("torch.optim.adam", "_single_tensor_adam")],
    "AdamW": [("torch.optim.adamw", "_single_tensor_adamw"), ("torch.optim.adam", "_single_tensor_adam")],
    "NAdam": [("torch.optim.nadam", "_single_tensor_nadam")],
    "RAdam": [("torch.optim.radam", "_single_tensor_radam")],
    "Adamax": [("torch.optim.adamax", "_single_tensor_adamax")],
    "Adadelta": [("torch.optim.adadelta", "_single_tensor_adadelta")],
    "ASGD": [("torch.optim.asgd", "_single_tensor_asgd")],
    "Rprop": [("torch.optim.rprop", "_single_tensor_rprop")],
}

# The update rule of torch 2.x's single-tensor path, in words (passed through into `formula`).
# "lerp(x, y, w)" is torch.lerp: x + w*(y - x) as one fma when w < 0.5.
FORMULAS = {
    "SGD": (
        "d = g (+ wd*p if weight_decay); with momentum: buf = d on the first step (a copy, no "
        "dampening), afterwards buf = momentum*buf + (1 - dampening)*d; d = d + momentum*buf if "
        "nesterov else buf; p = p - lr*d (p.add_(d, alpha=-lr))"
    ),
    "Adagrad": (
        "step += 1; d = g (+ wd*p); clr = lr / (1 + (step - 1)*lr_decay); sum = sum + d*d "
        "(sum starts at initial_accumulator_value); p = p - clr * d / (sqrt(sum) + eps) "
        "(torch.sqrt of this build)"
    ),
    "RMSprop": (
        "step += 1; d = g (+ wd*p); sq = alpha*sq + (1 - alpha)*d*d; centered: ga = lerp(ga, d, "
        "1 - alpha), avg = sqrt(sq - ga*ga) + eps, else avg = sqrt(sq) + eps (eps outside the "
        "sqrt); momentum > 0: buf = momentum*buf + d/avg, p = p - lr*buf; else p = p - lr*d/avg"
    ),
    "Adam": (
        "step += 1 (0-d float32 tensor); AdamW (decoupled): p = p*(1 - lr*wd) first, Adam: d = g + "
        "wd*p; m = lerp(m, d, 1 - b1); v = b2*v + (1 - b2)*d*d; bc1 = 1 - b1^step, bc2 = 1 - "
        "b2^step; amsgrad: vmax = max(vmax, v) and vmax replaces v below; denom = sqrt(v)/sqrt(bc2) "
        "+ eps; p = p - (lr/bc1) * m / denom"
    ),
    "NAdam": (
        "step += 1; bc2 = 1 - b2^step; d = g (+ wd*p, or p*(1 - lr*wd) if decoupled); mu = b1*(1 - "
        "0.5*0.96^(step*momentum_decay)), mu_next likewise at step + 1; mu_product *= mu (a "
        "float32 0-d tensor); m = lerp(m, d, 1 - b1); v = b2*v + (1 - b2)*d*d; denom = sqrt(v/bc2) "
        "+ eps; p = p - lr*(1 - mu)/(1 - mu_product) * d/denom - lr*mu_next/(1 - mu_product*mu_next) "
        "* m/denom"
    ),
    "RAdam": (
        "step += 1; d = g (+ wd*p, or p*(1 - lr*wd) if decoupled); m = lerp(m, d, 1 - b1); v = "
        "b2*v + (1 - b2)*d*d; bc1 = 1 - b1^step, bc2 = 1 - b2^step; rho_inf = 2/(1 - b2) - 1; "
        "rho = rho_inf - 2*step*b2^step/bc2; if rho > 5: r = sqrt((rho - 4)(rho - 2)rho_inf / "
        "((rho_inf - 4)(rho_inf - 2)rho)), p = p - lr * (m/bc1) * r * sqrt(bc2)/(sqrt(v) + eps); "
        "else p = p - lr * m/bc1"
    ),
    "Adamax": (
        "step += 1; d = g (+ wd*p); m = lerp(m, d, 1 - b1); u = max(b2*u, |d| + eps); p = p - "
        "(lr/(1 - b1^step)) * m/u"
    ),
    "Adadelta": (
        "step += 1; d = g (+ wd*p); sq = rho*sq + (1 - rho)*d*d; delta = sqrt(acc + eps) / "
        "sqrt(sq + eps) * d; acc = rho*acc + (1 - rho)*delta*delta; p = p - lr*delta"
    ),
    "ASGD": (
        "eta, mu, step are 0-d tensors of the default dtype (float32): eta starts at lr, mu at 1; "
        "step += 1; d = g (+ wd*p); e = eta; p = p*(1 - lambd*e); p = p - e*d; ax = ax + (p - "
        "ax)*mu if mu != 1 else ax = p; then eta = lr/(1 + lambd*lr*step)^alpha and mu = 1/max(1, "
        "step - t0), both stored rounded to float32"
    ),
    "Rprop": (
        "step += 1; s = sign(g*prev); step_size = clamp(step_size * (etaplus if s > 0, etaminus "
        "if s < 0, 1 if s == 0), step_size_min, step_size_max) (step_size starts at lr); g = 0 "
        "where s < 0; p = p - sign(g)*step_size; prev = g"
    ),
}
FORMULAS["AdamW"] = FORMULAS["Adam"]  # one function, decoupled_weight_decay=True


def _state_value(v):
    if isinstance(v, torch.Tensor):
        v = v.detach()
        if v.dim() == 0:
            return float(v.item()) if v.is_floating_point() else int(v.item())
        return v.reshape(-1).tolist()
    if isinstance(v, tuple):
        return list(v)
    return v


def _hyperparameters(opt):
    out = {}
    for k, v in opt.param_groups[0].items():
        if k == "params":
            continue
        if isinstance(v, torch.Tensor):
            v = v.item()
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def _call_kwargs(kwargs):
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def run_first_order(ident, direction=0, path="single"):
    """One closed-loop run; `direction` nudges every gradient by that many ulps (-1, 0, 1)."""
    name, kwargs, dtype = FIRST_ORDER[ident]
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    p = torch.nn.Parameter(torch.tensor(DIAG_W0, dtype=tdtype))
    extra = {"foreach": False} if path == "single" else {"foreach": True} if path == "foreach" else {"fused": True}
    opt = getattr(torch.optim, name)([p], **kwargs, **extra)
    hyper = _hyperparameters(opt)
    traj, grads, loss, ax = [], [], [diag_loss(p.detach().tolist())], []
    states, shapes = {}, {}
    for t in range(1, FIRST_ORDER_STEPS + 1):
        g = nudge(diag_grad(p.detach().tolist(), dtype), dtype, direction)
        p.grad = torch.tensor(g, dtype=tdtype)
        opt.step()
        w = p.detach().tolist()
        traj.append(w)
        grads.append(g)
        loss.append(diag_loss(w))
        st = opt.state[p]
        if "ax" in st:
            ax.append(st["ax"].detach().reshape(-1).tolist())
        if t in STATE_CHECKPOINTS or t == FIRST_ORDER_STEPS:
            states[str(t)] = {k: _state_value(v) for k, v in st.items()}
            shapes = {k: list(v.shape) if isinstance(v, torch.Tensor) else [] for k, v in st.items()}
    return {"hyper": hyper, "traj": traj, "grads": grads, "loss": loss, "states": states, "shapes": shapes, "ax": ax}


def sensitivity_block(main, runs, dtype, what, checkpoints):
    """Distances of the +1 ulp / -1 ulp runs from the main one (lists of iterates)."""
    block = {
        "method": (
            "closed loop, same protocol, every gradient element replaced by np.nextafter(g, +inf) "
            f"('plus_1ulp') or np.nextafter(g, -inf) ('minus_1ulp') in the working dtype ({dtype}) "
            f"before it is fed; compared with the main {what}"
        )
    }
    for label, run in zip(("plus_1ulp", "minus_1ulp"), runs):
        block[label] = distance(run, main, dtype)
    block["max_abs"] = max(block["plus_1ulp"]["max_abs"], block["minus_1ulp"]["max_abs"])
    block["max_rel"] = max(block["plus_1ulp"]["max_rel"], block["minus_1ulp"]["max_rel"])
    block["max_abs_at_checkpoint"] = {
        str(k): max(distance(run[k - 1], main[k - 1], dtype)["max_abs"] for run in runs) for k in checkpoints
    }
    return block


def record_first_order(ident):
    name, kwargs, dtype = FIRST_ORDER[ident]
    main = run_first_order(ident)
    checkpoints = list(STATE_CHECKPOINTS) + [FIRST_ORDER_STEPS]
    runs = [run_first_order(ident, +1)["traj"], run_first_order(ident, -1)["traj"]]
    others = {}
    for path in ("foreach", "fused"):
        try:
            other = run_first_order(ident, path=path)
        except (RuntimeError, TypeError, ValueError):
            continue  # this class or device has no such path
        others[f"{path}_True"] = distance(other["traj"], main["traj"], dtype)

    doc = {
        "schema": SCHEMA,
        "id": ident,
        "kind": "first_order",
        "library": "torch",
        "optimizer": name,
        "torch_call": f"torch.optim.{name}([p], {_call_kwargs(kwargs)}, foreach=False)",
        "constructor_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "hyperparameters": main["hyper"],
        "formula": FORMULAS[name],
        "source": source_of(SOURCES[name]),
        "dtype": dtype,
        "problem": diag_problem(dtype),
        "protocol": (
            f"p = w0 ({dtype}); for t=1..{FIRST_ORDER_STEPS}: g = grad(p); p.grad = g; opt.step(); record p"
        ),
        "steps": FIRST_ORDER_STEPS,
        "checkpoints": {str(k): main["traj"][k - 1] for k in checkpoints},
        "state_at_checkpoints": main["states"],
        "trajectory": main["traj"],
        "grads": main["grads"],
        "loss": main["loss"],
        "sensitivity": sensitivity_block(main["traj"], runs, dtype, "trajectory", checkpoints),
        "state_shapes": main["shapes"],
    }
    if main["ax"]:
        doc["ax_trajectory"] = main["ax"]
        doc["ax_note"] = "ax_trajectory[t-1] = state['ax'] (the averaged iterate) after step t"
    doc["checks"] = {"other_torch_paths_vs_this": others}
    doc["env"] = environment()
    return doc


# ---------------------------------------------------------------------------------------------
# L-BFGS on the diag problem.

LBFGS = {
    "lbfgs": {"lr": 1, "history_size": 5, "max_iter": 20, "line_search_fn": None},
    "lbfgs_strong_wolfe": {"lr": 1, "history_size": 5, "max_iter": 20, "line_search_fn": "strong_wolfe"},
}
LBFGS_CALLS = 5


def run_lbfgs(ident, direction=0):
    p = torch.nn.Parameter(torch.tensor(DIAG_W0, dtype=torch.float64))
    opt = torch.optim.LBFGS([p], **LBFGS[ident])
    points = []

    def closure():
        opt.zero_grad()
        w = p.detach().tolist()
        points.append(w)
        p.grad = torch.tensor(nudge(diag_grad(w, "float64"), "float64", direction), dtype=torch.float64)
        return torch.tensor(diag_loss(w), dtype=torch.float64)

    after = []
    for k in range(1, LBFGS_CALLS + 1):
        returned = opt.step(closure)
        w = p.detach().tolist()
        st = opt.state[p]
        after.append(
            {
                "step_calls": k,
                "w": w,
                "loss": diag_loss(w),
                "returned_loss": float(returned),
                "grad_max_abs": max(abs(x) for x in diag_grad(w, "float64")),
                "func_evals_total": int(st["func_evals"]),
                "n_iter_total": int(st["n_iter"]),
                "closure_calls_total": len(points),
            }
        )
    return {"hyper": _hyperparameters(opt), "after": after, "points": points}


def record_lbfgs(ident):
    kwargs = LBFGS[ident]
    main = run_lbfgs(ident)
    iterates = [a["w"] for a in main["after"]]
    runs = [[a["w"] for a in run_lbfgs(ident, d)["after"]] for d in (+1, -1)]
    return {
        "schema": SCHEMA,
        "id": ident,
        "kind": "lbfgs",
        "library": "torch",
        "optimizer": "LBFGS",
        "torch_call": f"torch.optim.LBFGS([p], {_call_kwargs(kwargs)}); opt.step(closure) x{LBFGS_CALLS}",
        "constructor_kwargs": dict(kwargs),
        "hyperparameters": main["hyper"],
        "source": source_of([("torch.optim.lbfgs", "LBFGS")]),
        "dtype": "float64",
        "problem": diag_problem("float64"),
        "protocol": (
            "closure(): opt.zero_grad(); g = grad(p) (analytic, float64); p.grad = g; return f(p) as "
            f"a float64 0-d tensor; record p after each of {LBFGS_CALLS} opt.step(closure) calls"
        ),
        "checkpoints": {str(k): iterates[k - 1] for k in range(1, LBFGS_CALLS + 1)},
        "after_step_calls": main["after"],
        "closure_points": main["points"],
        "sensitivity": sensitivity_block(
            iterates, runs, "float64", "iterate after each step call", range(1, LBFGS_CALLS + 1)
        ),
        "env": environment(),
    }


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules (nothing moves: p has no gradient, only the group's lr is read).

S = torch.optim.lr_scheduler
# id: (torch_call, builder, optimizer kwargs, epochs, source class). The first four are the
# torch 1.13 files' protocol (SGD(lr=0.1), 20 epochs); the others the torch 2.13 files'.
SCHEDULES = {
    "sched_step_lr": ("StepLR(opt, step_size=3, gamma=0.5)", lambda o: S.StepLR(o, step_size=3, gamma=0.5), {"lr": 0.1}, 20, "StepLR"),
    "sched_exponential_lr": ("ExponentialLR(opt, gamma=0.9)", lambda o: S.ExponentialLR(o, gamma=0.9), {"lr": 0.1}, 20, "ExponentialLR"),
    "sched_cosine_annealing_lr": (
        "CosineAnnealingLR(opt, T_max=10, eta_min=0.001)",
        lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
        {"lr": 0.1},
        20,
        "CosineAnnealingLR",
    ),
    "sched_linear_lr_warmup": (
        "LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=5)",
        lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
        {"lr": 0.1},
        20,
        "LinearLR",
    ),
    "sched_one_cycle": (
        "OneCycleLR(opt, max_lr=1.0, total_steps=60)",
        lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=60),
        {"lr": 0.1, "momentum": 0.9},
        60,
        "OneCycleLR",
    ),
    "sched_cyclic_triangular": (
        "CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=10)",
        lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=10),
        {"lr": 0.1, "momentum": 0.9},
        60,
        "CyclicLR",
    ),
    "sched_constant": (
        "ConstantLR(opt, factor=0.5, total_iters=10)",
        lambda o: S.ConstantLR(o, factor=0.5, total_iters=10),
        {"lr": 0.1, "momentum": 0.9},
        60,
        "ConstantLR",
    ),
    "sched_multiplicative": (
        "MultiplicativeLR(opt, lr_lambda=<factor 0.95 each epoch>)",
        lambda o: S.MultiplicativeLR(o, lr_lambda=lambda epoch: 0.95),
        {"lr": 0.1, "momentum": 0.9},
        60,
        "MultiplicativeLR",
    ),
    "sched_chained": (
        "ChainedScheduler([ConstantLR(opt, factor=0.1, total_iters=5), ExponentialLR(opt, gamma=0.9)])",
        lambda o: S.ChainedScheduler([S.ConstantLR(o, factor=0.1, total_iters=5), S.ExponentialLR(o, gamma=0.9)]),
        {"lr": 0.1, "momentum": 0.9},
        60,
        "ChainedScheduler",
    ),
    "sched_swalr": (
        "SWALR(opt, swa_lr=0.01, anneal_epochs=10, anneal_strategy='cos')",
        lambda o: torch.optim.swa_utils.SWALR(o, swa_lr=0.01, anneal_epochs=10, anneal_strategy="cos"),
        {"lr": 0.05, "momentum": 0.9},
        30,
        "SWALR",
    ),
}


# What each scheduler does to the group's lr, in words (passed through into `formula`).
SCHEDULE_FORMULAS = {
    "StepLR": "chainable: at e > 0 with e % step_size == 0, lr = lr*gamma; otherwise unchanged (so lr_e = base_lr*gamma^floor(e/step_size), rounded each time)",
    "ExponentialLR": "lr_e = lr_{e-1} * gamma (recursive product, rounded each step)",
    "CosineAnnealingLR": (
        "recursive form: lr_e = eta_min + (lr_{e-1} - eta_min) * (1 + cos(pi*e/T_max)) / (1 + "
        "cos(pi*(e-1)/T_max)), with the special steps torch uses at e == 0 and (e - 1 - T_max) % "
        "(2*T_max) == 0"
    ),
    "LinearLR": (
        "construction: lr = base_lr*start_factor; for 1 <= e <= total_iters: lr_e = lr_{e-1} * (1 + "
        "(end_factor - start_factor) / (total_iters*start_factor + (e - 1)*(end_factor - "
        "start_factor))); afterwards unchanged"
    ),
    "OneCycleLR": (
        "construction: initial_lr = max_lr/div_factor (25), min_lr = initial_lr/final_div_factor "
        "(1e4), momentum = max_momentum (0.95); two cosine phases, initial -> max_lr up to step "
        "pct_start*total_steps - 1, then max_lr -> min_lr up to total_steps - 1; momentum moves "
        "the opposite way between max_momentum and base_momentum (0.85)"
    ),
    "CyclicLR": (
        "construction: lr = base_lr, momentum = max_momentum (0.9; base_momentum 0.8); at e: "
        "total = 2*step_size_up, ratio = step_size_up/total, cycle = floor(1 + e/total), x = 1 + "
        "e/total - cycle; scale = x/ratio if x <= ratio else (x - 1)/(ratio - 1); lr = base_lr + "
        "(max_lr - base_lr)*scale (triangular: scale_fn = 1); momentum = max_momentum - "
        "(max_momentum - base_momentum)*scale"
    ),
    "ConstantLR": "chainable: construction lr = lr*factor; at e == total_iters lr = lr/factor (times 1.0/factor); else unchanged",
    "MultiplicativeLR": "lr_e = lr_{e-1} * lr_lambda(e) with lr_lambda = 0.95 (product rounded each step)",
    "ChainedScheduler": "each step runs ConstantLR.step() then ExponentialLR.step(); both multiply the current lr",
    "SWALR": (
        "anneals the lr from its value to swa_lr over anneal_epochs with alpha = (1 - cos(pi*t))/2, "
        "t = min(1, k/anneal_epochs), written in torch's recursive form that recovers the previous "
        "base from the current lr; then stays at swa_lr"
    ),
}


def _plain(v):
    """A JSON-able copy of a state_dict value: callables and other objects become null."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, torch.Tensor):
        return _state_value(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return None


def record_schedule(ident):
    call, build, opt_kwargs, epochs, cls = SCHEDULES[ident]
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], **opt_kwargs)
    sched = build(opt)
    group = opt.param_groups[0]
    cycles = bool(getattr(sched, "cycle_momentum", False))
    beta = "betas" in group

    def momentum():
        return group["betas"][0] if beta else group["momentum"]

    lrs, moms, state30 = [float(group["lr"])], [momentum()] if cycles else [], None
    for e in range(1, epochs + 1):
        opt.step()
        sched.step()
        lrs.append(float(group["lr"]))
        if cycles:
            moms.append(momentum())
        if e == 30:
            state30 = _plain(sched.state_dict())
    module = "torch.optim.swa_utils" if cls == "SWALR" else "torch.optim.lr_scheduler"
    opt_call = f"torch.optim.SGD([p], {_call_kwargs(opt_kwargs)})"
    doc = {
        "schema": SCHEMA,
        "id": ident,
        "kind": "lr_schedule",
        "library": "torch",
        "scheduler": cls,
        "torch_call": call,
        "optimizer_call": opt_call,
        "base_lr": opt_kwargs["lr"],
        "formula": SCHEDULE_FORMULAS[cls],
        "source": source_of([(module, cls)]),
        "dtype": "float64",
        "problem": None,
        "protocol": (
            f"opt = {opt_call}; s = {call}; lr[0] = opt.param_groups[0]['lr'] after construction; "
            f"for e in 1..{epochs}: opt.step(); s.step() (once per epoch, no arguments); "
            "lr[e] = opt.param_groups[0]['lr']" + ("; momentum[e] likewise" if cycles else "")
        ),
        "steps": epochs,
        "lr": lrs,
        "checkpoints": {str(k): lrs[k] for k in (0, 1, 10, 30, 60) if k <= epochs},
    }
    if cycles:
        doc["momentum"] = moms
        doc["momentum_note"] = (
            "the group's " + ("betas[0]" if beta else "momentum") + ", cycled by the scheduler (cycle_momentum=True)"
        )
    if state30 is not None:
        doc["state_dict_at_30"] = state30
        doc["state_dict_note"] = "scheduler.state_dict() after 30 steps, callables dropped (null), tuples as lists"
    doc["env"] = environment()
    return doc


RECORDERS = {}
RECORDERS.update({k: record_first_order for k in FIRST_ORDER})
RECORDERS.update({k: record_lbfgs for k in LBFGS})
RECORDERS.update({k: record_schedule for k in SCHEDULES})


def check(fresh, stored):
    """Max abs differences, per compared field, between a fresh record and a stored file."""
    kind = stored.get("kind")
    if kind == "first_order":
        fields = ["trajectory", "grads", "loss", "checkpoints"]
        if "ax_trajectory" in stored:
            fields.append("ax_trajectory")
    elif kind == "lbfgs":
        fields = ["checkpoints", "closure_points"]
    else:
        fields = ["lr"] + (["momentum"] if "momentum" in stored else [])
    out = {}
    for f in fields:
        a, b = fresh.get(f), stored.get(f)
        if isinstance(b, dict):
            if set(a) != set(b):
                out[f] = math.inf
                continue
            a, b = [a[k] for k in sorted(a)], [b[k] for k in sorted(b)]
        out[f] = distance(a, b)["max_abs"]
    if kind == "first_order":
        sa, sb = fresh["state_at_checkpoints"], stored["state_at_checkpoints"]
        worst = 0.0
        for t, want in sb.items():
            have = sa.get(t, {})
            for key, v in want.items():
                if v is None or key not in have or have[key] is None:
                    worst = max(worst, 0.0 if v is None and have.get(key) is None else math.inf)
                else:
                    worst = max(worst, distance(have[key], v)["max_abs"])
        out["state"] = worst
    if kind == "lbfgs":
        counters = [(a["func_evals_total"], a["n_iter_total"]) for a in fresh["after_step_calls"]]
        want = [(a["func_evals_total"], a["n_iter_total"]) for a in stored["after_step_calls"]]
        out["counters_equal"] = counters == want
    return out



def main(argv=None):
    return run_cli(
        argv,
        __doc__,
        RECORDERS,
        check,
        main_field=lambda stored: {"first_order": "trajectory", "lbfgs": "checkpoints"}.get(stored.get("kind"), "lr"),
        setup=lambda: torch.set_num_threads(1),
        banner=f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()})",
    )


if __name__ == "__main__":
    sys.exit(main())
