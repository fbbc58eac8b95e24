# shellcheck shell=bash
# Shared helpers for the scripts in this folder; sourced, not run.

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# True on a Debian-family host where we are root, the only case where the
# scripts may install system packages by themselves.
can_apt_install() {
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1
}

# Install Debian packages that are missing, refreshing the package lists once
# when they are absent or older than a day.
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  can_apt_install || die "missing packages: ${missing[*]} (install them, or run as root on Debian/Ubuntu)"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit 2>/dev/null)" ]; then
    say "apt-get update"
    apt-get update -qq
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# For the benchmarks. bench_time LOG ARGS...: run ansible-playbook ARGS once,
# its output in LOG, and print its seconds; on failure show LOG's end and stop.
bench_time() {
  local log=$1 start
  shift
  start=$(date +%s.%N)
  ansible-playbook "$@" >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "ansible-playbook $* failed"; }
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

# The median of the numbers given.
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# bench_report FLOOR LABEL TIMES...: the median, its ratio to FLOOR, every run.
bench_report() {
  local floor=$1 label=$2 m
  shift 2
  m=$(median "$@")
  printf '%-34s %6.1f s  %5.1f x floor  (runs: %s)\n' "$label" "$m" "$(awk -v a="$m" -v b="$floor" 'BEGIN { print a / b }')" "$*"
}

# bench_floor TIMES...: print the floor's line; its median is the caller's $floor.
bench_floor() {
  printf '%-34s %6.1f s             (runs: %s)\n' "floor (gather facts only)" "$(median "$@")" "$*"
}
