"""The data layer: records and their validation, file readers, public datasets, id
vocabularies, interaction matrices, ordered sequences and splits.

The common names are importable from here (`from shelfwise.data import load_dataset,
build_interactions, leave_last_out`); the modules hold the rest. Nothing here imports torch.
The demo store generator (`shelfwise.data.demo`) is left out: it is big and only the demo
and tests use it. Names load on first use, so importing one data module (the settings
read `data.schemas`) does not import pandas and every loader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shelfwise._lazy import lazy_exports

_HOMES = {
    "Dataset": "datasets",
    "load_dataset": "datasets",
    "conform": "frames",
    "records_to_frame": "frames",
    "FORMATS": "io",
    "detect_format": "io",
    "iter_rows": "io",
    "load_records": "io",
    "write_jsonl": "io",
    "Interactions": "matrix",
    "InteractionWeights": "matrix",
    "build_interactions": "matrix",
    "EVENT_TYPES": "schemas",
    "Event": "schemas",
    "EventType": "schemas",
    "Item": "schemas",
    "User": "schemas",
    "OrderedInteractions": "sequences",
    "Sequences": "sequences",
    "sequences_of": "sequences",
    "Split": "splits",
    "leave_last_out": "splits",
    "random_holdout": "splits",
    "temporal_split": "splits",
    "Vocabulary": "vocab",
}

__all__ = [
    "EVENT_TYPES",
    "FORMATS",
    "Dataset",
    "Event",
    "EventType",
    "InteractionWeights",
    "Interactions",
    "Item",
    "OrderedInteractions",
    "Sequences",
    "Split",
    "User",
    "Vocabulary",
    "build_interactions",
    "conform",
    "detect_format",
    "iter_rows",
    "leave_last_out",
    "load_dataset",
    "load_records",
    "random_holdout",
    "records_to_frame",
    "sequences_of",
    "temporal_split",
    "write_jsonl",
]

if TYPE_CHECKING:
    from shelfwise.data.datasets import Dataset, load_dataset
    from shelfwise.data.frames import conform, records_to_frame
    from shelfwise.data.io import FORMATS, detect_format, iter_rows, load_records, write_jsonl
    from shelfwise.data.matrix import Interactions, InteractionWeights, build_interactions
    from shelfwise.data.schemas import EVENT_TYPES, Event, EventType, Item, User
    from shelfwise.data.sequences import OrderedInteractions, Sequences, sequences_of
    from shelfwise.data.splits import Split, leave_last_out, random_holdout, temporal_split
    from shelfwise.data.vocab import Vocabulary

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
