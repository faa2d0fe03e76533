"""Text utilities shared by search and content-based recommenders (sentence embeddings)."""

from shelfwise.text.embeddings import EMBEDDING_DIM, SentenceEncoder, get_encoder

__all__ = ["EMBEDDING_DIM", "SentenceEncoder", "get_encoder"]
