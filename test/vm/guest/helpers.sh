# Sourced before the caller's script.
# mark KEY VALUE...: report VALUE under KEY in vm.Result.Markers. The value is
# base64 encoded so it survives spaces, newlines and the serial console.
mark() {
	_k=$1
	shift
	printf '@@VM:MARK %s %s\n' "$_k" "$(printf '%s' "$*" | base64 -w 0)"
}
