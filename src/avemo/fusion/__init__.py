"""The trainable attention fusion model, its losses and its training loop (not built yet)."""
