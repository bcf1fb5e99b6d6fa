"""A benchmark record: `cli.py bench --json PATH` saves a run's rows with the machine that
ran them; `--compare PATH` prints each row's time against a saved run's, so a slowdown
shows in a commit's note; `readme_table` turns a saved run into the README's speed table.

A record:

    {"machine": {"cores", "cpu", "python", "numpy", "numba", "torch", "loopnet", "platform",
                 "threads"},
     "when": "2026-11-24T02:10:00Z", "quick": false, "repeats": 21,
     "rows": [{"benchmark", "contender", "median_s", "vs_ref", "notes"}, ...]}

`vs_ref` is the reference's time over the contender's, measured in the same run (the
first row of each benchmark is the reference); null for the reference itself.
"""

import json
import os
import platform
import time

import numpy as np

import loopnet as ln

SLOWER = 1.25  # a row this much slower than the saved run is flagged: noise on a shared machine is ~10-20%


def cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads, torch):
    import numba

    return {"cores": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__,
            "torch": torch.__version__ if torch is not None else None, "loopnet": ln.__version__,
            "platform": platform.platform(), "threads": threads}


def record(rows, machine_info, quick, repeats):
    return {"machine": machine_info, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "quick": quick, "repeats": repeats,
            "rows": [{"benchmark": name, "contender": contender, "median_s": seconds,
                      "vs_ref": ratio if contender != rows_reference(rows, name) else None, "notes": notes}
                     for name, contender, seconds, ratio, notes in rows]}


def rows_reference(rows, name):
    """The first contender of benchmark `name`: its reference."""
    return next(contender for row_name, contender, *_ in rows if row_name == name)


def save(path, saved):
    with open(path, "w", encoding="utf-8") as out:
        json.dump(saved, out, indent=1)
        out.write("\n")


class RecordError(ValueError):
    pass


def load(path):
    """A saved record, or RecordError saying why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as saved:
            data = json.load(saved)
    except OSError as err:
        raise RecordError(f"cannot read {path!r}: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise RecordError(f"{path!r} is not a benchmark record (not JSON: {err.msg}, line {err.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list) or not all(
            isinstance(r, dict) and {"benchmark", "contender", "median_s"} <= set(r) for r in data["rows"]):
        raise RecordError(f"{path!r} is not a benchmark record: it needs rows of benchmark, contender and median_s "
                          f"(`cli.py bench --json PATH` writes one)")
    return data


def compare(rows, saved, out=print, partial=False):
    """Each row's median against the saved run's: now / then (>1 is slower now). With
    `partial` (some groups left out on purpose), the saved rows not run are only counted."""
    then = {(r["benchmark"], r["contender"]): r["median_s"] for r in saved["rows"]}
    was = saved.get("machine", {})
    out(f"against the run saved {saved.get('when', '?')} on {was.get('cpu', '?')} ({was.get('cores', '?')} cores); "
        f"now / then, >1 is slower now:")
    seen = set()
    for name, contender, seconds, _, _ in rows:
        key = (name, contender)
        seen.add(key)
        if key not in then:
            out(f"{name:<36} {contender:<15} {seconds * 1e3:>9.3f}ms  (not in the saved run)")
            continue
        ratio = seconds / then[key]
        flag = "  slower" if ratio >= SLOWER else ""
        out(f"{name:<36} {contender:<15} {seconds * 1e3:>9.3f}ms {then[key] * 1e3:>9.3f}ms {ratio:>6.2f}x{flag}")
    missing = [key for key in then if key not in seen]
    if partial and missing:
        out(f"({len(missing)} rows of the saved run were not run this time)")
        return
    for name, contender in missing:
        out(f"{name:<36} {contender:<15} (only in the saved run)")


def readme_table(saved):
    """The README's speed table from a saved run: per benchmark, each contender's median
    and its ratio to the reference, and loopnet's notes (GFLOP/s, % of BLAS)."""
    groups = {}
    for row in saved["rows"]:
        groups.setdefault(row["benchmark"], []).append(row)
    lines = ["| benchmark | contender | median | vs reference | notes |", "|---|---|---|---|---|"]
    for name, rows in groups.items():
        for k, row in enumerate(rows):
            ratio = "reference" if row.get("vs_ref") is None else f"{row['vs_ref']:.2f}x"
            median = f"{row['median_s'] * 1e3:.3g} ms"
            lines.append(f"| {name if k == 0 else ''} | {row['contender']} | {median} | {ratio} | {row.get('notes') or ''} |")
    m = saved["machine"]
    lines.append("")
    lines.append(f"Measured {saved['when'][:10]} with `python cli.py bench --json benchmarks/baseline.json`: "
                 f"medians of {saved['repeats']} runs (fewer for the larger matmuls), {m['cores']} cores ({m['cpu']}), {m['threads']} threads each; "
                 f"numba {m['numba']}, NumPy {m['numpy']}, torch {m['torch'] or 'not installed'}. "
                 f"vs reference: the reference's time over the row's (>1 is faster than the reference).")
    return "\n".join(lines)
