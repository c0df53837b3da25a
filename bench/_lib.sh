# Shell helpers shared by the bench scripts (sourced, not run).

# elapsed CMD...: the seconds CMD takes (output discarded), unrounded.
elapsed() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
# timed CMD...: seconds of one run, to 0.01 s.
timed() { printf '%.2f' "$(elapsed "$@")"; }
# best CMD...: seconds of the fastest of 3 runs, to 0.01 s.
best() {
  local b=999999 t
  for _ in 1 2 3; do
    t=$(elapsed "$@")
    b=$(echo "if ($t < $b) $t else $b" | bc -l)
  done
  printf '%.2f' "$b"
}
size() { stat -c %s "$1"; }
mib() { echo "scale=1; $1 / 1048576" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
