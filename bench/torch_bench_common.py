"""What the PyTorch sides of `anoswin bench train` (bench/torch_train_step*.py) share: their
options, and the timing loop that prints the one JSON line cmd_bench.c reads."""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))


def options():
    """--batch B --threads T --steps N [--warmup W] [--config C]; sets torch's threads and seed."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--config", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    return a


def time_steps(step, a):
    """Runs step() a.warmup times untimed, then a.steps times, and prints
    {"img_per_s", "step_s", "loss" (the last step's), "torch"} as one JSON line."""
    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    dt = (time.perf_counter() - t0) / a.steps
    print(json.dumps({"img_per_s": a.batch / dt, "step_s": dt, "loss": loss, "torch": torch.__version__}))
