"""Domain values and rules: plain, typed, no I/O."""
