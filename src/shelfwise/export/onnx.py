"""SASRec -> ONNX, and an onnxruntime scorer that serves it without torch.

`export_sasrec(model, path)` writes the fitted network as one ONNX graph: input `tokens`
(int64, batch x max_len, items as index + 1 and 0 for padding, left-padded, exactly
`shelfwise.data.sequences.pad_left`), output `scores` (float32, batch x n_items,
the score of every item after the newest position). The batch axis is dynamic; the width is
fixed at `max_len` (SASRec's positions count from the newest item, and the attention ignores
padding, so padding to `max_len` gives the same scores as torch on a narrower batch). The
model's `max_len` and `n_items` are stored in the graph's metadata.

`quantize=True` also writes `<stem>.int8.onnx`: onnxruntime's dynamic quantisation (int8
weights of every MatMul / Gemm, activations quantised per call), smaller and usually faster
on CPU, at a small cost in score precision (compare rankings, not raw scores).

`OnnxSequentialScorer(path)` loads either file and answers `score_sequences` and `recommend`
like the torch model, from histories oldest first.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.data.sequences import check_sequences, pad_left
from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.types import Results, top_k

log = logging.getLogger(__name__)

OPSET = 17
META_KEY = "shelfwise"


def export_sasrec(
    model: Any, path: Path | str, quantize: bool = False, opset: int = OPSET
) -> dict[str, Path]:
    """Write a fitted SASRec to `path` (ONNX, fp32) and, with `quantize`, its dynamic int8
    version beside it (`<stem>.int8.onnx`). Returns {"fp32": path, "int8": path?}."""
    import onnx
    import torch

    from shelfwise.recommenders.sasrec import SASRec, SASRecNet

    if not isinstance(model, SASRec):
        raise ConfigError(f"export_sasrec needs a SASRec model, got {type(model).__name__}")
    if not model.is_fitted or not isinstance(model.module, SASRecNet):
        raise NotFittedError("sasrec: fit() or load() the model before exporting it")
    net: SASRecNet = model.module
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    max_len = model.config.max_len

    class _LastScores(torch.nn.Module):
        """tokens (B x max_len) -> scores of every item after the newest position."""

        def __init__(self, inner: SASRecNet) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.inner.score_last(tokens)

    wrapper = _LastScores(net).cpu().eval()
    example = torch.zeros((2, max_len), dtype=torch.long)
    example[0, -3:] = torch.tensor([1, 2, 3])
    was_training = net.training
    try:
        # the TorchScript exporter (dynamo=False): one static graph with a dynamic batch
        # axis; torch >= 2.9 flags it as legacy, which is silenced here
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                wrapper,
                (example,),
                str(path),
                input_names=["tokens"],
                output_names=["scores"],
                dynamic_axes={"tokens": {0: "batch"}, "scores": {0: "batch"}},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        net.train(was_training)
    proto = onnx.load(str(path))
    meta = {"model": "sasrec", "max_len": max_len, "n_items": model.n_items}
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    out = {"fp32": path}
    if quantize:
        out["int8"] = quantize_int8(path)
    return out


def quantize_int8(path: Path | str) -> Path:
    """Dynamic int8 quantisation of an exported graph -> `<stem>.int8.onnx` (metadata kept)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = Path(path)
    dst = src.with_name(src.stem + ".int8.onnx")
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    original = onnx.load(str(src))
    quantized = onnx.load(str(dst))
    del quantized.metadata_props[:]
    for prop in original.metadata_props:
        entry = quantized.metadata_props.add()
        entry.key, entry.value = prop.key, prop.value
    onnx.save(quantized, str(dst))
    return dst


class OnnxSequentialScorer:
    """An exported sequential model served by onnxruntime (CPU).

    `threads` sets onnxruntime's intra-op threads (0 = its default).
    """

    def __init__(self, path: Path | str, threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.exists():
            raise DataError(f"{path} does not exist; export a model first (export_sasrec)")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        raw = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        if raw is None:
            raise DataError(f"{path} has no shelfwise metadata; was it written by export_sasrec?")
        meta = json.loads(raw)
        self.path = path
        self.max_len = int(meta["max_len"])
        self.n_items = int(meta["n_items"])

    def score_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """Scores (B x n_items) of token rows (B x max_len, see `pad_left`)."""
        if tokens.ndim != 2 or tokens.shape[1] != self.max_len:
            raise ValueError(f"tokens must be (batch, {self.max_len}), got {tokens.shape}")
        (scores,) = self.session.run(["scores"], {"tokens": tokens.astype(np.int64)})
        return np.asarray(scores, dtype=np.float32)

    def score_sequences(self, sequences: Sequence[np.ndarray], chunk: int = 1024) -> np.ndarray:
        """Scores (n x n_items) of the item to come after each history (oldest first)."""
        seqs = check_sequences(sequences, self.n_items)
        out = np.empty((len(seqs), self.n_items), dtype=np.float32)
        for start in range(0, len(seqs), chunk):
            block = seqs[start : start + chunk]
            tokens = pad_left(block, self.max_len, width=self.max_len)
            out[start : start + len(block)] = self.score_tokens(tokens)
        return out

    def recommend(
        self, history: Sequence[int] | np.ndarray, k: int = 10, exclude_seen: bool = True
    ) -> Results:
        """Top-k items after `history` (oldest first), seen items excluded by default."""
        seq = np.asarray(history, dtype=np.int64).reshape(-1)
        scores = self.score_sequences([seq])[0]
        if exclude_seen and seq.size:
            scores[seq] = -np.inf
        return top_k(scores, k)
