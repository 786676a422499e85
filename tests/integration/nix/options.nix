# Evaluates a NixOS module's option declarations without nixpkgs: a stub `lib` where mkOption
# returns its arguments tagged as an option, so the option tree can be listed as JSON and
# compared with the README and with watchtower's config model.
{ module }:
let
  option = attrs: attrs // { _isOption = true; };
  stubType = name: { _typeName = name; };
  types = {
    bool = stubType "bool"; str = stubType "str"; port = stubType "port"; path = stubType "path";
    package = stubType "package"; int = stubType "int";
    listOf = t: stubType "listOf"; attrsOf = t: stubType "attrsOf"; nullOr = t: stubType "nullOr";
    submodule = m: { _typeName = "submodule"; _submodule = m; };
  };
  lib = {
    inherit types;
    mkOption = option;
    mkEnableOption = description: option { type = types.bool; default = false; inherit description; };
    literalExpression = x: x;
    mkIf = cond: value: value;
    mkMerge = values: values;
    getExe = p: "exe";
    optional = c: v: [ ];
    mapAttrsToList = f: a: [ ];
    concatStringsSep = builtins.concatStringsSep;
  };
  pkgs = { formats.toml = _: { type = stubType "toml"; generate = name: value: name; }; };
  evaluated = import module { inherit lib pkgs; config = { services = { }; }; };
  names = prefix: attrs:
    builtins.concatLists (map (name:
      let v = attrs.${name}; path = if prefix == "" then name else "${prefix}.${name}"; in
      if builtins.isAttrs v && v ? _isOption then
        [ path ] ++ (if v.type ? _submodule then names "${path}" (v.type._submodule.options or { }) else [ ])
      else if builtins.isAttrs v then names path v
      else [ ]) (builtins.attrNames attrs));
in
names "" evaluated.options
