"""The feature cache: one atomic safetensors entry per clip, a manifest with the feature spec, an index."""

from avemo.cache.store import DAMAGED, NO_CHECKSUM, OK, CacheError, DamagedEntryError, EntryCheck, FeatureCache

__all__ = ["DAMAGED", "NO_CHECKSUM", "OK", "CacheError", "DamagedEntryError", "EntryCheck", "FeatureCache"]
