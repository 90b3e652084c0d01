"""The segments engine.

- `compiler.py` (+ `sqlexpr.py`, `regions.py`): a definition -> one SQL boolean per dialect, values bound.
- `evaluator.py`: the same definition read in plain Python, the reference the compiler is tested against.
- `live.py`: membership kept fresh (per-profile hooks, full recompute and time-based refresh as work).
- `signals.py`: entered / left segment signals for subscribers such as flows.

Definitions are parsed and validated in `menura.domain.segment_conditions`.
"""
