#!/usr/bin/env bash
# homevitals deployment init: the broker's password files and certificates, before the first
# `docker-compose up`, and gateway credentials afterwards. Needs bash, openssl and
# mosquitto_passwd (Debian: apt-get install mosquitto openssl; or run this script inside the
# eclipse-mosquitto image). Secrets are read from the env file and passed on standard input,
# never on a command line.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/init.sh [--env FILE] [--dir DIR] [--owner UID:GID] COMMAND [NAME]

commands:
  broker                 create DIR/passwd-services (users ingest and ops, passwords
                         HV_INGEST_MQTT_PASSWORD and HV_OPS_MQTT_PASSWORD from the env file),
                         an empty DIR/passwd-gateways, and DIR/certs/{ca.crt,server.crt,server.key}
                         for HV_BROKER_HOSTNAME (CA key in DIR/ca/, never mounted). Refuses to
                         overwrite existing files.
  gateway-cert NAME      issue gateway NAME a client certificate (CN=NAME) for listener 8883:
                         DIR/gateways/NAME/{client.crt,client.key,ca.crt}
  gateway-password NAME  add gateway NAME to DIR/passwd-gateways (listener 8884) with a new
                         random password, printed once on standard output
  check-name NAME        exit 0 if NAME may be a broker user name, 2 (saying why) if not

options:
  --env FILE      the compose env file (default: .env next to docker-compose.yml)
  --dir DIR       the broker directory mounted by docker-compose (default: deploy/mosquitto)
  --owner U:G     owner of the files when run as root (default 1883:1883, the eclipse-mosquitto
                  image's user), so the broker can reload them (SIGHUP) after dropping root
  -h, --help      this text

A broker user name (a gateway id) is 1 to 64 characters: letters, digits and . _ -, starting
with a letter or digit. "/", "+" and "#" are refused: the broker's ACL puts the user name into
topic patterns (hv/v1/gw/%u/...), where they would change the topic's shape.
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
env_file="$here/../.env"
dir="$here/mosquitto"
owner="1883:1883"
while [ $# -gt 0 ]; do
  case "$1" in
    --env) env_file="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --owner) owner="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "init.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
command="$1"; shift

die() { echo "init.sh: $*" >&2; exit 2; }

check_name() {
  local name="$1"
  case "$name" in
    */*|*+*|*#*) die "user name '$name' contains '/', '+' or '#'" ;;
  esac
  # The same rule as enrolment's (careteam/broker.py USERNAME); ':' separates the file's fields.
  [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] \
    || die "user name '$name' must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit"
}

# KEY=VALUE lines of the env file, read as data (never sourced: it is not a script).
env_value() {
  local key="$1" line value=""
  [ -f "$env_file" ] || die "no env file $env_file (copy .env.example to .env and fill it in)"
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in "$key="*) value="${line#"$key="}" ;; esac
  done <"$env_file"
  value="${value%\"}"; value="${value#\"}"
  [ -n "$value" ] || die "$key is not set in $env_file"
  case "$value" in *change-me*|*changeme*) die "$key in $env_file is still a placeholder" ;; esac
  printf '%s' "$value"
}

private() {  # owner-only files the broker must still read after dropping root
  chmod 0640 "$@"
  if [ "$(id -u)" -eq 0 ]; then chown "$owner" "$@"; fi
}

add_user() {  # add_user FILE NAME PASSWORD (password on stdin of mosquitto_passwd)
  local file="$1" name="$2" password="$3"
  check_name "$name"
  if cut -d: -f1 "$file" | grep -qxF -- "$name"; then die "user $name already exists in $file"; fi
  printf '%s\n%s\n' "$password" "$password" | mosquitto_passwd "$file" "$name" >/dev/null
}

ca_dir="$dir/ca"
certs="$dir/certs"

issue() {  # issue CN OUT_PREFIX EXTENSIONS
  local cn="$1" out="$2" ext="$3"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$cn" \
    -keyout "$out.key" -out "$out.csr" 2>/dev/null
  openssl x509 -req -in "$out.csr" -CA "$certs/ca.crt" -CAkey "$ca_dir/ca.key" -CAserial "$ca_dir/ca.srl" -CAcreateserial \
    -days 825 -sha256 -extfile <(printf '%s\n' "$ext") -out "$out.crt" 2>/dev/null
  rm -f "$out.csr"
}

case "$command" in
  check-name)
    [ $# -eq 1 ] || die "check-name needs a NAME"
    check_name "$1"
    ;;
  broker)
    for f in "$dir/passwd-services" "$dir/passwd-gateways" "$certs/server.key" "$ca_dir/ca.key"; do
      [ ! -e "$f" ] || die "$f exists: remove it first to start over"
    done
    ingest_pw="$(env_value HV_INGEST_MQTT_PASSWORD)"
    ops_pw="$(env_value HV_OPS_MQTT_PASSWORD)"
    host="$(env_value HV_BROKER_HOSTNAME)"
    mkdir -p "$certs" "$ca_dir"
    chmod 0700 "$ca_dir"
    : >"$dir/passwd-services"
    : >"$dir/passwd-gateways"
    add_user "$dir/passwd-services" ingest "$ingest_pw"
    add_user "$dir/passwd-services" ops "$ops_pw"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=homevitals broker CA" -keyout "$ca_dir/ca.key" -out "$certs/ca.crt" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      2>/dev/null
    issue "$host" "$certs/server" \
      "subjectAltName=DNS:$host
extendedKeyUsage=serverAuth
basicConstraints=critical,CA:FALSE"
    private "$dir/passwd-services" "$dir/passwd-gateways" "$certs/server.key"
    chmod 0644 "$certs/ca.crt" "$certs/server.crt"
    echo "broker files created in $dir (server name $host)"
    ;;
  gateway-cert)
    [ $# -eq 1 ] || die "gateway-cert needs a NAME"
    check_name "$1"
    [ -f "$ca_dir/ca.key" ] || die "no CA in $ca_dir: run 'init.sh broker' first"
    out="$dir/gateways/$1"
    [ ! -e "$out" ] || die "$out exists"
    mkdir -p "$out"
    issue "$1" "$out/client" "extendedKeyUsage=clientAuth
basicConstraints=critical,CA:FALSE"
    cp "$certs/ca.crt" "$out/ca.crt"
    chmod 0600 "$out/client.key"
    echo "gateway $1: certificate in $out (mqtt_tls_ca, mqtt_tls_cert, mqtt_tls_key; port 8883)"
    ;;
  gateway-password)
    [ $# -eq 1 ] || die "gateway-password needs a NAME"
    check_name "$1"
    [ -f "$dir/passwd-gateways" ] || die "no $dir/passwd-gateways: run 'init.sh broker' first"
    password="$(openssl rand -base64 24)"
    add_user "$dir/passwd-gateways" "$1" "$password"
    private "$dir/passwd-gateways"
    printf '%s\n' "$password"
    ;;
  *)
    die "unknown command $command (see --help)"
    ;;
esac
