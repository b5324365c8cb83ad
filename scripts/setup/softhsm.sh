# SoftHSM2 for the pkcs11 seal tests (sourced by scripts/test.sh under
# set -euo pipefail). Installs softhsm2 (and a C compiler for cgo) if
# missing, creates a token store in a temp dir, initialises a token with
# random PINs kept in files (never on a command line) and exports what the
# tests read. KEYWARDEN_REQUIRE_SOFTHSM=1 makes them fail, not skip, if
# anything is missing.
_kw_need=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] || _kw_need+=(softhsm2)
command -v gcc >/dev/null 2>&1 || _kw_need+=(gcc libc6-dev)
if [ ${#_kw_need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${_kw_need[@]}" >/dev/null
fi
unset _kw_need

_kw_hsm_dir=$(mktemp -d "${TMPDIR:-/tmp}/keywarden-softhsm.XXXXXX")
mkdir -p "$_kw_hsm_dir/tokens"
chmod 700 "$_kw_hsm_dir"
cat >"$_kw_hsm_dir/softhsm2.conf" <<CONF
directories.tokendir = $_kw_hsm_dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
(
  umask 077
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$_kw_hsm_dir/pin"
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$_kw_hsm_dir/so-pin"
)
export SOFTHSM2_CONF="$_kw_hsm_dir/softhsm2.conf"
export KEYWARDEN_TEST_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so
export KEYWARDEN_TEST_PKCS11_TOKEN=keywarden-test
export KEYWARDEN_TEST_PKCS11_PIN_FILE="$_kw_hsm_dir/pin"
go run -tags pkcs11 ./internal/seal/pkcs11/internal/inittoken \
  -module "$KEYWARDEN_TEST_PKCS11_MODULE" -label "$KEYWARDEN_TEST_PKCS11_TOKEN" \
  -pin-file "$KEYWARDEN_TEST_PKCS11_PIN_FILE" -so-pin-file "$_kw_hsm_dir/so-pin"
case " ${GO_TEST_TAGS:-} " in
  *" pkcs11 "*) ;;
  *) export GO_TEST_TAGS="${GO_TEST_TAGS:+$GO_TEST_TAGS }pkcs11" ;;
esac
export KEYWARDEN_REQUIRE_SOFTHSM=1
unset _kw_hsm_dir
