#!/usr/bin/env bash
# make_certs.sh DIR: test certificates for the SCCM simulator (tests/sim/sccm_sim.py).
#
#   DIR/ca.pem                 test CA ("SMS Issuing" stand-in) the adapter is told to trust
#   DIR/server.pem             server certificate for 127.0.0.1 / localhost, followed by ca.pem
#   DIR/server-key.pem         its key
#   DIR/other-ca.pem           a second, unrelated CA
#   DIR/other-server.pem       server certificate for the same names, signed by other-ca.pem
#   DIR/other-server-key.pem   its key (the "certificate from another CA" fault)
#   DIR/expired-server.pem     server certificate for the same names, signed by ca.pem, valid
#                              2020-01-01 to 2020-12-31 only (the "certificate expired" fault)
#   DIR/expired-server-key.pem its key
#
# Used by the SCCM simulator and the cloud MDM simulator (tests/sim/mdm_sim.py) alike.
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

# make_expired: a leaf signed by ca.pem whose validity ended in the past. 'openssl x509' (3.0)
# cannot set past dates, so this goes through 'openssl ca' with explicit -startdate/-enddate.
make_expired() {
	local work="$dir/expired.ca"
	mkdir -p "$work"
	: >"$work/index.txt"
	echo 1000 >"$work/serial"
	cat >"$work/ca.cnf" <<CNF
[ ca ]
default_ca = sim
[ sim ]
dir = $work
database = $work/index.txt
serial = $work/serial
new_certs_dir = $work
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
[ leaf ]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
CNF
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/expired-server-key.pem" -out "$work/req.csr" -subj "/CN=localhost" \
		2>/dev/null
	openssl ca -batch -config "$work/ca.cnf" -cert "$dir/ca.pem" -keyfile "$dir/ca-key.pem" \
		-in "$work/req.csr" -out "$work/leaf.pem" -notext -extensions leaf \
		-startdate 20200101000000Z -enddate 20201231235959Z 2>/dev/null
	cat "$work/leaf.pem" "$dir/ca.pem" >"$dir/expired-server.pem"
	rm -rf "$work"
}
make_expired
rm -f "$dir"/*.srl
chmod 644 "$dir/ca.pem" "$dir/other-ca.pem" "$dir/server.pem" "$dir/other-server.pem" \
	"$dir/expired-server.pem"
echo "make_certs: certificates in $dir"
