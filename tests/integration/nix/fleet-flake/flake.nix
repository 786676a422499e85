# An operator's flake with no inputs (so it evaluates offline): NixOS configurations of a small
# fediverse fleet, evaluated with the vendored nixpkgs lib and the option declarations that
# follow nixpkgs. The test lays beside this file: ./lib (nixpkgs' lib/), ./nixos (the
# declarations and the package stubs), ./watchtower/nix (this repository's modules) and
# ./lab.json (the lab's HTTPS port, so the names these configurations serve are the lab's).
#
# The nodes mirror the lab's first three domains (watchtower/lab/fleet.py): alpha runs a split
# Mastodon and Synapse, bravo PeerTube and Garage behind nginx, charlie Pixelfed and the mail
# server; monitor runs watchtower with services.watchtower.fleet.fromNixos.
{
  outputs = { self }:
    let
      lib = import ./lib;
      pkgs = import ./nixos/pkgs-stub.nix { inherit lib; };
      nixos = import ./nixos/nixos-options.nix { inherit lib pkgs; };
      lab = builtins.fromJSON (builtins.readFile ./lab.json);
      port = lab.https_port;
      system = modules: lib.evalModules {
        modules = nixos.modules ++ [
          ./watchtower/nix/module.nix
          ./watchtower/nix/target-module.nix
          { _module.args.pkgs = pkgs; }
        ] ++ modules;
      };
      reachable = {
        services.openssh.enable = true;
        services.watchtower-target = {
          enable = true;
          authorizedKeys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGj4 watchtower@monitor" ];
        };
      };
    in
    {
      nixosConfigurations = {
        alpha = system [ reachable {
          networking = { hostName = "social"; domain = "alpha.test"; };
          services.nginx = { enable = true; defaultSSLListenPort = port; };
          services.mastodon = {
            enable = true;
            localDomain = "alpha.test";
            configureNginx = true;
            extraConfig.WEB_DOMAIN = "social.alpha.test";
          };
          services.matrix-synapse = {
            enable = true;
            settings = { server_name = "alpha.test"; public_baseurl = "https://matrix.alpha.test:${toString port}/"; };
          };
          services.watchtower-target.restartableUnits = [ "mastodon-web.service" "matrix-synapse.service" ];
        } ];

        bravo = system [ reachable {
          networking = { hostName = "video"; domain = "bravo.test"; };
          services.peertube = { enable = true; localDomain = "video.bravo.test"; enableWebHttps = true; listenWeb = port; };
          services.nginx = {
            enable = true;
            defaultSSLListenPort = port;
            virtualHosts."garage.bravo.test" = { forceSSL = true; locations."/".proxyPass = "http://127.0.0.1:3903"; };
          };
          services.garage = {
            enable = true;
            settings = {
              s3_api = { api_bind_addr = "[::]:3900"; s3_region = "garage"; };
              admin.api_bind_addr = "127.0.0.1:3903";
            };
          };
        } ];

        charlie = system [ {
          networking = { hostName = "photos"; domain = "charlie.test"; };
          services.pixelfed = {
            enable = true;
            domain = "photos.charlie.test";
            settings.APP_URL = "https://photos.charlie.test:${toString port}";
          };
          mailserver = {
            enable = true;
            fqdn = "mail.charlie.test";
            domains = [ "charlie.test" ];
            dkimSelector = "s1";
          };
        } ];

        monitor = system [ {
          networking.hostName = "monitor";
          services.watchtower = {
            enable = true;
            fleet.fromNixos = self.nixosConfigurations;
            settings.mail_domains = [ { name = "charlie.test"; dkim_selectors = [ "s1" "s2" ]; } ];
          };
        } ];
      };
    };
}
