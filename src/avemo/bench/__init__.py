"""``avemo bench``: every speed comparison side by side, with the seed's approach as the baseline row."""
