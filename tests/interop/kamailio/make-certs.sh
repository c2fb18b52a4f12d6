#!/bin/sh
# make-certs.sh OUTDIR
#
# Creates throwaway TLS material for the Kamailio interop tests (EC P-256,
# OpenSSL 3):
#   OUTDIR/ca.pem, ca.key        a private test CA ("Switchboard Test CA")
#   OUTDIR/server.pem, .key      CN=sip.test, SAN DNS:sip.test + IP:127.0.0.1,
#                                signed by the CA (the good certificate)
#   OUTDIR/other.pem, .key       CN=other.test, SAN DNS:other.test only,
#                                signed by the same CA (wrong name, for the
#                                negative test: valid chain, name mismatch)
# Nothing is written outside OUTDIR. Takes well under a second.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
out=$1
mkdir -p "$out"
cd "$out"
umask 077

days=825

# 1. The CA: self-signed, CA:TRUE, may only sign certificates.
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -sha256 -key ca.key -days 3650 \
	-subj "/O=Switchboard interop/CN=Switchboard Test CA" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-addext "subjectKeyIdentifier=hash" \
	-out ca.pem

# 2. A leaf certificate: leaf NAME SAN
leaf() {
	name=$1
	san=$2
	openssl ecparam -name prime256v1 -genkey -noout -out "$name.key"
	openssl req -new -sha256 -key "$name.key" \
		-subj "/O=Switchboard interop/CN=$3" -out "$name.csr"
	cat >"$name.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
	openssl x509 -req -sha256 -in "$name.csr" -CA ca.pem -CAkey ca.key \
		-set_serial "0x$(openssl rand -hex 12)" -days "$days" \
		-extfile "$name.ext" -out "$name.pem" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
}

leaf server "DNS:sip.test,IP:127.0.0.1" sip.test
leaf other "DNS:other.test" other.test

# Certificates are public; keys stay 0600. Kamailio runs as root in the
# tests, so it can read them either way.
chmod 644 ca.pem server.pem other.pem

openssl verify -CAfile ca.pem server.pem other.pem >/dev/null
echo "certificates in $(pwd): ca.pem server.pem/server.key other.pem/other.key"
