"""The analysis layer: reads result records and builds the book. Imports no torch (tests/test_layers.py)."""
