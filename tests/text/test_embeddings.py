"""The packaged all-MiniLM-L6-v2 encoder: known semantic answers, shape, norm, determinism."""

from pathlib import Path

import numpy as np
import pytest

from shelfwise.errors import ConfigError
from shelfwise.text import EMBEDDING_DIM, SentenceEncoder, get_encoder
from shelfwise.text.embeddings import default_model_path


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return get_encoder()


def test_model_ships_with_the_package() -> None:
    path = default_model_path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_known_semantic_answer(encoder: SentenceEncoder) -> None:
    knife, kitchen, audio = encoder.encode(
        ["chef knife", "kitchen knife for cooking", "bluetooth headphones"]
    )
    assert knife @ kitchen > knife @ audio + 0.3
    assert knife @ kitchen > 0.7


def test_shape_dtype_unit_norm(encoder: SentenceEncoder) -> None:
    vectors = encoder.encode(["a red dress", "", "wireless earbuds with charging case"])
    assert vectors.shape == (3, EMBEDDING_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, EMBEDDING_DIM)


def test_deterministic_and_order_preserving(encoder: SentenceEncoder) -> None:
    texts = ["cast iron skillet", "noise cancelling headphones", "paring knife", "yoga mat"]
    once = encoder.encode(texts, batch_size=4)
    again = encoder.encode(texts, batch_size=1, progress=True)
    np.testing.assert_allclose(once, again, atol=1e-5)
    reversed_ = encoder.encode(texts[::-1], batch_size=3)
    np.testing.assert_allclose(once, reversed_[::-1], atol=1e-5)


def test_cached_per_process() -> None:
    assert get_encoder() is get_encoder()


def test_bad_arguments(encoder: SentenceEncoder) -> None:
    with pytest.raises(ConfigError):
        encoder.encode(["x"], batch_size=0)
    with pytest.raises(ConfigError):
        SentenceEncoder(max_length=0)


SAMPLES = [
    "chef knife",
    "",
    "Maybelline New York Eye Studio Master Precise Ink Pen Eyeliner, Black",
    "moisturizing shampoo for dry hair 12 oz",
    "lip stick",
    "crème brûlée 香水 " * 40,  # accents, CJK, and past the 256 word pieces kept
]


def test_onnx_encoder_equals_the_torch_encoder() -> None:
    """Known answer: the torch encoder's output. The ONNX graph (exported into the user
    cache on first use) gives the same unit vectors within 1e-4 cosine, batched or not."""
    torch_enc = SentenceEncoder(backend="torch")
    onnx_enc = SentenceEncoder(backend="onnx")
    assert torch_enc.active_backend == "torch" and onnx_enc.active_backend == "onnx"
    expected = torch_enc.encode(SAMPLES, batch_size=4)
    for batch_size in (1, 64):
        got = onnx_enc.encode(SAMPLES, batch_size=batch_size)
        assert got.shape == expected.shape and got.dtype == np.float32
        cosine = np.sum(got * expected, axis=1)
        assert cosine.min() > 1 - 1e-4, cosine
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_onnx_encoder_falls_back_to_torch_when_it_cannot_export(tmp_path: Path) -> None:
    """A cache folder that cannot be made (under a file): `auto` embeds with torch (same
    vectors as the torch encoder), `onnx` says why it cannot."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    auto = SentenceEncoder(onnx_dir=blocker / "onnx")
    assert auto.active_backend == "torch"
    np.testing.assert_allclose(
        auto.encode(SAMPLES[:2]), SentenceEncoder(backend="torch").encode(SAMPLES[:2]), atol=1e-6
    )
    with pytest.raises(ConfigError, match="ONNX encoder unavailable"):
        SentenceEncoder(backend="onnx", onnx_dir=blocker / "onnx").encode(["x"])
    with pytest.raises(ConfigError, match="backend"):
        SentenceEncoder(backend="tensorrt")
    with pytest.raises(ConfigError, match="intra_op_num_threads"):
        SentenceEncoder(intra_op_num_threads=-1)


def test_auto_backend_runs_queries_on_onnx_and_batches_on_torch() -> None:
    """`auto` opens the ONNX session for a call of up to `onnx_max_texts` texts only; a
    larger call embeds with torch (measured faster on batches), with the same vectors."""
    enc = SentenceEncoder(onnx_max_texts=2)
    three = enc.encode(SAMPLES[:3])
    assert enc._session is None
    one = enc.encode(SAMPLES[:1])
    assert enc._session is not None and enc.active_backend == "onnx"
    assert float(one[0] @ three[0]) > 1 - 1e-4
