#!/usr/bin/env bash
# Starts booking, notifier and audit in the background against the local stack, loads the demo data,
# and prints where to look. `run.sh stop` stops them. Used by `make run` / `make stop`.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN_DIR=.run
BIN=.venv/bin
mkdir -p "$RUN_DIR"

export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
export MONGODB_URL=${MONGODB_URL:-mongodb://127.0.0.1:27017/}
export SMTP_HOST=${SMTP_HOST:-127.0.0.1}
export SMTP_PORT=${SMTP_PORT:-1025}
export LOG_JSON=${LOG_JSON:-true}

declare -A PORTS=([booking]=8001 [notifier]=8002 [audit]=8003)

stop_all() {
  for svc in booking notifier audit; do
    pid_file="$RUN_DIR/$svc.pid"
    if [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
      kill -TERM "$(cat "$pid_file")"
      for _ in $(seq 1 300); do kill -0 "$(cat "$pid_file")" 2>/dev/null || break; sleep 0.1; done
      echo "stopped $svc"
    fi
    rm -f "$pid_file"
  done
}

start_all() {
  stop_all >/dev/null
  for svc in booking notifier audit; do
    HTTP_PORT=${PORTS[$svc]} nohup "$BIN/$svc" serve >>"$RUN_DIR/$svc.log" 2>&1 &
    echo $! >"$RUN_DIR/$svc.pid"
  done
  for svc in booking notifier audit; do
    url="http://127.0.0.1:${PORTS[$svc]}/readyz"
    for i in $(seq 1 300); do
      curl -sf "$url" >/dev/null && break
      if ! kill -0 "$(cat "$RUN_DIR/$svc.pid")" 2>/dev/null || [[ $i == 300 ]]; then
        echo "$svc did not become ready; its log:" >&2; tail -30 "$RUN_DIR/$svc.log" >&2; exit 1
      fi
      sleep 0.1
    done
  done
  "$BIN/booking" seed-demo >"$RUN_DIR/demo.json"
  python3 - "$RUN_DIR/demo.json" <<'PY'
import json, sys
demo = json.load(open(sys.argv[1]))
ann = demo["clients"][0]
print(f"""
The platform is running (logs: make logs; stop: make stop).

  Client portal (as {ann['name']}):  http://127.0.0.1:8001/portal/#token={ann['token']}
  Admin HOME:                  http://127.0.0.1:8001/admin/#token={demo['admin_token']}

  booking   http://127.0.0.1:8001/docs    portal + admin API
  notifier  http://127.0.0.1:8002/docs    HOME notices API
  audit     http://127.0.0.1:8003/docs    client LOGS API
  Mailpit   http://127.0.0.1:8025/api/v1/messages   emails received (SMTP on 127.0.0.1:1025)
  RabbitMQ  http://127.0.0.1:15672        management UI (guest / guest)

Demo business {demo['business_id']}; tokens are in .run/demo.json. Try the seed scenario:

  export CLIENT='{ann['token']}'
  export ADMIN='{demo['admin_token']}'
  curl -s -H "Authorization: Bearer $CLIENT" 'http://127.0.0.1:8001/v1/portal/schedule?month=YYYY-MM'
  curl -s -X POST -H "Authorization: Bearer $CLIENT" http://127.0.0.1:8001/v1/portal/job-requests/JOB_REQUEST_ID/cancel
  curl -s -H "Authorization: Bearer $ADMIN" 'http://127.0.0.1:8002/v1/admin/notices?unread=true'
  curl -s -H "Authorization: Bearer $ADMIN" http://127.0.0.1:8003/v1/admin/clients/{ann['id']}/logs
""")
PY
}

case "${1:-start}" in
  start) start_all ;;
  stop) stop_all ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
