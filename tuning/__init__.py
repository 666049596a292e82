"""Ray Tune search over LR decay and pruning ratios for the fewest dollars to a target accuracy.

Placeholder: the search issue fills this package (a pure policy module and a thin Tune adapter).
"""
