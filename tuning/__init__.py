"""Ray Tune search over LR decay and pruning ratios for the fewest dollars to a target accuracy.

`policy.py`: the bandit (pure, no Ray); `searcher.py`: its Ray Tune Searcher adapter. Dollars come
from trial results, never from the cost tracker; `orchestrator/tune_cmd.py` composes them.
"""
