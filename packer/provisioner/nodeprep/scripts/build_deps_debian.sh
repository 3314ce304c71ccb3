missing=""
for p in build-essential make gcc kmod xz-utils patch{{range .Kernels}} {{q (print "linux-headers-" .)}}{{end}}; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -qx 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
else
  echo "build deps already installed"
fi
{{template "kernel_headers.sh" . -}}
