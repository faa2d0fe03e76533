"""Shelfwise: self-tuning product search and recommendations for online stores."""

__version__ = "0.1.0"
