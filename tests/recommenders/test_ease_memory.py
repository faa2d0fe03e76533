"""EASE's large-catalogue path: float32 inverted in place, and its memory estimate."""

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import ConfigError
from shelfwise.recommenders.ease import EASE, dense_gram, ease_memory_bytes, ease_weights


def test_memory_estimate_known_answer():
    # 23,715 items, float32 in place: one 23,715^2 x 4-byte matrix = 2,249,604,900 bytes
    assert ease_memory_bytes(23_715) == (2_249_604_900, 2_249_604_900)
    # 1,000 items, float64 gram + inv's identity + result (24 bytes a cell) + B (4)
    assert ease_memory_bytes(1_000) == (28_000_000, 4_000_000)


def test_float32_in_place_path_matches_float64():
    rng = np.random.default_rng(0)
    x = sp.random(300, 120, density=0.08, format="csr", random_state=rng, dtype=np.float64)
    x.data[:] = 1.0
    exact = ease_weights(x, 50.0)  # float64 path
    fast = ease_weights(x, 50.0, float64_up_to=0)  # float32, in place
    assert fast.dtype == np.float32
    assert np.all(np.diag(fast) == 0)
    np.testing.assert_allclose(fast, exact, rtol=2e-3, atol=2e-5)


def test_refusal_names_the_memory():
    x = sp.csr_matrix(np.eye(30, dtype=np.float32))  # 30^2 x 28 bytes = 25 KiB
    with pytest.raises(ConfigError, match="about 25 KiB while fitting"):
        EASE(max_items=10).fit(x)


def test_refusal_at_23715_items_quotes_the_memory_it_would_need():
    # one float32 23,715^2 matrix: 2,249,604,900 bytes = 2.095 GiB, fitted and kept; the
    # refusal comes before any allocation (a 1-row matrix of that width)
    x = sp.csr_matrix((1, 23_715), dtype=np.float32)
    with pytest.raises(ConfigError) as err:
        EASE(max_items=23_714).fit(x)
    message = str(err.value)
    assert "23,715 items exceed max_items=23,714" in message
    assert "about 2.1 GiB while fitting" in message
    assert "and 2.1 GiB to keep" in message
    # in the float64 range: 1,500 items need 1,500^2 x 28 bytes = 60 MiB while fitting and
    # 1,500^2 x 4 = 9 MiB to keep
    with pytest.raises(ConfigError, match=r"about 60 MiB while fitting .* and 9 MiB to keep"):
        EASE(max_items=1_000).fit(sp.csr_matrix((1, 1_500), dtype=np.float32))


def test_dense_gram_allocates_the_dense_matrix_once():
    """X^T X densified in C order without a second dense copy: 1,500^2 float32 cells are
    9 MB, and the peak of traced allocations stays under 1.5 of that (a copy makes 2)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    x = sp.random(400, 1_500, density=0.01, format="csr", random_state=rng, dtype=np.float32)
    x.data[:] = 1.0
    one = 1_500 * 1_500 * 4
    tracemalloc.start()
    gram = dense_gram(x, np.float32)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert gram.flags.c_contiguous and gram.dtype == np.float32
    np.testing.assert_array_equal(gram, (x.T @ x).toarray())
    assert one <= peak < 1.5 * one
