"""torch.distributed's gloo all-reduce, the peer of bench/distributed-rank.js's `allreduce` part.

One rank per process (bench/distributed.js starts WORLD_SIZE of them, as it starts ours), with
RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set; rendezvous by init_method tcp:// on loopback.
`python3 distributed_torch.py <n,n,...>`: the same protocol as ours (float32 zeros, sum, three
warm-up calls, then per repeat a barrier and one timed all_reduce, the same repeat counts) and
the same output: one JSON line with this rank's samples in ms.
"""
import json
import os
import sys
import time

import torch
import torch.distributed as dist


def repeats_for(n):
    return 11 if n >= 1e7 else 31 if n >= 1e6 else 101


def main():
    sizes = [int(float(s)) for s in sys.argv[1].split(',')]
    rank = int(os.environ['RANK'])
    world = int(os.environ['WORLD_SIZE'])
    url = f"tcp://{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    dist.init_process_group('gloo', init_method=url, rank=rank, world_size=world)
    times = {}
    for n in sizes:
        x = torch.zeros(n, dtype=torch.float32)
        for _ in range(3):
            dist.all_reduce(x)
        t = []
        for _ in range(repeats_for(n)):
            dist.barrier()
            t0 = time.perf_counter_ns()
            dist.all_reduce(x)
            t.append((time.perf_counter_ns() - t0) / 1e6)
        times[str(n)] = t
    dist.destroy_process_group()
    sys.stdout.write(json.dumps({'rank': rank, 'results': {'times': times, 'torch': torch.__version__}}) + '\n')


if __name__ == '__main__':
    main()
