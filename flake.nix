{
  description = "watchtower: monitoring, compliance and remediation for fediverse fleets on NixOS";

  # The newest NixOS release that could be verified as stable here (NixOS/infra channels.nix
  # marks nixos-26.05 "stable"); nix/nixpkgs-versions.json records what was checked. 26.05 is
  # supported until 2026-12-31: move to nixos-26.11 once it is released (docs/nixos.md).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      # Evaluated NixOS configurations -> the fleet they declare (nix/fleet-from-nixos.nix),
      # and the merge of a derived fleet under an operator's own (theirs win).
      lib = {
        fleetFromNixos = import ./nix/fleet-from-nixos.nix;
        mergeFleet = import ./nix/fleet-merge.nix;
      };

      overlays.default = final: _prev: {
        watchtower = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (pkgs: rec {
        watchtower = pkgs.callPackage ./nix/package.nix { };
        default = watchtower;
      });

      # The monitoring side (services.watchtower) and the monitored side (a least-privilege
      # remediation account on each target host).
      nixosModules = {
        default = import ./nix/module.nix;
        watchtower = import ./nix/module.nix;
        target = import ./nix/target-module.nix;
      };

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.system}.default;
        vm = import ./nix/vm-test.nix { inherit pkgs self; };
      });
    };
}
