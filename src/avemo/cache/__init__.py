"""The feature cache: one atomic safetensors entry per clip, a manifest with the fingerprint, an index."""

from avemo.cache.store import (DAMAGED, NO_CHECKSUM, OK, CacheError, DamagedEntryError, EntryCheck, FeatureCache,
                               differing_keys, fingerprint_of)

__all__ = ["DAMAGED", "NO_CHECKSUM", "OK", "CacheError", "DamagedEntryError", "EntryCheck", "FeatureCache",
           "differing_keys", "fingerprint_of"]
