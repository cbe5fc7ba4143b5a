"""Reference FD discovery for benches/normalize.sh: desbordante's default
exact FD algorithm (HyFD) on a CSV, null = null. Prints one JSON line:
seconds (CSV load + discovery, as `nightjar normalize infer` measures from
its start) and the FDs as [lhs names, rhs name]."""
import csv
import json
import sys
import time

import desbordante

path = sys.argv[1]
t0 = time.perf_counter()
algo = desbordante.fd.algorithms.Default()
algo.load_data(table=(path, ",", True))
algo.execute()
fds = algo.get_fds()
t1 = time.perf_counter()
names = next(csv.reader(open(path)))
print(json.dumps({
    "seconds": t1 - t0,
    "fds": sorted([[names[i] for i in sorted(f.lhs_indices)], names[f.rhs_index]] for f in fds),
}))
