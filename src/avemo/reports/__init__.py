"""Reports of a training run: metrics per fold and overall, plots, JSON and Markdown."""
