"""Recommendation models: one module per algorithm, one shared interface, a registry."""

from shelfwise.recommenders.base import Recommender, available, create, load_model, register
from shelfwise.recommenders.itemknn import ItemKNN
from shelfwise.recommenders.popularity import Popularity

__all__ = ["ItemKNN", "Popularity", "Recommender", "available", "create", "load_model", "register"]
