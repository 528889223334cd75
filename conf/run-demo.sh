#!/usr/bin/env bash
# Starts the demo gateway in the foreground and says how to talk to it. Used by `make run`.
set -euo pipefail
bin=$1
conf=$2
here=$(cd "$(dirname "$0")/.." && pwd)
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"].get("port", 8443))' "$conf")
cat <<MSG

mdmgw demo on https://127.0.0.1:${port}/   (config: ${conf})
  accounts: demo / mdmgw-demo (role query), demo-admin / mdmgw-admin (query, action, admin)
  CA to trust: ${here}/certs/ca.pem   (or use curl -k)

Try:
  curl --cacert certs/ca.pem -u demo:mdmgw-demo 'https://127.0.0.1:${port}/ciscoise/mdminfo/?ise_api_version=3'
  curl --cacert certs/ca.pem -u demo:mdmgw-demo 'https://127.0.0.1:${port}/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=macaddress&value=0026B424FEB4&filter=all'
  curl --cacert certs/ca.pem -u demo:mdmgw-demo 'https://127.0.0.1:${port}/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=compliance&value=false&filter=all'

Stop with Ctrl-C (SIGTERM drains in-flight requests, then exits 0).

MSG
exec "$bin" run -c "$conf"
