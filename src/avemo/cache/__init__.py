"""The feature cache: one atomic safetensors entry per clip, a manifest with the fingerprint, an index."""

from avemo.cache.store import CacheError, FeatureCache, differing_keys, fingerprint_of

__all__ = ["CacheError", "FeatureCache", "differing_keys", "fingerprint_of"]
