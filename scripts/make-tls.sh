#!/usr/bin/env bash
# Makes a local certificate authority and a server certificate for trying TLS with Switchboard:
#   data/tls/ca.pem, ca-key.pem                 the CA (clients trust ca.pem: --tls-ca / SB_TLS_CA)
#   data/tls/server-cert.pem, server-key.pem    for nats-server (the tls block in nats.conf)
#   data/tls/client-cert.pem, client-key.pem    a client certificate, for servers that verify clients
# Usage: bash scripts/make-tls.sh [DIR] [HOSTNAME...]   (default DIR: the project's data/tls;
#        names: localhost 127.0.0.1 ::1 — give the server's host names for other machines)
# For real deployments use certificates from your own CA. Needs openssl.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

dir="${1:-$root/data/tls}"
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost 127.0.0.1 ::1)

command -v openssl >/dev/null 2>&1 || { echo "make-tls: openssl is not installed (apt-get install openssl)" >&2; exit 1; }

umask 077
mkdir -p "$dir"
chmod 700 "$dir"

san=""
for n in "${names[@]}"; do
  if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
san="${san%,}"

days=825
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -subj "/CN=Switchboard local CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null

make_cert() { # name, subject CN, extended key usage, subjectAltName (optional)
  local name="$1" cn="$2" eku="$3" alt="${4:-}"
  local ext="$dir/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$alt" ] && echo "subjectAltName=$alt"
  } > "$ext"
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$cn" -keyout "$dir/$name-key.pem" -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -sha256 -days "$days" -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
    -CAcreateserial -extfile "$ext" -out "$dir/$name-cert.pem" 2>/dev/null
  rm -f "$dir/$name.csr" "$ext"
}

make_cert server "${names[0]}" serverAuth "$san"
make_cert client "switchboard-client" clientAuth
rm -f "$dir/ca.srl"
chmod 600 "$dir"/*.pem
# The CA certificate is public; clients on other machines need a copy.
chmod 644 "$dir/ca.pem" "$dir/server-cert.pem" "$dir/client-cert.pem"

cat >&2 <<MSG
make-tls: wrote $dir/ca.pem (trust this), $dir/server-{cert,key}.pem (names: ${names[*]}) and $dir/client-{cert,key}.pem
  server: uncomment the tls block in nats.conf (or add: tls { cert_file: "$dir/server-cert.pem", key_file: "$dir/server-key.pem" })
  client: switchboard chat --tls-ca $dir/ca.pem   (or SB_TLS_CA=$dir/ca.pem for every command)
MSG
