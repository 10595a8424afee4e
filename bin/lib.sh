# Shared by bin/demo, bin/test and bin/bench: install what is missing, build the extension,
# and run throwaway PostgreSQL clusters as an unprivileged OS user. Source it; don't run it.
# PG_VERSIONS (comma-separated majors: 15,16,17,18) chooses the servers; use_version N switches to one.
set -euo pipefail

PGRX_VERSION=0.18.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${PG_SEGMENTS_RUN_DIR:-/tmp/pg_segments}
export PATH="$HOME/.cargo/bin:$PATH"
source "$ROOT/bin/servers.sh"
# Build artifacts live beside the server builds, so a fresh clone (CI's) rebuilds only this crate.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PG_SEGMENTS_CACHE/target}
IFS=, read -r -a PG_VERSION_LIST <<<"${PG_VERSIONS:-15}"
PG_MAJOR=${PG_VERSION_LIST[0]}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The OS user that owns throwaway clusters: Postgres refuses to run as root.
cluster_user() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }
as_cluster_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_prerequisites() {
  # PostgreSQL 15 and its pg_cron from Debian; bison and flex build 16 and 17 from source
  local wanted=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-contrib
                clang libclang-dev sudo build-essential pkg-config python3 python3-pip python3-venv bc
                bison flex zlib1g-dev)
  local missing=()
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust 1.95 (rustup) first" >&2; exit 1
  fi
  if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
    say "installing cargo-pgrx $PGRX_VERSION (about 8 minutes, once)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
  fi
  # every chosen server (built or unpacked once), then one pgrx configuration naming them all
  local init=() v
  for v in "${PG_VERSION_LIST[@]}"; do
    provision_server "$v"
    init+=("--pg$v=$PG_CONFIG")
  done
  cargo pgrx init "${init[@]}" >/dev/null
  use_version "$PG_MAJOR"
}

# use_version N: later commands use PostgreSQL N (PG_MAJOR, PG_CONFIG, PG_BIN, PG_REGRESS, ...).
use_version() {
  PG_MAJOR=$1
  provision_server "$PG_MAJOR"
}

# Builds the extension (release, or dev with PG_SEGMENTS_BUILD=dev) and installs it into the current server.
install_extension() {
  say "building and installing pg_segments into $($PG_CONFIG --pkglibdir)"
  # the test suite installs the dev build: it shares its dependencies with `cargo pgrx test`'s build (a
  # release build would compile pgrx's bindings a second time for every version) and keeps overflow checks on
  local profile=--release
  [ "${PG_SEGMENTS_BUILD:-release}" = dev ] && profile=
  (cd "$ROOT" && as_root env PATH="$PATH" CARGO_TARGET_DIR="$CARGO_TARGET_DIR" cargo pgrx install $profile --pg-config "$PG_CONFIG") >/dev/null
  # earlier releases' install scripts, so that CREATE EXTENSION ... VERSION 'old' (and the upgrade test) work;
  # cargo pgrx installs the current script and the upgrade steps itself
  as_root cp "$ROOT"/sql/pg_segments--[0-9]*[0-9].sql "$("$PG_CONFIG" --sharedir)/extension/"
}

free_port() {
  local port=${1:-54329}
  while (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null || [ -e "/tmp/.s.PGSQL.$port" ]; do
    port=$((port + 1))
  done
  echo "$port"
}

# cluster_start NAME [extra postgres -c settings...]: a fresh cluster in $RUN_DIR/NAME on a free port.
# A leftover cluster of the same name (from a run that died) is stopped and removed first.
cluster_start() {
  local name=$1; shift
  local dir=$RUN_DIR/$name
  cluster_stop "$name"
  as_root mkdir -p "$RUN_DIR"; as_root chmod 755 "$RUN_DIR"
  as_root mkdir -p "$dir"; as_root chown "$(cluster_user)" "$dir"
  local port; port=$(free_port "${PG_SEGMENTS_PORT:-54329}")
  as_cluster_user "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  local opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c timezone=UTC"
  opts+=" -c shared_preload_libraries=pg_cron -c cron.database_name=${CRON_DATABASE:-postgres} -c cron.host=$dir"
  opts+=" -c max_worker_processes=16"
  for setting in "$@"; do opts+=" -c $setting"; done
  # started with RUST_BACKTRACE set, as servers often are: the extension must never show one (12_bad_input)
  as_cluster_user env RUST_BACKTRACE=full "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "$port" > "$dir/port"
  export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

cluster_stop() {
  local dir=$RUN_DIR/$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    # stopped by the server version that made it (bin/demo stop may name no version)
    local bindir; bindir=$("$(pg_config_path "$(cat "$dir/data/PG_VERSION")")" --bindir)
    as_cluster_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  as_root rm -rf "$dir"
}

# citus_start NAME DB: a 3-node Citus cluster on localhost (PostgreSQL 15): two workers and a coordinator,
# each a cluster_start cluster with `shared_preload_libraries = 'citus,pg_segments'` (pg_segments after citus:
# see README, "Scaling out with Citus") and database DB with the citus extension. Leaves PGPORT at the
# coordinator; CITUS_WORKER_PORTS holds the workers' ports.
CITUS_NODES=(worker1 worker2 coordinator)
citus_start() {
  local name=$1 db=$2 node port
  CITUS_WORKER_PORTS=()
  for node in "${CITUS_NODES[@]}"; do
    cluster_start "$name-$node" "shared_preload_libraries=citus,pg_segments" "citus.node_conninfo=sslmode=disable" \
      "max_connections=200"
    psql_q -d postgres -c "CREATE DATABASE $db"
    psql_q -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus"
    [ "$node" = coordinator ] || CITUS_WORKER_PORTS+=("$PGPORT")
  done
  psql_q -d "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', $PGPORT)" >/dev/null
  for port in "${CITUS_WORKER_PORTS[@]}"; do
    psql_q -d "$db" -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
  done
  export CITUS_WORKER_PORTS
}

citus_stop() {
  local node
  for node in "${CITUS_NODES[@]}"; do cluster_stop "$1-$node"; done
}

psql_q() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q "$@"; }
