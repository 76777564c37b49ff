# Shared by the benchmark scripts (sourced, from the repository's root).

# The median of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR]=$1} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.2f\n", m}'; }

# A top-level field of a JSON file (a simulation report).
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

# Puts SECTION into docs/benchmarks.md between <!-- NAME:begin --> and <!-- NAME:end -->,
# replacing what was there (or appending both markers when they are missing).
put_section() {
  python3 - docs/benchmarks.md "$1" "$2" <<'PY'
import sys
path, name, section = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
block = begin + "\n" + section.strip() + "\n" + end
if begin in text:
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip() + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
}
