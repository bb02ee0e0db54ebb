"""The feature cache: one atomic safetensors entry per clip, a manifest with the fingerprint, an index."""

from avemo.cache.store import CacheError, FeatureCache, atomic_write, differing_keys, fingerprint_of

__all__ = ["CacheError", "FeatureCache", "atomic_write", "differing_keys", "fingerprint_of"]
