"""From files on disk to decoded, sampled, normalisable model inputs.

discover (dataset names) -> decode (PyAV) -> sample 6 x 16 frames, log-spectrogram in 6 aligned segments.
"""
