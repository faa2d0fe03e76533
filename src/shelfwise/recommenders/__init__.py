"""Recommendation models: one module per algorithm, one shared interface, a registry."""

from shelfwise.recommenders.als import ALS
from shelfwise.recommenders.base import Recommender, available, create, load_model, register
from shelfwise.recommenders.bpr import BPR
from shelfwise.recommenders.bprmf import BPRMF
from shelfwise.recommenders.caser import Caser
from shelfwise.recommenders.content import Embedding, Lda, Lsa, Tfidf
from shelfwise.recommenders.ease import EASE
from shelfwise.recommenders.gru4rec import GRU4Rec
from shelfwise.recommenders.hybrid import Hybrid
from shelfwise.recommenders.itemknn import ItemKNN
from shelfwise.recommenders.popularity import Popularity
from shelfwise.recommenders.sasrec import SASRec
from shelfwise.recommenders.svd import PureSVD
from shelfwise.recommenders.trending import Trending
from shelfwise.recommenders.userknn import UserKNN

__all__ = [
    "ALS",
    "BPR",
    "BPRMF",
    "EASE",
    "Caser",
    "Embedding",
    "GRU4Rec",
    "Hybrid",
    "ItemKNN",
    "Lda",
    "Lsa",
    "Popularity",
    "PureSVD",
    "Recommender",
    "SASRec",
    "Tfidf",
    "Trending",
    "UserKNN",
    "available",
    "create",
    "load_model",
    "register",
]
