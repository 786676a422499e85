{
  description = "watchtower: monitoring, compliance and remediation for fediverse fleets on NixOS";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
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
