# The few parts of nixpkgs' package set the modules touch, as inert derivation-shaped values:
# enough for lib.getExe, string interpolation and the module system's `package` type, nothing
# built. nixpkgs cannot be fetched here; what these stand for is named in each comment.
{ lib }:

let
  # A derivation-shaped attrset: lib.types.package accepts it (isDerivation), "${drv}" gives a
  # store-path-like outPath in this store's directory, and lib.getExe reads meta.mainProgram.
  fake = name: extra: {
    type = "derivation";
    inherit name;
    outPath = "${builtins.storeDir}/${builtins.substring 0 32 (builtins.hashString "sha256" name)}-${name}";
    meta = { mainProgram = name; } // (extra.meta or { });
  } // removeAttrs extra [ "meta" ];

  # pkgs/pkgs-lib/formats.nix, `toml`: the type is a TOML value (no null); generate serialises
  # the value to JSON and converts it to TOML (remarshal's json2toml, later yj / go-toml, see
  # docs/nixos.md). The fake keeps the value so the test can do the same conversion.
  tomlValue = with lib.types;
    let valueType = oneOf [ bool int float str path (attrsOf valueType) (listOf valueType) ]
      // { description = "TOML value"; };
    in valueType;
in
{
  formats.toml = { }: {
    type = tomlValue;
    generate = name: value: fake name { json = builtins.toJSON value; };
  };

  # pkgs/build-support/writers: writeShellApplication { name, text, runtimeInputs } -> bin/name.
  writeShellApplication = { name, text, runtimeInputs ? [ ], ... }:
    fake name { inherit text runtimeInputs; };

  watchtower = fake "watchtower" { };
  coreutils = fake "coreutils" { };
  systemd = fake "systemd" { };
  nix = fake "nix" { };
  git = fake "git" { };
  shadow = fake "shadow" { meta.mainProgram = "nologin"; };
  bashInteractive = fake "bash-interactive" { meta.mainProgram = "bash"; shellPath = "/bin/bash"; };
  curl = fake "curl" { };
  sqlite = fake "sqlite" { meta.mainProgram = "sqlite3"; };
  callPackage = _path: _args: fake "watchtower" { };
  # nixos/lib/testing: the test's nodes and script, returned as data (nothing boots here).
  testers.runNixOSTest = test: test;
}
