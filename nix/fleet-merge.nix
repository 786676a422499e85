# Merges a derived fleet (fleetFromNixos) under the operator's own: theirs win.
#
# Tables merge key by key. Lists of named tables ([[services]], [[hosts]], ...) merge by `name`:
# an entry the operator also has is merged with theirs (their keys win), entries only they have
# are appended. Any other value of theirs replaces the derived one. watchtower/config/from_nix.py
# merges fleet files by the same rule (tests/integration/nix checks that both agree).
# Builtins only, like fleet-from-nixos.nix.
derived: operator:

let
  named = l: builtins.isList l && l != [ ] && builtins.all (e: builtins.isAttrs e && e ? name) l;
  byName = l: builtins.listToAttrs (map (e: { name = e.name; value = e; }) l);
  mergeNamed = d: o:
    let theirs = byName o; ours = byName d; in
    map (e: if theirs ? ${e.name} then merge e theirs.${e.name} else e) d
    ++ builtins.filter (e: !(ours ? ${e.name})) o;
  merge = d: o:
    if builtins.isAttrs d && builtins.isAttrs o then
      d // builtins.mapAttrs (k: v: if d ? ${k} then merge d.${k} v else v) o
    else if named d && named o then mergeNamed d o
    else o;
in
merge derived operator
