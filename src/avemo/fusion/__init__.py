"""The trainable attention fusion model, its metric losses, actor-independent splits and the training loop."""
