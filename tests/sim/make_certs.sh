#!/usr/bin/env bash
# make_certs.sh DIR: test certificates for the SCCM simulator (tests/sim/sccm_sim.py).
#
#   DIR/ca.pem                 test CA ("SMS Issuing" stand-in) the adapter is told to trust
#   DIR/server.pem             server certificate for 127.0.0.1 / localhost, followed by ca.pem
#   DIR/server-key.pem         its key
#   DIR/other-ca.pem           a second, unrelated CA
#   DIR/other-server.pem       server certificate for the same names, signed by other-ca.pem
#   DIR/other-server-key.pem   its key (the "certificate from another CA" fault)
#
# ECDSA P-256, 30 days. Always makes fresh certificates. Needs the OpenSSL 3 command line.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make_certs: openssl not found" >&2; exit 1; }
mkdir -p "$1"
dir=$(cd "$1" && pwd)
umask 077

# make_ca PREFIX CN
make_ca() {
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$1-key.pem" -out "$dir/$1.pem" -days 30 -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# make_leaf CAPREFIX OUTPREFIX
make_leaf() {
	local ext="$dir/$2.ext"
	cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$2-key.pem" -out "$dir/$2.csr" -subj "/CN=localhost" 2>/dev/null
	openssl x509 -req -in "$dir/$2.csr" -CA "$dir/$1.pem" -CAkey "$dir/$1-key.pem" \
		-CAcreateserial -days 30 -extfile "$ext" -out "$dir/$2.leaf" 2>/dev/null
	cat "$dir/$2.leaf" "$dir/$1.pem" >"$dir/$2.pem"
	rm -f "$dir/$2.csr" "$dir/$2.leaf" "$ext"
}

make_ca ca "mdmgw SCCM simulator test CA"
make_leaf ca server
make_ca other-ca "mdmgw SCCM simulator OTHER CA"
make_leaf other-ca other-server
rm -f "$dir"/*.srl
chmod 644 "$dir/ca.pem" "$dir/other-ca.pem" "$dir/server.pem" "$dir/other-server.pem"
echo "make_certs: certificates in $dir"
