#!/usr/bin/env bash
# Intel at scale (benches/README "Update at scale"): `trawl update` of 5M domains and of 20M
# mixed indicators (domains, URLs, IPv4 addresses), each under /usr/bin/time -v, first into
# an empty data directory and then again over that snapshot (history and diff against it).
#   benches/update_scale.sh [WORKDIR] [MEMORY]
# MEMORY is [update] memory (default 512MiB, trawl's default). The sets are generated once
# per WORKDIR with the seeded generator below (gen_perf_data.py's value shapes, scaled up).
# Prints per run: peak RSS, wall, user+system CPU; then the snapshot's size, the time of a
# `trawl query` (opening the snapshot included) and its answer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/trawl-update-scale}
memory=${2:-512MiB}
mkdir -p "$work"
cd "$root"
# TRAWL=/path/to/trawl measures that binary (an A/B of two builds) instead of building one.
if [ -z "${TRAWL:-}" ]; then
  cargo build --release --bin trawl >/dev/null 2>&1
fi
trawl=${TRAWL:-"$root/target/release/trawl"}

python3 - "$work" <<'PY'
import os, random, sys
work = sys.argv[1]
TLDS = ["com", "net", "org", "info", "io", "xyz", "top", "ru", "de", "biz", "online"]
WORDS = "alpha beta cloud data edge gate host link mail node pay relay shop update web zone".split()

def domains(rng, n, out):
    # Distinct by construction: a fixed-width random prefix, then a counter.
    with open(out, "w") as f:
        for i in range(n):
            f.write(f"{rng.getrandbits(20):05x}x{i:x}.{TLDS[i % len(TLDS)]}\n")

def urls(rng, n, out):
    with open(out, "w") as f:
        for i in range(n):
            f.write(f"http://{rng.getrandbits(24):06x}.{TLDS[i % len(TLDS)]}/{WORDS[i % len(WORDS)]}/{i:x}.php\n")

def ips(rng, n, out):
    seen = set()
    with open(out, "w") as f:
        while len(seen) < n:
            v = rng.getrandbits(32)
            a = v >> 24
            if a in (0, 10, 100, 127, 169, 172, 192, 198, 203) or a >= 224 or v in seen:
                continue
            seen.add(v)
            f.write(f"{a}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}\n")

def feed(name, src, itype):
    return (f'[[feed]]\nname = "{name}"\nsource = "{src}"\nformat = "plain"\nitype = "{itype}"\n'
            f'confidence = 80\nseverity = "high"\nderive = false\n\n')

for name, parts in [("set5m", [("d5m", 5_000_000, domains, "fqdn")]),
                    ("set20m", [("d", 10_000_000, domains, "fqdn"), ("u", 6_000_000, urls, "url"),
                                ("i", 4_000_000, ips, "ipv4")])]:
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    if os.path.exists(os.path.join(d, "trawl.toml")):
        continue
    rng = random.Random(20261207)
    cfg = ""
    for feed_name, n, gen, itype in parts:
        gen(rng, n, os.path.join(d, f"{feed_name}.txt"))
        cfg += feed(feed_name, f"{feed_name}.txt", itype)
    open(os.path.join(d, "trawl.toml"), "w").write(cfg)
PY

for set in set5m set20m; do
  d="$work/$set"
  sed -i '/^\[update\]/,+1d' "$d/trawl.toml"
  printf '[update]\nmemory = "%s"\n' "$memory" >> "$d/trawl.toml"
  rm -rf "$d/data"
  for run in first over-previous; do
    /usr/bin/time -v "$trawl" update --force --quiet --config "$d/trawl.toml" --data "$d/data" \
      2> "$d/time-$run.txt" || { cat "$d/time-$run.txt"; exit 1; }
    rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f MB", $2/1024}' "$d/time-$run.txt")
    wall=$(awk -F': ' '/Elapsed/ {print $2}' "$d/time-$run.txt")
    cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.1f", u+s}' "$d/time-$run.txt")
    echo "$set $run: peak RSS $rss, wall $wall, CPU $cpu s ($(cut -d' ' -f1-3 /proc/loadavg) load)"
  done
  snap="$d/data/snapshots/$(cat "$d/data/current")"
  echo "$set snapshot: $(du -sh "$snap" | cut -f1)"
  q=$(head -1 "$d/$(sed -n 's/^source = "\(.*\)"/\1/p' "$d/trawl.toml" | head -1)")
  start=$(date +%s%N)
  "$trawl" query --data "$d/data" --config "$d/trawl.toml" "$q" > "$d/query.txt"
  end=$(date +%s%N)
  echo "$set query $q (open + lookup): $(( (end - start) / 1000000 )) ms, $(grep -c . "$d/query.txt") lines"
done
