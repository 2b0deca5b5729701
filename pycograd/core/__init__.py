"""The core: trace stack, tracers, the primitive table, the Var tape, pytrees, errors."""
