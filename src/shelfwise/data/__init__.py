"""The data layer: records and their validation, file readers, public datasets, id
vocabularies, interaction matrices, ordered sequences and splits.

The common names are importable from here (`from shelfwise.data import load_dataset,
build_interactions, leave_last_out`); the modules hold the rest. Nothing here imports torch.
The demo store generator (`shelfwise.data.demo`) is left out: it is big and only the demo
and tests use it.
"""

from shelfwise.data.datasets import Dataset, load_dataset
from shelfwise.data.frames import conform, records_to_frame
from shelfwise.data.io import FORMATS, detect_format, iter_rows, load_records, write_jsonl
from shelfwise.data.matrix import Interactions, InteractionWeights, build_interactions
from shelfwise.data.schemas import EVENT_TYPES, Event, EventType, Item, User
from shelfwise.data.sequences import OrderedInteractions, Sequences, sequences_of
from shelfwise.data.splits import Split, leave_last_out, random_holdout, temporal_split
from shelfwise.data.vocab import Vocabulary

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
