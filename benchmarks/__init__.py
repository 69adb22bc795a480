"""Benchmarks of oipwidgets (scripts; a package only so that ``benchmarks.real`` can be imported)."""
