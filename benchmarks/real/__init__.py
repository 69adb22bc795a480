"""Real trained colour CNNs shipped inside PyPI wheels, and real photos, for benchmarks (see NOTES.md)."""
