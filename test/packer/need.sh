# Sourced by the QEMU beds' scripts (test/packer/run.sh, test/boot/image.sh).
# need COMMAND:PACKAGE...: installs, with apt-get, the Debian package of every
# COMMAND that is not on PATH, so a fresh machine gets what the bed runs.
# The caller defines log().
need() {
  local missing=() c
  for c in "$@"; do
    command -v "${c%%:*}" >/dev/null || missing+=("${c#*:}")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
}
