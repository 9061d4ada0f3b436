#!/usr/bin/env bash
# Fleet publish cost by release (benches/README.md "Fleet: steps"): a plain feed of 100,000
# domains, 2% of them replaced at each cycle, `trawl update` then `trawl publish --keep 24`;
# per publish: delta bytes written (files new or rewritten), delta bytes stored, CPU-s.
#   benches/fleet_steps.sh TRAWL WORKDIR [CYCLES]
set -eu
T=$(realpath "$1"); W=$2; CYCLES=${3:-24}
rm -rf "$W"; mkdir -p "$W"; cd "$W"
$T keygen --out fleet >/dev/null 2>&1
cat > trawl.toml <<'T'
[sensor]
data = "data"
[[feed]]
name = "f"
source = "f.txt"
format = "plain"
itype = "fqdn"
T
for c in $(seq 0 $((CYCLES - 1))); do
  seq $((c * 2000)) $((c * 2000 + 99999)) | sed 's/$/.steps.example/' > f.txt
  $T -q update --config trawl.toml >/dev/null
  touch marker; sleep 0.01
  /usr/bin/time -f "%U %S" -o cpu $T publish --config trawl.toml --to www --key fleet.key --keep 24 >/dev/null
  written=$(find www/deltas -newer marker -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  echo "cycle $c written $written stored $(du -sb www/deltas | cut -f1) cpu $(awk '{print $1 + $2}' cpu)"
done
