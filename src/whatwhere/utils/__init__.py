"""Utilities shared by every layer: atomic file writes, on-disk caches, provenance of result
files, device choice, seeded random streams and Fourier grids.  Nothing here knows about MNIST,
retinas or models."""
