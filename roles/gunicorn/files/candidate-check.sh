#!/bin/sh
# Start a new release once before it goes live and ask it for its health
# path; run by root as
#   sh -c "$(cat candidate-check.sh)" UNIT RELEASE LINK SOCKET HOST PATH WAIT STAMP PASSED ASK
# UNIT is a service with a socket of the same name, which starts the
# release LINK points at; LINK is set to RELEASE. SOCKET is the socket's
# path (root's only, made by systemd), HOST the name asked for, WAIT the
# seconds to wait; STAMP, in root's staging directory, remembers what
# passed (PASSED). ASK is the program (files/ask-socket.py) that asks the
# socket, run with the host's python3, never the release's.
# A 200 passes; another status, a stop or no answer in time fails, with
# what happened on standard output. The candidate is stopped either way.
unit=$0 release=$1 link=$2 sock=$3 host=$4 path=$5 wait=$6 stamp=$7 passed=$8 ask=$9
ln -sfn "$release" "$link"
if [ "$(systemctl show --property=NeedDaemonReload --value "$unit" "${unit%.service}.socket" | sort -u)" != no ]; then
  systemctl daemon-reload
fi
systemctl reset-failed "$unit" "${unit%.service}.socket" 2>/dev/null
trap 'systemctl stop "$unit" "${unit%.service}.socket"' EXIT
if ! systemctl start "$unit" 2>/dev/null; then
  echo "did not start ($(systemctl show --property=Result --value "$unit"))"; exit 1
fi
end=$(( $(date +%s) + wait ))
while :; do
  if ! systemctl is-active --quiet "$unit"; then
    echo "stopped ($(systemctl show --property=Result --value "$unit")) before it answered $path"; exit 1
  fi
  out=$(python3 -I -c "$ask" "$sock" "$host" "$path" 2>/dev/null)
  code=$(printf '%s' "$out" | tail -n 1)
  case $code in
    200) printf '%s' "$passed" > "$stamp"; echo "answered $path with 200"; exit 0 ;;
    ''|000) ;;
    *) echo "answered $path with HTTP $code: $(printf '%s' "$out" | sed '$d' | tr -s '\n' ' ' | cut -c 1-200)"; exit 1 ;;
  esac
  if [ "$(date +%s)" -ge "$end" ]; then echo "did not answer $path within $wait s"; exit 1; fi
  sleep 0.2
done
