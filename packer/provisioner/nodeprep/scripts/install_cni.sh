{{- /*
Checked where it landed, staged under a dot name (the agent skips those), then
swapped in; "current" names the version so older bundles left in the image by
an earlier bake do not make the agent's choice ambiguous.
*/ -}}
cd {{q (.Staged "cni")}}
sha256sum -c --strict {{.SumsFile}}
root={{q .CNIRoot}}
v={{q .Cfg.CNIVersion}}
mkdir -p "$root"
rm -rf "$root/.$v.new"
mkdir "$root/.$v.new"
for f in {{qall .Bundle}}; do install -m 0755 "$f" "$root/.$v.new/$f"; done
install -m 0644 {{.SumsFile}} "$root/.$v.new/{{.SumsFile}}"
(cd "$root/.$v.new" && sha256sum -c --strict --quiet {{.SumsFile}})
rm -rf "$root/$v"
mv "$root/.$v.new" "$root/$v"
ln -sfn "$v" "$root/.{{.CurrentLink}}.new"
mv -T "$root/.{{.CurrentLink}}.new" "$root/{{.CurrentLink}}"
