"""Transforms: each one is an interpreter on the trace stack, or built from them."""
