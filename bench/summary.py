"""Turns one bench/run.sh run into the Markdown table of bench/README.md and a JSON summary.

  summary.py TMP_DIR JSON_OUT FANOUT HIT_FANOUT LOAD_BEFORE LOAD_AFTER REV

Every figure is min / median / max over hyperfine's runs; every target is a ratio of
medians measured in the same hyperfine invocation, so machine load moves both sides.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def stats(times: list[float]) -> dict[str, float]:
    ms = [t * 1000 for t in times]
    return {"min": min(ms), "median": statistics.median(ms), "max": max(ms), "runs": len(ms)}


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} x {model}, Linux {platform.release()}"


def main(argv: list[str]) -> int:
    tmp, json_out = Path(argv[0]), Path(argv[1])
    fanout, hit_fanout = int(argv[2]), int(argv[3])
    load_before, load_after, rev = argv[4:7]

    figures: dict[str, dict[str, float]] = {}
    for name in ("hyperfine.json", "fanout.json"):
        for r in json.loads((tmp / name).read_text())["results"]:
            figures[r["command"]] = stats(r["times"])
    med = {k: v["median"] for k, v in figures.items()}

    checks: list[dict] = []

    def check(name: str, value: float, limit: float, unit: str = "x") -> None:
        checks.append({"check": name, "value": round(value, 3), "target": f"<= {limit}{unit}",
                       "met": value <= limit})

    ku_raw, ku_hit = med["keyutils: keyctl print (1 KiB)"], med["keyutils: stsmfa hit"]
    ss_raw, ss_hit = med["secret-service: secret-tool lookup (1 KiB)"], med["secret-service: stsmfa hit"]
    check("keyutils hit / keyctl print", ku_hit / ku_raw, 1.2)
    check("secret-service hit / secret-tool lookup", ss_hit / ss_raw, 0.5)
    check("keyutils role hit / source hit", med["keyutils: stsmfa role hit"] / ku_hit, 1.1)
    check("secret-service role hit / source hit", med["secret-service: stsmfa role hit"] / ss_hit, 1.1)
    check("keyutils hit, key in the key store / key in the credentials file",
          med["keyutils: stsmfa hit, key in the key store"] / ku_hit, 1.1)
    par_raw = med[f"keyutils: {hit_fanout} parallel keyctl print"]
    par_hit = med[f"keyutils: {hit_fanout} parallel stsmfa hits"]
    check(f"{hit_fanout} parallel hits / {hit_fanout} parallel keyctl print", par_hit / par_raw, 2.0)

    hit_checks = (tmp / "hit-checks").read_text().split()
    checks.append({"check": "hits stayed hits (codes, GetSessionToken, AssumeRole per store)",
                   "value": " ".join(hit_checks), "target": "1 1 1 1 1 1",
                   "met": hit_checks == ["1"] * 6})

    kuk = (tmp / "key-store-codes").read_text().split()
    checks.append({"check": "key-store profile's hits stayed hits (codes asked)", "value": " ".join(kuk),
                   "target": "1", "met": kuk == ["1"]})

    rss_hit, rss_raw = (int(x) for x in (tmp / "rss").read_text().split())

    rows = [line.split() for line in (tmp / "cold.txt").read_text().splitlines() if line.strip()]
    cold: dict[str, dict] = {}
    for store in ("keyutils", "secret-service"):
        one = [float(r[3]) for r in rows if r[0] == store and r[1] == "1"]
        many = [r for r in rows if r[0] == store and r[1] == str(fanout)]
        wall = [float(r[3]) for r in many]
        cold[store] = {
            "one_call_s": {"min": min(one), "median": statistics.median(one), "max": max(one)},
            "parallel_s": {"min": min(wall), "median": statistics.median(wall), "max": max(wall)},
            "parallel_ok": sorted({int(r[4]) for r in many}),
            "codes_asked": sorted({int(r[5]) for r in many}),
            "sts_calls": sorted({int(r[6]) for r in many}),
        }
        c = cold[store]
        ok = (c["parallel_s"]["median"] <= c["one_call_s"]["median"] + 1.0
              and c["parallel_s"]["max"] <= c["one_call_s"]["max"] + 1.0
              and c["codes_asked"] == [1] and c["sts_calls"] == [1] and c["parallel_ok"] == [fanout])
        checks.append({"check": f"{store}: {fanout} parallel cold calls",
                       "value": f"{c['parallel_s']['median']:.3f} s median, {c['parallel_s']['max']:.3f} s max, "
                                f"codes {c['codes_asked']}, STS calls {c['sts_calls']}, ok {c['parallel_ok']}",
                       "target": "<= one cold call + 1 s (median and max), 1 code, 1 STS call, all ok",
                       "met": ok})

    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "stsmfa": rev,
        "load_average_before_after": [load_before, load_after],
        "figures_ms": figures,
        "peak_rss_kib": {"stsmfa hit (keyutils)": rss_hit, "keyctl print": rss_raw},
        "cold": cold,
        "checks": checks,
    }
    json_out.write_text(json.dumps(summary, indent=2) + "\n")

    print(f"stsmfa {rev}, release build; {summary['date']}; {summary['machine']}")
    print(f"load average before/after: {load_before} / {load_after}")
    print()
    print("| command | min ms | median ms | max ms |")
    print("|---|---:|---:|---:|")
    for name, f in figures.items():
        print(f"| {name} | {f['min']:.2f} | {f['median']:.2f} | {f['max']:.2f} |")
    print()
    print(f"peak RSS of one hit: {rss_hit} KiB (keyctl print: {rss_raw} KiB)")
    print()
    print("| check | value | target | verdict |")
    print("|---|---|---|---|")
    for c in checks:
        v = f"{c['value']:.2f}x" if isinstance(c["value"], float) else c["value"]
        print(f"| {c['check']} | {v} | {c['target']} | {'met' if c['met'] else 'NOT met'} |")
    print()
    print("cold rounds (store, calls, round, wall s, ok, codes asked, STS calls):")
    for r in rows:
        print("  " + " ".join(r))
    print(f"\nJSON summary: {json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
