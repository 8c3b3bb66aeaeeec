#!/usr/bin/env bash
# A local 3-node NATS cluster with JetStream, for trying Switchboard's replicated setup.
#   scripts/cluster.sh start    start n1..n3 (client ports 4222-4224, routes 6222-6224, monitoring 8222-8224)
#   scripts/cluster.sh stop     stop them
#   scripts/cluster.sh status   show which are running
# Then: NATS_URL=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
#       SB_REPLICAS=3 switchboard host          (streams and buckets with 3 replicas)
#       switchboard worker / chat / admin as usual with the same NATS_URL.
# The nodes listen on loopback only and require no authentication: this is for trying replication
# and failover, not a production setup (see docs/SECURITY.md).
# State lives in data/cluster/; delete it to start from scratch. Environment: CLUSTER_DIR,
# CLIENT_PORT_BASE (4222), ROUTE_PORT_BASE (6222), HTTP_PORT_BASE (8222).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${CLUSTER_DIR:-data/cluster}
client=${CLIENT_PORT_BASE:-4222}
route=${ROUTE_PORT_BASE:-6222}
http=${HTTP_PORT_BASE:-8222}
nodes=3

nats_bin() {
  command -v nats-server 2>/dev/null || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; } || {
    echo "cluster: nats-server not found; run npm run setup (or apt-get install nats-server)" >&2
    exit 1
  }
}

write_config() {
  local i=$1 routes="" j
  for j in $(seq 1 $nodes); do
    [ "$j" -eq "$i" ] && continue
    routes+="nats-route://127.0.0.1:$((route + j - 1)), "
  done
  mkdir -p "$dir/n$i"
  cat > "$dir/n$i/server.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((client + i - 1))
http: 127.0.0.1:$((http + i - 1))
max_payload: 1MB
pid_file: "$dir/n$i/nats.pid"
jetstream { store_dir: "$dir/n$i/jetstream" }
cluster {
  name: switchboard
  listen: 127.0.0.1:$((route + i - 1))
  routes: [ ${routes%, } ]
}
CONF
}

running() { [ -f "$dir/n$1/nats.pid" ] && kill -0 "$(cat "$dir/n$1/nats.pid")" 2>/dev/null; }

case "${1:-}" in
  start)
    bin=$(nats_bin)
    for i in $(seq 1 $nodes); do
      if running "$i"; then echo "n$i already running"; continue; fi
      write_config "$i"
      "$bin" -c "$dir/n$i/server.conf" > "$dir/n$i/server.log" 2>&1 &
      echo "n$i started on nats://127.0.0.1:$((client + i - 1)) (log $dir/n$i/server.log)"
    done
    echo "NATS_URL=$(for i in $(seq 1 $nodes); do printf 'nats://127.0.0.1:%s,' $((client + i - 1)); done | sed 's/,$//')"
    ;;
  stop)
    for i in $(seq 1 $nodes); do
      if running "$i"; then kill "$(cat "$dir/n$i/nats.pid")" && echo "n$i stopped"; fi
    done
    ;;
  status)
    for i in $(seq 1 $nodes); do
      if running "$i"; then echo "n$i running (pid $(cat "$dir/n$i/nats.pid"))"; else echo "n$i stopped"; fi
    done
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
