"""One-user SASRec inference latency: torch vs onnxruntime (fp32) vs onnxruntime (int8).

    python benchmarks/inference_latency.py [--model-dir DIR] [--requests 500] [--threads 1]
        [--out benchmarks/results/inference_latency.json]

The model: a SASRec saved by `benchmarks/beauty_sequential.py --save-dir DIR` (DIR/sasrec),
else one with Amazon Beauty's shape (12,101 items, the default max_len 50, hidden 64, 2
blocks), its weights as initialised (latency does not depend on them; the agreement numbers
are then about random weights, so pass --model-dir for meaningful ones). Each request is one
user's history (drawn from Beauty's training sequences, 1..max_len items): pad, score every
item, take the top 10 excluding the history, as `recommend` does. Reported per backend:
p50 / p99 / mean milliseconds over `--requests` requests after 20 warm-up ones, plus the
int8 graph's agreement with torch (top-10 overlap, top-1 equality, max abs score
difference) and the file sizes. fp32 parity (max abs difference) is recorded too.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch

from shelfwise.data.datasets import load_dataset
from shelfwise.data.sequences import OrderedInteractions
from shelfwise.evaluation.protocols import prepare
from shelfwise.export import OnnxSequentialScorer, export_sasrec
from shelfwise.recommenders import create, load_model
from shelfwise.recommenders.sasrec import SASRec
from shelfwise.types import top_k

K = 10
WARMUP = 20
RESULTS = Path(__file__).parent / "results"


def timed(fn: Callable[[np.ndarray], Any], requests: list[np.ndarray]) -> dict[str, float]:
    """p50 / p99 / mean latency (ms) of fn over the requests, after a warm-up."""
    for seq in requests[:WARMUP]:
        fn(seq)
    times = []
    for seq in requests:
        t0 = time.perf_counter()
        fn(seq)
        times.append((time.perf_counter() - t0) * 1000)
    arr = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "mean_ms": float(arr.mean()),
    }


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="", help="a saved sasrec (else Beauty-shaped)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS / "inference_latency.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ds = load_dataset("amazon-beauty")
    data = prepare(ds.events, "loo", seed=42, binary=True)
    assert data.sequences is not None
    if args.model_dir:
        model = load_model(Path(args.model_dir))
        trained = True
    else:
        model = create("sasrec", epochs=1, val_fraction=0.0, threads=args.threads, device="cpu")
        assert isinstance(model, SASRec)
        model.start(OrderedInteractions(data.train, data.sequences))  # shaped, not trained
        trained = False
    assert isinstance(model, SASRec) and model.module is not None
    model.module.cpu().eval()
    rng = np.random.default_rng(0)
    users = rng.choice(np.flatnonzero(data.sequences.lengths > 0), size=args.requests)
    requests = [data.sequences.row(int(u)) for u in users]

    def torch_recommend(seq: np.ndarray) -> Any:
        return model.recommend(seq, k=K)

    with tempfile.TemporaryDirectory() as tmp:
        paths = export_sasrec(model, Path(tmp) / "sasrec.onnx", quantize=True)
        sizes = {k: p.stat().st_size for k, p in paths.items()}
        fp32 = OnnxSequentialScorer(paths["fp32"], threads=args.threads)
        int8 = OnnxSequentialScorer(paths["int8"], threads=args.threads)

        def onnx_fp32(seq: np.ndarray) -> Any:
            return fp32.recommend(seq, k=K)

        def onnx_int8(seq: np.ndarray) -> Any:
            return int8.recommend(seq, k=K)

        latency = {
            "torch": timed(torch_recommend, requests),
            "onnxruntime_fp32": timed(onnx_fp32, requests),
            "onnxruntime_int8": timed(onnx_int8, requests),
        }
        sample = requests[:200]
        ref = model.score_sequences(sample)
        s32 = fp32.score_sequences(sample)
        s8 = int8.score_sequences(sample)
    overlap, top1 = [], []
    for seq, a, b in zip(sample, ref, s8, strict=True):
        a, b = a.copy(), b.copy()
        a[seq], b[seq] = -np.inf, -np.inf
        ta, tb = top_k(a, K).ids, top_k(b, K).ids
        overlap.append(len(set(ta.tolist()) & set(tb.tolist())) / K)
        top1.append(float(ta[0] == tb[0]))
    report = {
        "benchmark": "one-user SASRec recommend latency (top-10 of 12,101 items)",
        "model": {"trained": trained, "config": model.config.model_dump(mode="json")},
        "requests": args.requests,
        "threads": args.threads,
        "latency": latency,
        "fp32_max_abs_diff": float(np.max(np.abs(s32 - ref))),
        "int8_vs_torch": {
            "top10_overlap": float(np.mean(overlap)),
            "top1_equal": float(np.mean(top1)),
            "max_abs_diff": float(np.max(np.abs(s8 - ref))),
        },
        "file_bytes": sizes,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'backend':<20}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, row in latency.items():
        print(f"{name:<20}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}{row['mean_ms']:>10.2f}")
    agreement = report["int8_vs_torch"]
    print(f"fp32 max |diff| {report['fp32_max_abs_diff']:.2e}; int8 vs torch: {agreement}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
