#!/usr/bin/env bash
# make-dev-certs.sh DIR: a development CA and an HTTPS server certificate signed by it, for mdmgw.
#
#   DIR/ca.pem          CA certificate (ECDSA P-256, 10 years): import it into the NAC engine
#   DIR/ca-key.pem      CA private key (0600)
#   DIR/server.pem      server certificate followed by the CA certificate (the chain to serve)
#   DIR/server-key.pem  server private key (0600)
#
# The server certificate is ECDSA P-256, valid 825 days (the most clients accept for a leaf),
# for DNS:localhost, IP:127.0.0.1 and IP:::1 plus whatever MDMGW_CERT_SANS adds, e.g.
#   MDMGW_CERT_SANS="DNS:mdmgw.example.com,IP:10.0.0.5" certs/make-dev-certs.sh certs
# Does nothing when DIR/server.pem exists, unless FORCE=1. Needs the OpenSSL 3 command line.
set -euo pipefail

usage() {
	echo "usage: [FORCE=1] [MDMGW_CERT_SANS=DNS:name,IP:addr] $0 DIR" >&2
	exit 2
}

[ $# -eq 1 ] || usage
dir=$1
force=${FORCE:-0}
extra_sans=${MDMGW_CERT_SANS:-}

command -v openssl >/dev/null || { echo "make-dev-certs: openssl not found" >&2; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd) # absolute, so the rest does not depend on the caller's cwd

if [ -e "$dir/server.pem" ] && [ "$force" != 1 ]; then
	echo "make-dev-certs: $dir/server.pem exists; FORCE=1 to make new certificates"
	exit 0
fi

# Each SAN entry must be DNS:<name> or IP:<address>; anything else would end up in the
# certificate as written, or make openssl fail with a less helpful message.
sans="DNS:localhost,IP:127.0.0.1,IP:::1"
if [ -n "$extra_sans" ]; then
	IFS=',' read -r -a extra <<<"$extra_sans"
	for s in "${extra[@]}"; do
		s=${s//[[:space:]]/}
		[ -z "$s" ] && continue
		if [[ ! $s =~ ^(DNS:[A-Za-z0-9*._-]+|IP:[0-9A-Fa-f.:]+)$ ]]; then
			echo "make-dev-certs: MDMGW_CERT_SANS entry '$s' is not DNS:<name> or IP:<address>" >&2
			exit 2
		fi
		sans="$sans,$s"
	done
fi

# Work in a private scratch directory and move the results into place at the end, so an
# interrupted run never leaves a key next to a certificate it does not belong to.
umask 077
tmp=$(mktemp -d "$dir/.make-dev-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# quiet: runs an openssl command, showing its chatter only when it fails.
quiet() {
	"$@" 2>"$tmp/stderr" || { cat "$tmp/stderr" >&2; exit 1; }
}

newkey() {
	quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-pkeyopt ec_param_enc:named_curve -out "$1"
}

# ca_reusable: an existing CA whose key matches and which stays valid for another 30 days.
# Reusing it means a re-issued server certificate (FORCE=1, new SANs) needs no new import into
# the NAC engine; delete ca.pem to get a new CA.
ca_reusable() {
	[ -s "$dir/ca.pem" ] && [ -s "$dir/ca-key.pem" ] || return 1
	openssl x509 -in "$dir/ca.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 || return 1
	[ "$(openssl x509 -in "$dir/ca.pem" -noout -pubkey 2>/dev/null)" = \
		"$(openssl pkey -in "$dir/ca-key.pem" -pubout 2>/dev/null)" ]
}

if ca_reusable; then
	echo "make-dev-certs: reusing the CA in $dir/ca.pem"
	cp "$dir/ca.pem" "$dir/ca-key.pem" "$tmp/"
else
	# The extensions are given in full so that OpenSSL's defaults never add to them.
	newkey "$tmp/ca-key.pem"
	quiet openssl req -new -x509 -sha256 -days 3650 -key "$tmp/ca-key.pem" -out "$tmp/ca.pem" \
		-subj "/O=mdmgw development/CN=mdmgw development CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash"
fi

# Server: a CSR, then signed by the CA with the extensions of an extension file (x509 -req
# does not copy extensions from the request).
newkey "$tmp/server-key.pem"
quiet openssl req -new -sha256 -key "$tmp/server-key.pem" -out "$tmp/server.csr" \
	-subj "/O=mdmgw development/CN=localhost"
cat >"$tmp/server.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $sans
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
quiet openssl x509 -req -sha256 -days 825 -in "$tmp/server.csr" -CA "$tmp/ca.pem" \
	-CAkey "$tmp/ca-key.pem" -CAcreateserial -extfile "$tmp/server.ext" \
	-out "$tmp/server-cert.pem"

quiet openssl verify -CAfile "$tmp/ca.pem" "$tmp/server-cert.pem" >/dev/null
cat "$tmp/server-cert.pem" "$tmp/ca.pem" >"$tmp/server.pem"

chmod 0644 "$tmp/ca.pem" "$tmp/server.pem"
chmod 0600 "$tmp/ca-key.pem" "$tmp/server-key.pem"
# The key goes first and server.pem last: server.pem is what marks the set as complete.
for f in ca-key.pem ca.pem server-key.pem server.pem; do
	mv -f "$tmp/$f" "$dir/$f"
done

echo "make-dev-certs: wrote $dir/{ca.pem,ca-key.pem,server.pem,server-key.pem}"
echo "make-dev-certs: server certificate names: $sans"
echo "make-dev-certs: import $dir/ca.pem into the NAC engine's trusted certificates (certs/README.md)"
