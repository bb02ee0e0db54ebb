"""The feature cache: one atomic safetensors entry per clip, a manifest with the fingerprint, an index."""

from avemo.cache.store import CacheError, FeatureCache

__all__ = ["CacheError", "FeatureCache"]
