"""`make bench`: every benchmark of the project, one after the other.

Figures are printed, not asserted: speed targets are tracked here, never in
timed tests. Each module under tests/bench named bench_*.py has main().
"""

import importlib
import pkgutil
import sys
from pathlib import Path

here = Path(__file__).parent
selected = sys.argv[1:]
for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
    if info.name.startswith("bench_") and (not selected or info.name[6:] in selected):
        print(f"== {info.name[6:]}", flush=True)
        importlib.import_module(f"tests.bench.{info.name}").main()
        print(flush=True)
