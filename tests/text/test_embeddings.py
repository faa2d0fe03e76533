"""The packaged all-MiniLM-L6-v2 encoder: known semantic answers, shape, norm, determinism."""

import numpy as np
import pytest

from shelfwise.errors import ConfigError
from shelfwise.text import EMBEDDING_DIM, SentenceEncoder, get_encoder
from shelfwise.text.embeddings import default_model_path


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return get_encoder()


def test_model_ships_with_the_package():
    path = default_model_path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_known_semantic_answer(encoder):
    knife, kitchen, audio = encoder.encode(
        ["chef knife", "kitchen knife for cooking", "bluetooth headphones"]
    )
    assert knife @ kitchen > knife @ audio + 0.3
    assert knife @ kitchen > 0.7


def test_shape_dtype_unit_norm(encoder):
    vectors = encoder.encode(["a red dress", "", "wireless earbuds with charging case"])
    assert vectors.shape == (3, EMBEDDING_DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, EMBEDDING_DIM)


def test_deterministic_and_order_preserving(encoder):
    texts = ["cast iron skillet", "noise cancelling headphones", "paring knife", "yoga mat"]
    once = encoder.encode(texts, batch_size=4)
    again = encoder.encode(texts, batch_size=1, progress=True)
    np.testing.assert_allclose(once, again, atol=1e-5)
    reversed_ = encoder.encode(texts[::-1], batch_size=3)
    np.testing.assert_allclose(once, reversed_[::-1], atol=1e-5)


def test_cached_per_process():
    assert get_encoder() is get_encoder()


def test_bad_arguments(encoder):
    with pytest.raises(ConfigError):
        encoder.encode(["x"], batch_size=0)
    with pytest.raises(ConfigError):
        SentenceEncoder(max_length=0)
