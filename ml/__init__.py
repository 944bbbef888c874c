"""fraudops ML package."""
