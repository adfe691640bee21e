"""PyTorch's Adam on CPU, the peer of `npm run bench` (bench/torch-peer.js starts this).

Usage: python3 bench/torch_adam.py SIZES THREADS, e.g. `1000,100000 1,2`. For each thread count
and size, times `opt.step()` of torch.optim.Adam(lr=1e-3) on one float32 tensor, with the
single-tensor for-loop (foreach=False) and the fused kernel (fused=True), as our bench times
ours: a warm-up, then 7 samples of at least 20 ms each (repeats of the step), the median per
step. Prints one JSON object: {"torch": version, "rows": [{threads, n, mode, ns_per_step}]}.
"""
import json
import statistics
import sys
import time

import torch

MIN_SAMPLE_NS = 20_000_000
ROUNDS = 7


def grad_like_ours(n):
    # bench/layouts.js fillGrad: (i odd ? 1e-2 : -1e-2) * (0.5 + (i % 97) / 97)
    i = torch.arange(n, dtype=torch.float64)
    sign = torch.where(i.remainder(2) == 1, 1e-2, -1e-2)
    return (sign * (0.5 + i.remainder(97) / 97)).to(torch.float32)


def time_step(step):
    for _ in range(3):
        step()
    inner = 1
    while True:
        t0 = time.perf_counter_ns()
        for _ in range(inner):
            step()
        if time.perf_counter_ns() - t0 >= MIN_SAMPLE_NS:
            break
        inner *= 2
    samples = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter_ns()
        for _ in range(inner):
            step()
        samples.append((time.perf_counter_ns() - t0) / inner)
    return statistics.median(samples)


def main():
    sizes = [int(float(x)) for x in sys.argv[1].split(",")]
    threads = [int(x) for x in sys.argv[2].split(",")]
    rows = []
    for th in threads:
        torch.set_num_threads(th)
        for n in sizes:
            for mode in ("forloop", "fused"):
                p = torch.full((n,), 0.01, dtype=torch.float32, requires_grad=True)
                p.grad = grad_like_ours(n)
                kwargs = {"foreach": False} if mode == "forloop" else {"fused": True}
                opt = torch.optim.Adam([p], lr=1e-3, **kwargs)
                rows.append({"threads": th, "n": n, "mode": mode, "ns_per_step": time_step(opt.step)})
                print(f"[torch] {mode} n={n} threads={th}: {rows[-1]['ns_per_step'] / n:.3f} ns/el", file=sys.stderr)
    print(json.dumps({"torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
