# Evaluates watchtower's NixOS modules with the real module system (nixpkgs' lib.evalModules
# from the vendored lib/) against option declarations that follow nixpkgs (nixos-options.nix),
# and returns what the tests assert on, as JSON.
#
#   nix-instantiate --eval --strict --json tests/integration/nix/eval.nix \
#     --arg libDir /path/to/nixpkgs-lib/lib --arg configuration '{ services.watchtower.enable = true; }'
#
# Failed assertions are reported, not thrown (the test checks each message), the way
# nixos/modules/system/activation/top-level.nix collects them before it refuses to build.
# With vmTest = true the configuration is nix/vm-test.nix's machine (its test script cannot run
# here; what NixOS would build for the machine is evaluated like any other configuration).
{ libDir, configuration ? { }, repo ? ../../.., vmTest ? false }:

let
  lib = import libDir;
  pkgs = import ./pkgs-stub.nix { inherit lib; };
  nixos = import ./nixos-options.nix { inherit lib pkgs; };
  vm = import (repo + "/nix/vm-test.nix") {
    inherit pkgs;
    self = { nixosModules.default = repo + "/nix/module.nix"; overlays.default = _final: _prev: { }; };
  };

  evaluated = lib.evalModules {
    modules = nixos.modules ++ [
      (repo + "/nix/module.nix")
      (repo + "/nix/target-module.nix")
      { _module.args.pkgs = pkgs; }
      (if vmTest then vm.nodes.machine else configuration)
    ];
  };
  config = evaluated.config;

  # Every path value the declared options hold (Nix path literals such as ruleFiles): a
  # missing one fails the build on NixOS when it is copied into the store, but not evaluation.
  pathsIn = v:
    if builtins.isPath v then [ v ]
    else if builtins.isList v then lib.concatMap pathsIn v
    else if builtins.isAttrs v && !(lib.isDerivation v) then lib.concatMap pathsIn (builtins.attrValues v)
    else [ ];
  # (an option nobody set and without a default, e.g. services.mastodon.localDomain, holds none)
  valueOf = d: builtins.tryEval (lib.attrByPath (lib.splitString "." d.path) null config);
  declaredValues = map (r: r.value) (lib.filter (r: r.success) (map valueOf nixos.declarations));
  referencedPaths = lib.unique (map toString (lib.concatMap pathsIn declaredValues));

  # JSON without copying anything into the store: paths become their string, derivations their
  # out (and, for our fakes, what they carry: generated settings, script text).
  plain = v:
    if builtins.isPath v then toString v
    else if lib.isDerivation v then
      { out = v.outPath; name = v.name; }
      // lib.optionalAttrs (v ? json) { settings = builtins.fromJSON v.json; }
      // lib.optionalAttrs (v ? text) { text = v.text; }
    else if builtins.isList v then map plain v
    else if builtins.isAttrs v then lib.mapAttrs (_: plain) (removeAttrs v [ "_module" ])
    else if builtins.isFunction v then "<function>"
    else v;

  # Option paths declared under services.watchtower*, for the README and config-model checks.
  optionPaths = prefix: attrs: lib.concatLists (lib.mapAttrsToList (name: v:
    let path = prefix ++ [ name ]; in
    if name == "_module" then [ ]
    else if lib.isOption v then [ (lib.concatStringsSep "." path) ]
      ++ lib.optionals (v.type.name == "submodule") (optionPaths path (v.type.getSubOptions path))
    else if builtins.isAttrs v then optionPaths path v
    else [ ]) attrs);

  ours = lib.filterAttrs (n: _: lib.hasPrefix "watchtower" n) config.systemd.services;
in
{
  options = optionPaths [ "services" "watchtower" ] evaluated.options.services.watchtower
    ++ optionPaths [ "services" "watchtower-target" ] evaluated.options.services.watchtower-target;
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  warnings = config.warnings;
  inherit referencedPaths;
  missingPaths = lib.filter (p: !builtins.pathExists p) referencedPaths;
  users = plain (lib.filterAttrs (n: _: n != "root" && n != "nobody") config.users.users);
  groups = builtins.attrNames config.users.groups;
  services = plain ours;
  etc = plain config.environment.etc;
  systemPackages = plain config.environment.systemPackages;
  tmpfiles = config.systemd.tmpfiles.rules;
  firewall = { tcp = config.networking.firewall.allowedTCPPorts; udp = config.networking.firewall.allowedUDPPorts; };
  sudoRules = plain config.security.sudo.extraRules;
  testScript = if vmTest then vm.testScript else null;
  prometheus = {
    enable = config.services.prometheus.enable;
    scrapeConfigs = plain config.services.prometheus.scrapeConfigs;
    ruleFiles = plain config.services.prometheus.ruleFiles;
  };
}
